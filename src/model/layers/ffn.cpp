#include "model/layers/ffn.h"

#include "core/memory.h"
#include "kernels/swiglu.h"
#include "model/layers/linear.h"

namespace dseek {

void ffn_forward(int64_t R, const float* x, const FFNWeights& w, FFNCache& c, float* y, bool accumulate,
                 bool fp8_cache) {
  const int64_t I = w.gate_proj.out(), D = w.gate_proj.in();
  std::vector<float> scratch;
  if (fp8_cache) {  // g, u, h only while this forward runs
    scratch.resize(size_t(3 * R * I));
    release(c.g), release(c.u), release(c.h);
  }
  float* g = fp8_cache ? scratch.data() : grow(c.g, size_t(R * I));
  float* u = fp8_cache ? g + R * I : grow(c.u, size_t(R * I));
  float* h = fp8_cache ? u + R * I : grow(c.h, size_t(R * I));
  linear_forward({LinearJob{R, x, D, &w.gate_proj, g, I}, LinearJob{R, x, D, &w.up_proj, u, I}});
  swiglu_forward(g, u, h, R * I);
  linear_forward(R, h, I, w.down_proj, y, D, accumulate);
  if (fp8_cache) {
    c.gq.store(g, R, I, I);
    c.uq.store(u, R, I, I);
  } else {
    c.gq = Fp8Matrix{}, c.uq = Fp8Matrix{};
  }
}

void ffn_backward(int64_t R, const float* x, const FFNWeights& w, FFNWeights& gw, const FFNCache& c, const float* dy,
                  int64_t lddy, float* dx, Precision p) {
  const int64_t I = w.gate_proj.out(), D = w.gate_proj.in();
  std::vector<float> dh(static_cast<size_t>(R * I)), dg(static_cast<size_t>(R * I)), du(static_cast<size_t>(R * I));
  const float *g = c.g.data(), *u = c.u.data(), *h = c.h.data();
  std::vector<float> gu;
  if (c.g.empty() && c.gq.rows == R) {  // FP8 cache: g and u dequantised, h recomputed from them
    gu.resize(size_t(3 * R * I));
    c.gq.load(gu.data());
    c.uq.load(gu.data() + R * I);
    swiglu_forward(gu.data(), gu.data() + R * I, gu.data() + 2 * R * I, R * I);
    g = gu.data(), u = g + R * I, h = u + R * I;
  }
  linear_backward(R, dy, lddy, h, I, w.down_proj, dh.data(), I, false, gw.down_proj, p);
  swiglu_backward(g, u, dh.data(), dg.data(), du.data(), R * I);
  linear_backward(R, dg.data(), I, x, D, w.gate_proj, dx, D, true, gw.gate_proj, p);
  linear_backward(R, du.data(), I, x, D, w.up_proj, dx, D, true, gw.up_proj, p);
}

}  // namespace dseek
