#include "model/layers/decoder_layer.h"

#include <algorithm>

#include "core/memory.h"
#include "core/profile.h"
#include "kernels/rmsnorm.h"

namespace dseek {

void layer_forward(const ModelConfig& c, int64_t layer, const LayerWeights& w, const RopeTable& rope,
                   const RowBatch& rb, const LayerOptions& o, float* x, LayerCache& lc) {
  const int64_t R = rb.rows, D = c.hidden_size;
  const float eps = float(c.rms_norm_eps);
  if (o.save) lc.x_in.assign(x, x + R * D);
  float* hn1 = grow(lc.hn1, size_t(R * D));
  rmsnorm_forward(x, D, w.input_layernorm.f32(), eps, R, D, hn1, D, grow(lc.rstd1, size_t(R)));
  {
    DSEEK_PROFILE("attention");
    if (c.attention() == AttentionKind::MLA) mla_forward(c, layer, w.mla, rope, rb, o, hn1, x, lc.mla);
    else gqa_forward(c, layer, w.gqa, rope, rb, o, hn1, x, lc.gqa);
  }
  if (o.save) lc.x_mid.assign(x, x + R * D);
  float* hn2 = grow(lc.hn2, size_t(R * D));
  rmsnorm_forward(x, D, w.post_attention_layernorm.f32(), eps, R, D, hn2, D, grow(lc.rstd2, size_t(R)));
  if (w.is_moe) {
    DSEEK_PROFILE("moe");
    float* y = grow(lc.y, size_t(R * D));
    moe_forward(c, R, rb.has_cache() ? 0 : rb.seqs, rb.T, hn2, w.moe, o, lc.moe, y);
#pragma omp simd
    for (int64_t i = 0; i < R * D; i++) x[i] += y[i];
  } else {
    DSEEK_PROFILE("dense_ffn");
    ffn_forward(R, hn2, w.mlp, lc.dense, x, /*accumulate=*/true, o.save && o.fp8_activations);
  }
}

void layer_backward(const ModelConfig& c, const LayerWeights& w, LayerWeights& g, const RopeTable& rope,
                    const RowBatch& rb, const LayerOptions& o, const LayerCache& lc, float* dx) {
  const int64_t R = rb.rows, D = c.hidden_size;
  // feed-forward branch: dhn2 from dx, then through norm2 into dx
  std::vector<float> dhn(static_cast<size_t>(R * D), 0.0f);
  if (w.is_moe) moe_backward(c, R, rb.seqs, rb.T, lc.hn2.data(), w.moe, g.moe, o, lc.moe, dx, dhn.data());
  else ffn_backward(R, lc.hn2.data(), w.mlp, g.mlp, lc.dense, dx, D, dhn.data(), o.precision);
  rmsnorm_backward(lc.x_mid.data(), D, w.post_attention_layernorm.f32(), lc.rstd2.data(), dhn.data(), D, R, D, dx, D,
                   g.post_attention_layernorm.f32(), /*accumulate_dx=*/true);
  // attention branch: dhn1 from dx, then through norm1 into dx
  std::fill(dhn.begin(), dhn.end(), 0.0f);
  if (c.attention() == AttentionKind::MLA)
    mla_backward(c, w.mla, g.mla, rope, rb, o, lc.mla, lc.hn1.data(), dx, dhn.data());
  else
    gqa_backward(c, w.gqa, g.gqa, rope, rb, o, lc.gqa, lc.hn1.data(), dx, dhn.data());
  rmsnorm_backward(lc.x_in.data(), D, w.input_layernorm.f32(), lc.rstd1.data(), dhn.data(), D, R, D, dx, D,
                   g.input_layernorm.f32(), true);
}

void layer_forward(const ModelConfig& c, const LayerWeights& w, const RopeTable& rope, const TrainShape& s,
                   const LayerOptions& o, float* x, LayerCache& cache) {
  layer_forward(c, 0, w, rope, RowBatch::of(s), o, x, cache);
}

void layer_backward(const ModelConfig& c, const LayerWeights& w, LayerWeights& g, const RopeTable& rope,
                    const TrainShape& s, const LayerOptions& o, const LayerCache& cache, float* dx) {
  layer_backward(c, w, g, rope, RowBatch::of(s), o, cache, dx);
}

}  // namespace dseek
