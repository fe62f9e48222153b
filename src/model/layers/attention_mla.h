// Multi-head latent attention (DeepSeek-V2/V3), forward beside backward.
//
//   q      = q_b(norm(q_a h)) or q_proj h                 per head [q_nope (dn) | q_pe (dr)], RoPE on q_pe
//   [c|kp] = kv_a h,  c = norm(c)                        latent c (kv_lora_rank) and one shared RoPE key kp (dr)
//   [k_nope | v]_h = kv_b c                              per head
//   o      = o_proj concat_h softmax(q_h . [k_nope_h | kp] * scale) v_h
//
// Training attends within each sequence on per-head K/V. Inference appends [c | kp] to the latent KV cache and
// attends over it either expanded (per-head K/V from the cache, for long chunks) or weight-absorbed (queries
// mapped into the latent space: scores q_nope W_UK . c + q_pe . kp, output (P c) W_UV^T, for short chunks),
// picked by estimated cost.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/layers/batch.h"
#include "model/rope.h"
#include "model/weights.h"

namespace dseek {

struct MLACache {
  std::vector<float> qa, qa_rstd, qan;   // low-rank q: q_a h, its rstd, the normalised latent
  std::vector<float> q, kv, kv_rstd, c;  // q [R, H dqk]; kv [R, kvd] (raw latent | rotated kp); c = norm(latent)
  std::vector<float> kvx;                // [R, H (dn + dv)]
  std::vector<float> Qh, Kh, Vh, O, lse; // per-head attention operands and output [R, H dv]
  std::vector<float> qabs, scores, olat; // inference scratch (absorbed attention)
};

// x[R, D] += attention(hn[R, D]) for layer `layer` (its cache slot when rb has caches).
void mla_forward(const ModelConfig& c, int64_t layer, const MLAWeights& w, const RopeTable& rope, const RowBatch& rb,
                 const LayerOptions& o, const float* hn, float* x, MLACache& mc);
// dx: gradient of the layer output (the residual branch); dhn (+)= gradient wrt hn; weight gradients into g.
void mla_backward(const ModelConfig& c, const MLAWeights& w, MLAWeights& g, const RopeTable& rope, const RowBatch& rb,
                  const LayerOptions& o, const MLACache& mc, const float* hn, const float* dx, float* dhn);

}  // namespace dseek
