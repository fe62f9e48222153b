#include "train/optimizer.h"

#include <cmath>
#include <cstring>

#include "core/error.h"

namespace dseek {

double lr_at(const OptimizerConfig& o, int64_t step, int64_t total) {
  if (o.warmup > 0 && step < o.warmup) return o.lr * double(step + 1) / double(o.warmup);
  const double lo = o.lr * o.min_lr_ratio;
  if (o.schedule == "constant") return o.lr;
  if (o.schedule == "wsd") {
    const int64_t decay = std::max<int64_t>(1, int64_t(double(total) * o.decay_fraction));
    const int64_t start = total - decay;
    if (step < start) return o.lr;
    const double f = std::min(1.0, double(step - start + 1) / double(decay));
    return o.lr + (lo - o.lr) * f;
  }
  if (o.schedule != "cosine") fail("unknown lr schedule '{}' (cosine, wsd, constant)", o.schedule);
  const int64_t span = std::max<int64_t>(1, total - o.warmup);
  const double f = std::min(1.0, double(step - o.warmup) / double(span));
  return lo + 0.5 * (o.lr - lo) * (1.0 + std::cos(M_PI * f));
}

AdamW::AdamW(const OptimizerConfig& cfg, const ModelConfig& mc, ModelWeights& params, ModelWeights& grads) : cfg_(cfg) {
  const bool mtp = !params.mtp.empty();
  std::vector<ParamRef> ps, gs;
  for_each_param(mc, params, [&](ParamRef& p) { ps.push_back(p); }, ParamOptions{mtp});
  for_each_param(mc, grads, [&](ParamRef& p) { gs.push_back(p); }, ParamOptions{mtp});
  DSEEK_CHECK(ps.size() == gs.size(), "optimizer: parameter and gradient lists differ");
  for (size_t i = 0; i < ps.size(); i++) {
    if (ps[i].role == ParamRole::RouterBias) continue;  // updated by the balance rule, not by gradients
    DSEEK_CHECK(ps[i].tensor->dtype == DType::F32, "optimizer: parameter {} must be F32 (master weights)", ps[i].name);
    const DType mt = cfg_.bf16_moments ? DType::BF16 : DType::F32;
    Slot s{ps[i].name, ps[i].tensor, gs[i].tensor, Tensor::zeros(mt, ps[i].shape), Tensor::zeros(mt, ps[i].shape),
           ps[i].role != ParamRole::Norm && ps[i].role != ParamRole::Bias};
    slots_.push_back(std::move(s));
  }
}

double AdamW::grad_norm() const {
  double sum = 0;
  for (const Slot& s : slots_) {
    const float* g = s.grad->f32();
    const int64_t n = s.grad->numel();
    double part = 0;
#pragma omp parallel for reduction(+ : part) schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) part += double(g[i]) * double(g[i]);
    sum += part;
  }
  return std::sqrt(sum);
}

void AdamW::scale_grads(float f) {
  for (Slot& s : slots_) {
    float* g = s.grad->f32();
    const int64_t n = s.grad->numel();
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) g[i] *= f;
  }
}

void AdamW::zero_grads() {
  for (Slot& s : slots_) std::fill(s.grad->f32(), s.grad->f32() + s.grad->numel(), 0.0f);
}

OptimizerStep AdamW::step(double lr) {
  OptimizerStep out;
  out.lr = lr;
  out.grad_norm = grad_norm();
  float clip = 1.0f;
  if (cfg_.grad_clip > 0) clip = float(std::min(1.0, cfg_.grad_clip / (out.grad_norm + 1e-6)));
  t_++;
  const double bc1 = 1.0 - std::pow(cfg_.beta1, double(t_)), bc2 = 1.0 - std::pow(cfg_.beta2, double(t_));
  const float b1 = float(cfg_.beta1), b2 = float(cfg_.beta2);
  const float step_size = float(lr / bc1), inv_sqrt_bc2 = float(1.0 / std::sqrt(bc2)), eps = float(cfg_.eps);
  for (Slot& s : slots_) {
    float* p = s.param->f32();
    const float* g = s.grad->f32();
    const float decay = s.decay ? float(1.0 - lr * cfg_.weight_decay) : 1.0f;
    const int64_t n = s.param->numel();
    if (s.m.dtype == DType::F32) {
      float* m = s.m.f32();
      float* v = s.v.f32();
#pragma omp parallel for simd schedule(static) if (n > 65536)
      for (int64_t i = 0; i < n; i++) {
        const float gi = g[i] * clip;
        p[i] *= decay;
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        p[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + eps);
      }
      continue;
    }
    // BF16 moments: the same update in F32, the new moments rounded to BF16 (nearest even) when stored
    uint16_t* m = s.m.as<uint16_t>();
    uint16_t* v = s.v.as<uint16_t>();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
      const float gi = g[i] * clip;
      p[i] *= decay;
      m[i] = f32_to_bf16(b1 * bf16_to_f32(m[i]) + (1.0f - b1) * gi);
      v[i] = f32_to_bf16(b2 * bf16_to_f32(v[i]) + (1.0f - b2) * gi * gi);
      const float mi = bf16_to_f32(m[i]), vi = bf16_to_f32(v[i]);
      p[i] -= step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
    }
  }
  return out;
}

NamedTensors AdamW::state() const {
  NamedTensors out;
  for (const Slot& s : slots_) {
    out.emplace_back("exp_avg." + s.name, s.m);
    out.emplace_back("exp_avg_sq." + s.name, s.v);
  }
  Tensor t = Tensor::empty(DType::I64, {1});
  t.as<int64_t>()[0] = t_;
  out.emplace_back("step", t);
  return out;
}

void AdamW::load_state(const SafetensorsFile& f) {
  for (Slot& s : slots_) {
    for (auto [prefix, dst] : {std::pair<const char*, Tensor*>{"exp_avg.", &s.m}, {"exp_avg_sq.", &s.v}}) {
      const std::string name = prefix + s.name;
      if (!f.contains(name)) fail("{}: missing optimizer tensor '{}'", f.path(), name);
      Tensor t = f.get(name);
      if (t.dtype != dst->dtype || t.shape != dst->shape)
        fail("{}: optimizer tensor '{}' is {}, expected {}{}", f.path(), name, t.desc(), dtype_name(dst->dtype),
             shape_str(dst->shape));
      std::memcpy(dst->data, t.data, size_t(t.numel()) * dtype_size(t.dtype));
    }
  }
  if (!f.contains("step")) fail("{}: missing optimizer tensor 'step'", f.path());
  Tensor st = f.get("step");
  if (st.dtype != DType::I64 || st.numel() != 1) fail("{}: optimizer 'step' must be I64[1]", f.path());
  t_ = st.as<int64_t>()[0];
}

}  // namespace dseek
