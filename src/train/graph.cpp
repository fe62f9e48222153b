#include "train/graph.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/profile.h"
#include "kernels/rmsnorm.h"
#include "model/layers/embedding.h"
#include "model/layers/head.h"

namespace dseek {

MicroBatch MicroBatch::from_tokens(const int32_t* tokens, int64_t B, int64_t T) {
  MicroBatch mb;
  mb.B = B;
  mb.T = T;
  mb.inputs.resize(static_cast<size_t>(B * T));
  mb.targets.resize(static_cast<size_t>(B * T));
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++) {
      mb.inputs[size_t(b * T + t)] = tokens[b * (T + 1) + t];
      mb.targets[size_t(b * T + t)] = tokens[b * (T + 1) + t + 1];
    }
  mb.shape = TrainShape::dense(B, T);
  return mb;
}

namespace {

int64_t count_targets(const int32_t* t, int64_t n) {
  int64_t c = 0;
  for (int64_t i = 0; i < n; i++) c += t[i] >= 0;
  return c;
}

// Rows (b, i < T - k) of a [B, T - k + 1]-row tensor, or of [B, T] when k == 1 (depth k's predecessor).
void select_prefix_rows(const float* src, int64_t B, int64_t Tsrc, int64_t Tdst, int64_t D, float* dst) {
  for (int64_t b = 0; b < B; b++) std::memcpy(dst + b * Tdst * D, src + b * Tsrc * D, size_t(Tdst * D) * 4);
}

TrainShape shape_prefix(const TrainShape& s, int64_t Tk) {
  TrainShape o;
  o.B = s.B;
  o.T = Tk;
  for (int64_t b = 0; b < s.B; b++)
    for (int64_t i = 0; i < Tk; i++) {
      o.positions.push_back(s.positions[size_t(b * s.T + i)]);
      if (!s.key_begin.empty()) o.key_begin.push_back(s.key_begin[size_t(b * s.T + i)]);
    }
  return o;
}

}  // namespace

LossBreakdown TrainGraph::run(const ModelWeights& w, ModelWeights* g, RopeTable& rope, const MicroBatch& mb,
                              const GraphOptions& o) {
  const ModelConfig& c = c_;
  const int64_t B = mb.B, T = mb.T, R = B * T, D = c.hidden_size, L = c.num_hidden_layers;
  const float eps = float(c.rms_norm_eps);
  const int64_t depth = o.use_mtp ? int64_t(w.mtp.size()) : 0;
  TrainOptions layer = o.layer;
  layer.grad_scale = o.loss_scale;
  DSEEK_CHECK(int64_t(mb.inputs.size()) == R && int64_t(mb.targets.size()) == R, "micro-batch has wrong size");
  int32_t max_pos = 0;
  for (int32_t p : mb.shape.positions) max_pos = std::max(max_pos, p);
  rope.prepare(int64_t(max_pos) + 1);
  LossBreakdown out;
  layers_.resize(size_t(L));
  mtp_.resize(size_t(depth));

  // ---- forward: embedding and decoder layers
  std::vector<float> x(static_cast<size_t>(R * D));
  embedding_forward(w.embed, mb.inputs.data(), R, x.data());
  for (int64_t l = 0; l < L; l++) {
    DSEEK_PROFILE("train.layer_forward");
    layer_forward(c, w.layers[size_t(l)], rope, mb.shape, layer, x.data(), layers_[size_t(l)]);
  }
  // main head: fused cross-entropy (its gradient is computed in the same pass)
  std::vector<float> hf(static_cast<size_t>(R * D)), rstdf(static_cast<size_t>(R));
  rmsnorm_forward(x.data(), D, w.norm.f32(), eps, R, D, hf.data(), D, rstdf.data());
  const int64_t n_main = count_targets(mb.targets.data(), R);
  DSEEK_CHECK(n_main > 0 || !mb.soft_targets.empty(), "micro-batch has no target tokens");
  std::vector<float> dhf;
  if (g) dhf.assign(size_t(R * D), 0.0f);
  HeadLoss spec;
  spec.targets = mb.targets.data();
  spec.ce_scale = n_main > 0 ? 1.0f / float(n_main) : 0.0f;
  spec.policy = o.policy;
  spec.grad_scale = o.loss_scale;
  int64_t soft_rows = 0;
  for (const auto& st : mb.soft_targets) soft_rows += !st.empty();
  if (soft_rows > 0) {
    DSEEK_CHECK(int64_t(mb.soft_targets.size()) == R, "micro-batch soft targets have the wrong size");
    spec.soft = &mb.soft_targets;
    spec.soft_weight = o.soft_weight / float(soft_rows);  // soft_weight x mean KL
  }
  if (o.logp_out) {
    o.logp_out->assign(size_t(R), 0.0f);
    spec.logp_out = o.logp_out->data();
  }
  if (o.logits_out) {
    o.logits_out->assign(size_t(R * c_.vocab_size), 0.0f);
    spec.logits_out = o.logits_out->data();
  }
  if (o.topk_out) {
    o.topk_out->assign(size_t(R), {});
    spec.topk = o.topk;
    spec.topk_out = o.topk_out;
  }
  HeadLossResult head;
  {
    DSEEK_PROFILE("train.lm_head_loss");
    head = lm_head_loss(R, hf.data(), w.lm_head, spec, g ? dhf.data() : nullptr, g ? &g->lm_head.weight : nullptr,
                        layer.precision);
  }
  out.main = n_main > 0 ? head.ce_sum / double(n_main) : 0.0;
  out.tokens = n_main;
  if (o.policy) out.policy = head.loss_sum - double(spec.soft_weight) * head.kl_sum;
  out.soft_kl = soft_rows ? head.kl_sum / double(soft_rows) : 0.0;

  // ---- MTP modules: depth k predicts token i+k+1 from h^{k-1}_i and Emb(x_{i+k})
  struct Depth {
    int64_t Tk;
    std::vector<int32_t> emb_tokens, targets;
    std::vector<float> prev, out, dout;
    TrainShape shape;
    int64_t count = 0;
  };
  std::vector<Depth> ds(static_cast<size_t>(depth));
  const float* prev_src = x.data();  // h^0: last decoder layer output, before the final norm
  int64_t prev_T = T;
  double mtp_sum = 0;
  for (int64_t k = 1; k <= depth; k++) {
    Depth& d = ds[size_t(k - 1)];
    d.Tk = T - k;
    DSEEK_CHECK(d.Tk > 0, "sequence length {} is too short for {} MTP depths", T, depth);
    const int64_t Rk = B * d.Tk;
    const bool packed = !mb.shape.key_begin.empty();
    for (int64_t b = 0; b < B; b++)
      for (int64_t i = 0; i < d.Tk; i++) {
        const size_t here = size_t(b * T + i), ahead = size_t(b * T + i + k);
        d.emb_tokens.push_back(mb.inputs[ahead]);
        // no prediction across packed documents: token i+k must belong to the document of token i
        const bool same_doc = !packed || mb.shape.key_begin[here] == mb.shape.key_begin[ahead];
        d.targets.push_back(same_doc ? mb.targets[ahead] : -1);
      }
    d.shape = shape_prefix(mb.shape, d.Tk);
    d.prev.resize(size_t(Rk * D));
    select_prefix_rows(prev_src, B, prev_T, d.Tk, D, d.prev.data());
    d.out.resize(size_t(Rk * D));
    mtp_forward(c, w.mtp[size_t(k - 1)], w.embed, rope, RowBatch::of(d.shape), layer, d.prev.data(),
                d.emb_tokens.data(), d.out.data(), mtp_[size_t(k - 1)]);
    d.count = count_targets(d.targets.data(), Rk);
    const float scale = d.count ? float(o.mtp_lambda / double(depth) / double(d.count)) * o.loss_scale : 0.0f;
    if (g) d.dout.assign(size_t(Rk * D), 0.0f);
    CrossEntropyResult cek = lm_head_cross_entropy(Rk, d.out.data(), w.lm_head, d.targets.data(), scale,
                                                   g ? d.dout.data() : nullptr, g ? &g->lm_head.weight : nullptr,
                                                   layer.precision);
    if (d.count) mtp_sum += cek.loss_sum / double(d.count);
    prev_src = mtp_[size_t(k - 1)].hk.data();
    prev_T = d.Tk;
  }
  out.mtp = depth ? mtp_sum / double(depth) : 0.0;
  for (size_t l = 0; l < layers_.size(); l++)
    if (!layers_[l].moe.load.empty()) {
      out.aux += layers_[l].moe.aux_loss;
      out.load.push_back(layers_[l].moe.load);
      out.load_layers.push_back(int64_t(l));
    }
  for (size_t k = 0; k < mtp_.size(); k++)
    if (!mtp_[k].block.moe.load.empty()) {
      out.aux += mtp_[k].block.moe.aux_loss;
      out.load.push_back(mtp_[k].block.moe.load);
      out.load_layers.push_back(int64_t(layers_.size() + k));
    }
  out.total = (o.policy ? out.policy : out.main) + o.mtp_lambda * out.mtp + out.aux + o.soft_weight * out.soft_kl;
  if (!g) return out;

  // ---- backward: MTP depths from the deepest, then the main stack
  std::vector<float> dnext;  // gradient into h^k from depth k+1's hnorm
  for (int64_t k = depth; k >= 1; k--) {
    Depth& d = ds[size_t(k - 1)];
    const int64_t Rk = B * d.Tk;
    std::vector<float> dprev(static_cast<size_t>(Rk * D));
    mtp_backward(c, w.mtp[size_t(k - 1)], g->mtp[size_t(k - 1)], g->embed, rope, RowBatch::of(d.shape), layer,
                 mtp_[size_t(k - 1)], d.dout.data(), dnext.empty() ? nullptr : dnext.data(), dprev.data());
    // scatter into the predecessor's rows (b, i < Tk) of its [B, Tk + 1] (or [B, T]) layout
    const int64_t Tprev = (k == 1) ? T : ds[size_t(k - 2)].Tk;
    dnext.assign(size_t(B * Tprev * D), 0.0f);
    for (int64_t b = 0; b < B; b++)
      std::memcpy(dnext.data() + b * Tprev * D, dprev.data() + b * d.Tk * D, size_t(d.Tk * D) * 4);
  }
  std::vector<float> dx(static_cast<size_t>(R * D), 0.0f);
  if (!dnext.empty()) dx = dnext;
  rmsnorm_backward(x.data(), D, w.norm.f32(), rstdf.data(), dhf.data(), D, R, D, dx.data(), D, g->norm.f32(), true);
  for (int64_t l = L - 1; l >= 0; l--) {
    DSEEK_PROFILE("train.layer_backward");
    layer_backward(c, w.layers[size_t(l)], g->layers[size_t(l)], rope, mb.shape, layer, layers_[size_t(l)], dx.data());
  }
  embedding_backward(mb.inputs.data(), R, dx.data(), g->embed);
  return out;
}

ModelWeights zeros_like_weights(const ModelConfig& c, bool mtp) {
  ModelWeights z;
  for_each_param(c, z, [](ParamRef& p) { *p.tensor = Tensor::zeros(DType::F32, p.shape); }, ParamOptions{mtp});
  bind_shared_tensors(c, z);
  return z;
}

}  // namespace dseek
