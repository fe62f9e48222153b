#include "model/layers/mtp.h"

#include "kernels/rmsnorm.h"
#include "model/layers/embedding.h"
#include "model/layers/linear.h"

namespace dseek {

void mtp_forward(const ModelConfig& c, const MTPWeights& m, const Tensor& embed, const RopeTable& rope,
                 const RowBatch& rb, const LayerOptions& o, const float* prev, const int32_t* tokens, float* out,
                 MTPCache& mc) {
  const int64_t R = rb.rows, D = c.hidden_size;
  const float eps = float(c.rms_norm_eps);
  mc.tokens.assign(tokens, tokens + R);
  mc.prev.assign(prev, prev + R * D);
  mc.e.resize(size_t(R * D));
  embedding_forward(embed, tokens, R, mc.e.data());
  mc.cat.resize(size_t(R * 2 * D));
  mc.e_rstd.resize(size_t(R));
  mc.h_rstd.resize(size_t(R));
  rmsnorm_forward(mc.e.data(), D, m.enorm.f32(), eps, R, D, mc.cat.data(), 2 * D, mc.e_rstd.data());
  rmsnorm_forward(prev, D, m.hnorm.f32(), eps, R, D, mc.cat.data() + D, 2 * D, mc.h_rstd.data());
  mc.hk.resize(size_t(R * D));
  linear_forward(R, mc.cat.data(), 2 * D, m.eh_proj, mc.hk.data(), D);
  layer_forward(c, c.num_hidden_layers, m.block, rope, rb, o, mc.hk.data(), mc.block);
  mc.hk_rstd.resize(size_t(R));
  rmsnorm_forward(mc.hk.data(), D, m.head_norm.f32(), eps, R, D, out, D, mc.hk_rstd.data());
}

void mtp_backward(const ModelConfig& c, const MTPWeights& m, MTPWeights& g, Tensor& dembed, const RopeTable& rope,
                  const RowBatch& rb, const LayerOptions& o, const MTPCache& mc, const float* dout, const float* dhk_in,
                  float* dprev) {
  const int64_t R = rb.rows, D = c.hidden_size;
  std::vector<float> dhk(static_cast<size_t>(R * D), 0.0f);
  if (dhk_in) dhk.assign(dhk_in, dhk_in + R * D);
  rmsnorm_backward(mc.hk.data(), D, m.head_norm.f32(), mc.hk_rstd.data(), dout, D, R, D, dhk.data(), D,
                   g.head_norm.f32(), true);
  layer_backward(c, m.block, g.block, rope, rb, o, mc.block, dhk.data());
  // dhk now holds the gradient of the block input eh_proj(cat)
  std::vector<float> dcat(static_cast<size_t>(R * 2 * D));
  linear_backward(R, dhk.data(), D, mc.cat.data(), 2 * D, m.eh_proj, dcat.data(), 2 * D, false, g.eh_proj, o.precision);
  std::vector<float> de(static_cast<size_t>(R * D));
  rmsnorm_backward(mc.e.data(), D, m.enorm.f32(), mc.e_rstd.data(), dcat.data(), 2 * D, R, D, de.data(), D,
                   g.enorm.f32(), false);
  embedding_backward(mc.tokens.data(), R, de.data(), dembed);
  rmsnorm_backward(mc.prev.data(), D, m.hnorm.f32(), mc.h_rstd.data(), dcat.data() + D, 2 * D, R, D, dprev, D,
                   g.hnorm.f32(), false);
}

}  // namespace dseek
