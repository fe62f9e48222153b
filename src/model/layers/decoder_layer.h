// One decoder layer, the block every architecture stacks:  x += attention(norm1 x);  x += ffn(norm2 x)
// with the attention of the config (MLA or GQA) and the feed-forward of the layer (dense SwiGLU or DeepSeekMoE).
// The same forward serves training (whole sequences, activations kept for the backward) and inference (chunks
// extending KV caches); the backward is beside it.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/layers/attention_gqa.h"
#include "model/layers/attention_mla.h"
#include "model/layers/batch.h"
#include "model/layers/ffn.h"
#include "model/layers/moe.h"
#include "model/rope.h"
#include "model/weights.h"

namespace dseek {

struct LayerCache {
  std::vector<float> x_in, hn1, rstd1;
  MLACache mla;
  GQACache gqa;
  std::vector<float> x_mid, hn2, rstd2, y;
  FFNCache dense;
  MoECache moe;
};

// x [R, hidden] is the residual stream, updated in place. `layer` selects the cache slot when rb has caches.
void layer_forward(const ModelConfig& c, int64_t layer, const LayerWeights& w, const RopeTable& rope,
                   const RowBatch& rb, const LayerOptions& o, float* x, LayerCache& cache);
// dx [R, hidden]: gradient of the layer output, replaced by the gradient of its input. Weight gradients are
// accumulated into g.
void layer_backward(const ModelConfig& c, const LayerWeights& w, LayerWeights& g, const RopeTable& rope,
                    const RowBatch& rb, const LayerOptions& o, const LayerCache& cache, float* dx);

// Training shorthands: whole sequences of `s`.
void layer_forward(const ModelConfig& c, const LayerWeights& w, const RopeTable& rope, const TrainShape& s,
                   const LayerOptions& o, float* x, LayerCache& cache);
void layer_backward(const ModelConfig& c, const LayerWeights& w, LayerWeights& g, const RopeTable& rope,
                    const TrainShape& s, const LayerOptions& o, const LayerCache& cache, float* dx);

}  // namespace dseek
