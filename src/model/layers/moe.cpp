#include "model/layers/moe.h"

#include <algorithm>

#include "core/memory.h"
#include "core/profile.h"
#include "kernels/swiglu.h"
#include "model/layers/linear.h"

namespace dseek {

namespace {

// Sizes an expert's buffers; returns where its SwiGLU product goes (in place over g when backward will not need g).
float* size_expert(ExpertBatch& b, int64_t D, int64_t I, bool save) {
  b.g.resize(size_t(b.nb * I));
  b.u.resize(size_t(b.nb * I));
  b.y.resize(size_t(b.nb * D));
  if (!save) return b.g.data();
  b.h.resize(size_t(b.nb * I));
  return b.h.data();
}

// Every expert's gate and up (and the shared expert's) in one pass over their weights, then every down; the shared
// expert's output goes to y [R, D].
void experts_small(const MoEWeights& w, int64_t R, const float* x, int64_t D, int64_t I, std::vector<ExpertBatch>& ex,
                   bool save, MoECache& mc, float* y) {
  std::vector<LinearJob> jobs;
  std::vector<float*> h(ex.size());
  for (size_t i = 0; i < ex.size(); i++) {
    ExpertBatch& b = ex[i];
    h[i] = size_expert(b, D, I, save);
    const FFNWeights& f = w.experts[size_t(b.expert)];
    jobs.push_back({b.n, b.x.data(), D, &f.gate_proj, b.g.data(), I});
    jobs.push_back({b.n, b.x.data(), D, &f.up_proj, b.u.data(), I});
  }
  const int64_t Is = w.has_shared ? w.shared.gate_proj.out() : 0;
  if (w.has_shared) {
    mc.shared.g.resize(size_t(R * Is));
    mc.shared.u.resize(size_t(R * Is));
    mc.shared.h.resize(size_t(R * Is));
    jobs.push_back({R, x, D, &w.shared.gate_proj, mc.shared.g.data(), Is});
    jobs.push_back({R, x, D, &w.shared.up_proj, mc.shared.u.data(), Is});
  }
  {
    DSEEK_PROFILE("moe.gate_up");
    linear_forward(jobs);
  }
  jobs.clear();
  for (size_t i = 0; i < ex.size(); i++) {
    ExpertBatch& b = ex[i];
    swiglu_forward(b.g.data(), b.u.data(), h[i], b.n * I);
    jobs.push_back({b.n, h[i], I, &w.experts[size_t(b.expert)].down_proj, b.y.data(), D});
  }
  if (w.has_shared) {
    swiglu_forward(mc.shared.g.data(), mc.shared.u.data(), mc.shared.h.data(), R * Is);
    jobs.push_back({R, mc.shared.h.data(), Is, &w.shared.down_proj, y, D});
  }
  DSEEK_PROFILE("moe.down");
  linear_forward(jobs);
}

// One expert per thread; each product runs on its thread (padded rows are zero inputs).
void experts_parallel(const MoEWeights& w, int64_t D, int64_t I, bool save, bool fp8_cache, std::vector<ExpertBatch>& ex) {
  DSEEK_PROFILE("moe.experts");
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t i = 0; i < ex.size(); i++) {
    ExpertBatch& b = ex[i];
    float* h = size_expert(b, D, I, save);
    const FFNWeights& f = w.experts[size_t(b.expert)];
    linear_forward(b.nb, b.x.data(), D, f.gate_proj, b.g.data(), I);
    linear_forward(b.nb, b.x.data(), D, f.up_proj, b.u.data(), I);
    swiglu_forward(b.g.data(), b.u.data(), h, b.nb * I);
    linear_forward(b.nb, h, I, f.down_proj, b.y.data(), D);
    if (fp8_cache) {  // x, g, u kept in FP8 for the backward; h is recomputed there
      b.xq.store(b.x.data(), b.nb, D, D);
      b.gq.store(b.g.data(), b.nb, I, I);
      b.uq.store(b.u.data(), b.nb, I, I);
      release(b.x), release(b.g), release(b.u), release(b.h);
    }
  }
}

}  // namespace

void moe_forward(const ModelConfig& c, int64_t R, int64_t seqs, int64_t T, const float* x, const MoEWeights& w,
                 const LayerOptions& o, MoECache& mc, float* y, ExpertDispatch& dispatch) {
  const int64_t D = c.hidden_size, E = c.n_routed_experts, I = c.moe_intermediate_size;
  {
    DSEEK_PROFILE("moe.router");
    mc.logits.resize(size_t(R * E));
    matmul(Matmul{R, x, D, MatRef::of(w.router), mc.logits.data(), E});  // router in F32
    route(c, mc.logits.data(), w.score_bias.data ? w.score_bias.f32() : nullptr, R, mc.routing);
  }
  const Routing& rt = mc.routing;
  mc.aux_loss = o.aux_alpha > 0 && seqs > 0 ? sequence_balance_loss(rt, seqs, T, o.aux_alpha, nullptr) : 0.0;
  dispatch.dispatch(rt, x, D, mc.experts);
  mc.load.assign(size_t(E), 0);
  for (const ExpertBatch& b : mc.experts) mc.load[size_t(b.expert)] = b.n;

  // y = shared(x) + sum_k w_k expert_k(x), experts in index order; the shared expert writes y first
  if (!w.has_shared) std::fill(y, y + R * D, 0.0f);
  if (R <= kGemvMaxRows) {  // decode: no expert has more rows than R
    experts_small(w, R, x, D, I, mc.experts, o.save, mc, y);
  } else {
    if (w.has_shared) {
      DSEEK_PROFILE("moe.shared");
      ffn_forward(R, x, w.shared, mc.shared, y, false, o.save && o.fp8_activations);
    }
    experts_parallel(w, D, I, o.save, o.save && o.fp8_activations, mc.experts);
  }
  dispatch.combine(rt, mc.experts, D, y);
}

void moe_backward(const ModelConfig& c, int64_t R, int64_t seqs, int64_t T, const float* x, const MoEWeights& w,
                  MoEWeights& gw, const LayerOptions& o, const MoECache& mc, const float* dy, float* dx,
                  ExpertDispatch& dispatch) {
  const int64_t D = c.hidden_size, E = c.n_routed_experts, K = c.num_experts_per_tok;
  const int64_t I = c.moe_intermediate_size;
  const Routing& rt = mc.routing;
  std::vector<float> dweight(static_cast<size_t>(R * K), 0.0f);
  std::vector<std::vector<float>> dye, dxe(mc.experts.size());
  dispatch.combine_backward(rt, mc.experts, dy, D, dye, dweight.data());
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t i = 0; i < mc.experts.size(); i++) {
    const ExpertBatch& b = mc.experts[i];
    const FFNWeights& f = w.experts[size_t(b.expert)];
    FFNWeights& gf = gw.experts[size_t(b.expert)];
    std::vector<float> dh(size_t(b.nb * I)), dg(size_t(b.nb * I)), du(size_t(b.nb * I));
    const float *xe = b.x.data(), *g = b.g.data(), *u = b.u.data(), *h = b.h.data();
    std::vector<float> act;
    if (b.g.empty() && b.gq.rows == b.nb) {  // FP8 cache: x, g, u dequantised, h recomputed
      act.resize(size_t(b.nb * (D + 3 * I)));
      float *px = act.data(), *pg = px + b.nb * D, *pu = pg + b.nb * I, *ph = pu + b.nb * I;
      b.xq.load(px), b.gq.load(pg), b.uq.load(pu);
      swiglu_forward(pg, pu, ph, b.nb * I);
      xe = px, g = pg, u = pu, h = ph;
    }
    linear_backward(b.nb, dye[i].data(), D, h, I, f.down_proj, dh.data(), I, false, gf.down_proj, o.precision);
    swiglu_backward(g, u, dh.data(), dg.data(), du.data(), b.nb * I);
    dxe[i].assign(size_t(b.nb * D), 0.0f);
    linear_backward(b.nb, dg.data(), I, xe, D, f.gate_proj, dxe[i].data(), D, true, gf.gate_proj, o.precision);
    linear_backward(b.nb, du.data(), I, xe, D, f.up_proj, dxe[i].data(), D, true, gf.up_proj, o.precision);
  }
  if (w.has_shared) ffn_backward(R, x, w.shared, gw.shared, mc.shared, dy, D, dx, o.precision);
  dispatch.dispatch_backward(mc.experts, dxe, D, dx);
  // router: dz from the routing weights and the balance loss; dx += dz W_g, dW_g += dz^T x
  std::vector<float> dz(static_cast<size_t>(R * E), 0.0f), ds;
  if (o.aux_alpha > 0 && seqs > 0) {
    ds.assign(size_t(R * E), 0.0f);
    sequence_balance_loss(rt, seqs, T, o.aux_alpha * o.grad_scale, ds.data());
  }
  route_backward(c, rt, dweight.data(), ds.empty() ? nullptr : ds.data(), dz.data());
  Linear router, grouter;
  router.weight = w.router;
  grouter.weight = gw.router;
  linear_backward(R, dz.data(), E, x, D, router, dx, D, true, grouter, Precision::F32);
}

}  // namespace dseek
