#include "train/layer.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "core/profile.h"
#include "kernels/attention.h"
#include "kernels/rmsnorm.h"
#include "kernels/swiglu.h"
#include "train/ops.h"

namespace dseek {

TrainShape TrainShape::dense(int64_t B, int64_t T) {
  TrainShape s;
  s.B = B;
  s.T = T;
  s.positions.resize(static_cast<size_t>(B * T));
  for (int64_t r = 0; r < B * T; r++) s.positions[size_t(r)] = int32_t(r % T);
  return s;
}

namespace {

template <class T>
T* sized(std::vector<T>& v, size_t n) {
  v.resize(n);
  return v.data();
}

// ----------------------------------------------------------------------------------------------
// SwiGLU feed-forward: y = down(silu(gate x) * up x)

void ffn_forward(int64_t R, const float* x, const FFNWeights& w, FFNCache& c, float* y, bool accumulate) {
  const int64_t I = w.gate_proj.out(), D = w.gate_proj.in();
  float* g = sized(c.g, size_t(R * I));
  float* u = sized(c.u, size_t(R * I));
  float* h = sized(c.h, size_t(R * I));
  linear_forward(R, x, D, w.gate_proj, g, I);
  linear_forward(R, x, D, w.up_proj, u, I);
  swiglu_forward(g, u, h, R * I);
  matmul_wT(R, h, I, MatRef::of(w.down_proj), y, D, accumulate);
}

// dy -> dx (+=), weight gradients into gw
void ffn_backward(int64_t R, const float* x, const FFNWeights& w, FFNWeights& gw, const FFNCache& c, const float* dy,
                  int64_t lddy, float* dx, Precision p) {
  const int64_t I = w.gate_proj.out(), D = w.gate_proj.in();
  std::vector<float> dh(static_cast<size_t>(R * I)), dg(static_cast<size_t>(R * I)), du(static_cast<size_t>(R * I));
  linear_backward(R, dy, lddy, c.h.data(), I, w.down_proj, dh.data(), I, false, gw.down_proj.weight, p);
  swiglu_backward(c.g.data(), c.u.data(), dh.data(), dg.data(), du.data(), R * I);
  linear_backward(R, dg.data(), I, x, D, w.gate_proj, dx, D, true, gw.gate_proj.weight, p);
  linear_backward(R, du.data(), I, x, D, w.up_proj, dx, D, true, gw.up_proj.weight, p);
}

// ----------------------------------------------------------------------------------------------
// DeepSeekMoE: y = sum_k w_k expert_k(x) + shared(x)

void moe_forward(const ModelConfig& c, int64_t B, int64_t T, const float* x, const MoEWeights& w, const TrainOptions& o,
                 MoECache& mc, float* y) {
  const int64_t R = B * T, D = c.hidden_size, E = c.n_routed_experts, K = c.num_experts_per_tok;
  const int64_t I = c.moe_intermediate_size;
  float* z = sized(mc.logits, size_t(R * E));
  matmul_wT(R, x, D, MatRef::of(w.router), z, E);  // router in F32
  route(c, z, w.score_bias.data ? w.score_bias.f32() : nullptr, R, mc.routing);
  const Routing& rt = mc.routing;
  mc.aux_loss = o.aux_alpha > 0 ? sequence_balance_loss(rt, B, T, o.aux_alpha, nullptr) : 0.0;

  std::vector<std::vector<std::pair<int32_t, int32_t>>> lists(static_cast<size_t>(E));
  for (int64_t r = 0; r < R; r++)
    for (int64_t k = 0; k < K; k++) lists[size_t(rt.idx[size_t(r * K + k)])].emplace_back(int32_t(r), int32_t(k));
  mc.load.assign(size_t(E), 0);
  mc.experts.clear();
  for (int64_t e = 0; e < E; e++) {
    mc.load[size_t(e)] = int64_t(lists[size_t(e)].size());
    if (lists[size_t(e)].empty()) continue;
    ExpertCache ec;
    ec.expert = e;
    ec.n = int64_t(lists[size_t(e)].size());
    ec.nb = ec.n <= kGemvMaxRows ? ec.n : gemm_row_bucket(ec.n);
    for (auto& [r, k] : lists[size_t(e)]) {
      ec.rows.push_back(r);
      ec.slots.push_back(k);
    }
    mc.experts.push_back(std::move(ec));
  }
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t i = 0; i < mc.experts.size(); i++) {
    ExpertCache& ec = mc.experts[i];
    const FFNWeights& f = w.experts[size_t(ec.expert)];
    ec.x.assign(size_t(ec.nb * D), 0.0f);
    for (int64_t j = 0; j < ec.n; j++) std::memcpy(ec.x.data() + j * D, x + ec.rows[size_t(j)] * D, size_t(D) * 4);
    ec.g.resize(size_t(ec.nb * I));
    ec.u.resize(size_t(ec.nb * I));
    ec.h.resize(size_t(ec.nb * I));
    ec.y.resize(size_t(ec.nb * D));
    matmul_wT(ec.nb, ec.x.data(), D, MatRef::of(f.gate_proj), ec.g.data(), I);
    matmul_wT(ec.nb, ec.x.data(), D, MatRef::of(f.up_proj), ec.u.data(), I);
    swiglu_forward(ec.g.data(), ec.u.data(), ec.h.data(), ec.nb * I);
    matmul_wT(ec.nb, ec.h.data(), I, MatRef::of(f.down_proj), ec.y.data(), D);
  }
  if (w.has_shared) ffn_forward(R, x, w.shared, mc.shared, y, false);
  else std::fill(y, y + R * D, 0.0f);
  // y[r] += w_k Y_k in expert order (deterministic)
  for (const ExpertCache& ec : mc.experts)
    for (int64_t j = 0; j < ec.n; j++) {
      const int64_t r = ec.rows[size_t(j)];
      const float wk = rt.weight[size_t(r * K + ec.slots[size_t(j)])];
      const float* src = ec.y.data() + j * D;
      float* dst = y + r * D;
#pragma omp simd
      for (int64_t d = 0; d < D; d++) dst[d] += wk * src[d];
    }
}

void moe_backward(const ModelConfig& c, int64_t B, int64_t T, const float* x, const MoEWeights& w, MoEWeights& gw,
                  const TrainOptions& o, const MoECache& mc, const float* dy, float* dx) {
  const int64_t R = B * T, D = c.hidden_size, E = c.n_routed_experts, K = c.num_experts_per_tok;
  const int64_t I = c.moe_intermediate_size;
  const Routing& rt = mc.routing;
  std::vector<float> dweight(static_cast<size_t>(R * K), 0.0f);
  std::vector<std::vector<float>> dxe(mc.experts.size());
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t i = 0; i < mc.experts.size(); i++) {
    const ExpertCache& ec = mc.experts[i];
    const FFNWeights& f = w.experts[size_t(ec.expert)];
    FFNWeights& gf = gw.experts[size_t(ec.expert)];
    std::vector<float> dye(size_t(ec.nb * D), 0.0f), dh(size_t(ec.nb * I)), dg(size_t(ec.nb * I)), du(size_t(ec.nb * I));
    for (int64_t j = 0; j < ec.n; j++) {
      const int64_t r = ec.rows[size_t(j)], slot = ec.slots[size_t(j)];
      const float wk = rt.weight[size_t(r * K + slot)];
      const float* g = dy + r * D;
      const float* ye = ec.y.data() + j * D;
      float dot = 0;
      for (int64_t d = 0; d < D; d++) {
        dye[size_t(j * D + d)] = wk * g[d];
        dot += g[d] * ye[d];
      }
      dweight[size_t(r * K + slot)] = dot;  // each (row, slot) belongs to one expert
    }
    linear_backward(ec.nb, dye.data(), D, ec.h.data(), I, f.down_proj, dh.data(), I, false, gf.down_proj.weight, o.precision);
    swiglu_backward(ec.g.data(), ec.u.data(), dh.data(), dg.data(), du.data(), ec.nb * I);
    dxe[i].assign(size_t(ec.nb * D), 0.0f);
    linear_backward(ec.nb, dg.data(), I, ec.x.data(), D, f.gate_proj, dxe[i].data(), D, true, gf.gate_proj.weight, o.precision);
    linear_backward(ec.nb, du.data(), I, ec.x.data(), D, f.up_proj, dxe[i].data(), D, true, gf.up_proj.weight, o.precision);
  }
  if (w.has_shared) ffn_backward(R, x, w.shared, gw.shared, mc.shared, dy, D, dx, o.precision);
  for (size_t i = 0; i < mc.experts.size(); i++) {
    const ExpertCache& ec = mc.experts[i];
    for (int64_t j = 0; j < ec.n; j++) {
      float* dst = dx + int64_t(ec.rows[size_t(j)]) * D;
      const float* src = dxe[i].data() + j * D;
#pragma omp simd
      for (int64_t d = 0; d < D; d++) dst[d] += src[d];
    }
  }
  // router: dz from the routing weights and the balance loss; dx += dz W_g, dW_g += dz^T x
  std::vector<float> dz(static_cast<size_t>(R * E), 0.0f), ds;
  if (o.aux_alpha > 0) {
    ds.assign(size_t(R * E), 0.0f);
    sequence_balance_loss(rt, B, T, o.aux_alpha, ds.data());
  }
  route_backward(c, rt, dweight.data(), ds.empty() ? nullptr : ds.data(), dz.data());
  Linear router{w.router, Tensor{}, 128, 128};
  linear_backward(R, dz.data(), E, x, D, router, dx, D, true, gw.router, Precision::F32);
}

// Causal attention of sequence b over its own T rows (document masks when packing).
AttentionDims sequence_attention(const ModelConfig& c, const TrainShape& s, int64_t b) {
  AttentionDims d;
  d.heads = c.num_attention_heads;
  d.Tq = d.Tk = s.T;
  d.dqk = c.qk_head_dim();
  d.dv = c.v_head_dim;
  d.scale = float(c.softmax_scale());
  d.key_begin = s.key_begin.empty() ? nullptr : s.key_begin.data() + b * s.T;
  return d;
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// Decoder layer: x += MLA(norm1 x); x += FFN(norm2 x)

void layer_forward(const ModelConfig& c, const LayerWeights& w, const RopeTable& rope, const TrainShape& s,
                   const TrainOptions& o, float* x, LayerCache& lc) {
  const int64_t R = s.rows(), B = s.B, T = s.T, D = c.hidden_size, H = c.num_attention_heads;
  const int64_t dqk = c.qk_head_dim(), dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim, dv = c.v_head_dim;
  const int64_t Lr = c.kv_lora_rank, kvd = c.kv_cache_dim(), qr = c.q_lora_rank;
  const float eps = float(c.rms_norm_eps);
  const MLAWeights& a = w.attn;

  lc.x_in.assign(x, x + R * D);
  float* hn1 = sized(lc.hn1, size_t(R * D));
  rmsnorm_forward(x, D, w.input_layernorm.f32(), eps, R, D, hn1, D, sized(lc.rstd1, size_t(R)));

  // queries
  float* q = sized(lc.q, size_t(R * H * dqk));
  if (qr > 0) {
    float* qa = sized(lc.qa, size_t(R * qr));
    linear_forward(R, hn1, D, a.q_a_proj, qa, qr);
    float* qan = sized(lc.qan, size_t(R * qr));
    rmsnorm_forward(qa, qr, a.q_a_layernorm.f32(), eps, R, qr, qan, qr, sized(lc.qa_rstd, size_t(R)));
    linear_forward(R, qan, qr, a.q_b_proj, q, H * dqk);
  } else {
    linear_forward(R, hn1, D, a.q_proj, q, H * dqk);
  }
  rope_apply(q, R, H * dqk, dn, H, dqk, s.positions.data(), rope);
  // compressed kv: c = norm(kv_a x [:L]), k_pe = rope(kv_a x [L:])
  float* kv = sized(lc.kv, size_t(R * kvd));
  linear_forward(R, hn1, D, a.kv_a_proj, kv, kvd);
  float* cl = sized(lc.c, size_t(R * Lr));
  rmsnorm_forward(kv, kvd, a.kv_a_layernorm.f32(), eps, R, Lr, cl, Lr, sized(lc.kv_rstd, size_t(R)));
  rope_apply(kv, R, kvd, Lr, 1, 0, s.positions.data(), rope);  // kv[:, L:] now holds the rotated k_pe
  float* kvx = sized(lc.kvx, size_t(R * H * (dn + dv)));
  linear_forward(R, cl, Lr, a.kv_b_proj, kvx, H * (dn + dv));

  // per-sequence causal attention on per-head Q [H][T][dqk], K [H][T][dqk], V [H][T][dv]
  float* Qh = sized(lc.Qh, size_t(R * H * dqk));
  float* Kh = sized(lc.Kh, size_t(R * H * dqk));
  float* Vh = sized(lc.Vh, size_t(R * H * dv));
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t t = 0; t < T; t++) {
        const int64_t r = b * T + t, hb = (b * H + h) * T + t;
        std::memcpy(Qh + hb * dqk, q + r * H * dqk + h * dqk, size_t(dqk) * 4);
        std::memcpy(Kh + hb * dqk, kvx + r * H * (dn + dv) + h * (dn + dv), size_t(dn) * 4);
        std::memcpy(Kh + hb * dqk + dn, kv + r * kvd + Lr, size_t(dr) * 4);
        std::memcpy(Vh + hb * dv, kvx + r * H * (dn + dv) + h * (dn + dv) + dn, size_t(dv) * 4);
      }
  float* O = sized(lc.O, size_t(R * H * dv));
  float* lse = sized(lc.lse, size_t(R * H));
  for (int64_t b = 0; b < B; b++) {
    const AttentionDims d = sequence_attention(c, s, b);
    attention_forward(d, Qh + b * H * T * dqk, Kh + b * H * T * dqk, Vh + b * H * T * dv, O + b * T * H * dv, H * dv,
                      lse + b * H * T, o.precision);
  }
  matmul_wT(R, O, H * dv, MatRef::of(a.o_proj), x, D, /*accumulate=*/true);

  lc.x_mid.assign(x, x + R * D);
  float* hn2 = sized(lc.hn2, size_t(R * D));
  rmsnorm_forward(x, D, w.post_attention_layernorm.f32(), eps, R, D, hn2, D, sized(lc.rstd2, size_t(R)));
  if (w.is_moe) {
    std::vector<float> y(static_cast<size_t>(R * D));
    moe_forward(c, B, T, hn2, w.moe, o, lc.moe, y.data());
    for (int64_t i = 0; i < R * D; i++) x[i] += y[size_t(i)];
  } else {
    ffn_forward(R, hn2, w.mlp, lc.dense, x, /*accumulate=*/true);
  }
}

void layer_backward(const ModelConfig& c, const LayerWeights& w, LayerWeights& g, const RopeTable& rope,
                    const TrainShape& s, const TrainOptions& o, const LayerCache& lc, float* dx) {
  const int64_t R = s.rows(), B = s.B, T = s.T, D = c.hidden_size, H = c.num_attention_heads;
  const int64_t dqk = c.qk_head_dim(), dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim, dv = c.v_head_dim;
  const int64_t Lr = c.kv_lora_rank, kvd = c.kv_cache_dim(), qr = c.q_lora_rank;
  const MLAWeights& a = w.attn;
  MLAWeights& ga = g.attn;
  const Precision p = o.precision;

  // feed-forward branch: dhn2 from dx, then through norm2 into dx
  std::vector<float> dhn(static_cast<size_t>(R * D), 0.0f);
  if (w.is_moe) moe_backward(c, B, T, lc.hn2.data(), w.moe, g.moe, o, lc.moe, dx, dhn.data());
  else ffn_backward(R, lc.hn2.data(), w.mlp, g.mlp, lc.dense, dx, D, dhn.data(), p);
  rmsnorm_backward(lc.x_mid.data(), D, w.post_attention_layernorm.f32(), lc.rstd2.data(), dhn.data(), D, R, D, dx, D,
                   g.post_attention_layernorm.f32(), /*accumulate_dx=*/true);

  // attention branch
  std::vector<float> dO(static_cast<size_t>(R * H * dv));
  linear_backward(R, dx, D, lc.O.data(), H * dv, a.o_proj, dO.data(), H * dv, false, ga.o_proj.weight, p);
  std::vector<float> dQh(static_cast<size_t>(R * H * dqk)), dKh(static_cast<size_t>(R * H * dqk)),
      dVh(static_cast<size_t>(R * H * dv));
  for (int64_t b = 0; b < B; b++) {
    const AttentionDims d = sequence_attention(c, s, b);
    const int64_t qo = b * H * T * dqk, vo = b * H * T * dv;
    attention_backward(d, lc.Qh.data() + qo, lc.Kh.data() + qo, lc.Vh.data() + vo, lc.O.data() + b * T * H * dv,
                       H * dv, dO.data() + b * T * H * dv, H * dv, lc.lse.data() + b * H * T, dQh.data() + qo,
                       dKh.data() + qo, dVh.data() + vo, p);
  }
  std::vector<float> dq(static_cast<size_t>(R * H * dqk)), dkvx(static_cast<size_t>(R * H * (dn + dv))),
      dkv(static_cast<size_t>(R * kvd), 0.0f);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < R; r++) {
    const int64_t b = r / T, t = r % T;
    float* dkpe = dkv.data() + r * kvd + Lr;
    for (int64_t h = 0; h < H; h++) {
      const int64_t hb = (b * H + h) * T + t;
      std::memcpy(dq.data() + r * H * dqk + h * dqk, dQh.data() + hb * dqk, size_t(dqk) * 4);
      std::memcpy(dkvx.data() + r * H * (dn + dv) + h * (dn + dv), dKh.data() + hb * dqk, size_t(dn) * 4);
      std::memcpy(dkvx.data() + r * H * (dn + dv) + h * (dn + dv) + dn, dVh.data() + hb * dv, size_t(dv) * 4);
      for (int64_t i = 0; i < dr; i++) dkpe[i] += dKh[size_t(hb * dqk + dn + i)];  // k_pe is shared by the heads
    }
  }
  // RoPE is a rotation: its backward rotates by -angle
  rope_apply(dq.data(), R, H * dqk, dn, H, dqk, s.positions.data(), rope, /*inverse=*/true);
  rope_apply(dkv.data(), R, kvd, Lr, 1, 0, s.positions.data(), rope, /*inverse=*/true);
  // kv_b and the latent norm
  std::vector<float> dc(static_cast<size_t>(R * Lr));
  linear_backward(R, dkvx.data(), H * (dn + dv), lc.c.data(), Lr, a.kv_b_proj, dc.data(), Lr, false, ga.kv_b_proj.weight, p);
  rmsnorm_backward(lc.kv.data(), kvd, a.kv_a_layernorm.f32(), lc.kv_rstd.data(), dc.data(), Lr, R, Lr, dkv.data(), kvd,
                   ga.kv_a_layernorm.f32(), false);
  std::fill(dhn.begin(), dhn.end(), 0.0f);
  linear_backward(R, dkv.data(), kvd, lc.hn1.data(), D, a.kv_a_proj, dhn.data(), D, true, ga.kv_a_proj.weight, p);
  if (qr > 0) {
    std::vector<float> dqan(static_cast<size_t>(R * qr)), dqa(static_cast<size_t>(R * qr));
    linear_backward(R, dq.data(), H * dqk, lc.qan.data(), qr, a.q_b_proj, dqan.data(), qr, false, ga.q_b_proj.weight, p);
    rmsnorm_backward(lc.qa.data(), qr, a.q_a_layernorm.f32(), lc.qa_rstd.data(), dqan.data(), qr, R, qr, dqa.data(), qr,
                     ga.q_a_layernorm.f32(), false);
    linear_backward(R, dqa.data(), qr, lc.hn1.data(), D, a.q_a_proj, dhn.data(), D, true, ga.q_a_proj.weight, p);
  } else {
    linear_backward(R, dq.data(), H * dqk, lc.hn1.data(), D, a.q_proj, dhn.data(), D, true, ga.q_proj.weight, p);
  }
  rmsnorm_backward(lc.x_in.data(), D, w.input_layernorm.f32(), lc.rstd1.data(), dhn.data(), D, R, D, dx, D,
                   g.input_layernorm.f32(), true);
}

}  // namespace dseek
