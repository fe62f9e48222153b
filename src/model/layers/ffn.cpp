#include "model/layers/ffn.h"

#include "core/memory.h"
#include "kernels/swiglu.h"
#include "model/layers/linear.h"

namespace dseek {

void ffn_forward(int64_t R, const float* x, const FFNWeights& w, FFNCache& c, float* y, bool accumulate) {
  const int64_t I = w.gate_proj.out(), D = w.gate_proj.in();
  float* g = grow(c.g, size_t(R * I));
  float* u = grow(c.u, size_t(R * I));
  float* h = grow(c.h, size_t(R * I));
  linear_forward({LinearJob{R, x, D, &w.gate_proj, g, I}, LinearJob{R, x, D, &w.up_proj, u, I}});
  swiglu_forward(g, u, h, R * I);
  linear_forward(R, h, I, w.down_proj, y, D, accumulate);
}

void ffn_backward(int64_t R, const float* x, const FFNWeights& w, FFNWeights& gw, const FFNCache& c, const float* dy,
                  int64_t lddy, float* dx, Precision p) {
  const int64_t I = w.gate_proj.out(), D = w.gate_proj.in();
  std::vector<float> dh(static_cast<size_t>(R * I)), dg(static_cast<size_t>(R * I)), du(static_cast<size_t>(R * I));
  linear_backward(R, dy, lddy, c.h.data(), I, w.down_proj, dh.data(), I, false, gw.down_proj, p);
  swiglu_backward(c.g.data(), c.u.data(), dh.data(), dg.data(), du.data(), R * I);
  linear_backward(R, dg.data(), I, x, D, w.gate_proj, dx, D, true, gw.gate_proj, p);
  linear_backward(R, du.data(), I, x, D, w.up_proj, dx, D, true, gw.up_proj, p);
}

}  // namespace dseek
