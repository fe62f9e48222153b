// Grouped-query attention (Qwen2, Llama), forward beside backward.
//
//   q = q_proj h (+ b_q),  k = k_proj h (+ b_k),  v = v_proj h (+ b_v)   H query heads, KVH key/value heads of d
//   q, k rotated with rotate-half RoPE (pairs (x[i], x[i + d/2]))
//   o = o_proj concat_h softmax(q_h . k_{g(h)} / sqrt(d)) v_{g(h)} (+ b_o),  g(h) = h / (H / KVH)
//
// Training attends within each sequence. Inference appends [k | v] of every KV head to the cache (stored
// transposed, like the latent cache) and attends over it: short chunks (decode) score the cache 16 keys per
// vector and sum the values as a GEMV over the transposed values; long chunks (prefill) run the blocked kernel.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/layers/batch.h"
#include "model/rope.h"
#include "model/weights.h"

namespace dseek {

struct GQACache {
  std::vector<float> q, kv;            // q [R, H d] and [k | v] [R, 2 KVH d], after bias and RoPE
  std::vector<float> Qh, Kh, Vh, O, lse;  // per-head operands ([H][T][d], [KVH][T][d]) and output [R, H d]
};

// x[R, D] += attention(hn[R, D]) for layer `layer` (its cache slot when rb has caches).
void gqa_forward(const ModelConfig& c, int64_t layer, const GQAWeights& w, const RopeTable& rope, const RowBatch& rb,
                 const LayerOptions& o, const float* hn, float* x, GQACache& gc);
// dx: gradient of the residual branch's output; dhn (+)= gradient wrt hn; weight gradients into g.
void gqa_backward(const ModelConfig& c, const GQAWeights& w, GQAWeights& g, const RopeTable& rope, const RowBatch& rb,
                  const LayerOptions& o, const GQACache& gc, const float* hn, const float* dx, float* dhn);

}  // namespace dseek
