// Multi-token prediction module (DeepSeek-V3 §2.2), forward beside backward. Depth k predicts token i+k+1 from
// the previous depth's hidden state h^{k-1}_i and the embedding of token i+k:
//   h'_i = eh_proj [enorm(Emb(t_{i+k})) ; hnorm(h^{k-1}_i)],  h^k = Block(h'),  out = head_norm(h^k)
// and the output head (shared with the main model) turns out into logits.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/layers/batch.h"
#include "model/layers/decoder_layer.h"
#include "model/rope.h"
#include "model/weights.h"

namespace dseek {

struct MTPCache {
  std::vector<int32_t> tokens;  // the tokens embedded (t_{i+k}) [R]
  std::vector<float> prev, e, e_rstd, h_rstd, cat, hk, hk_rstd;
  LayerCache block;
};

// prev [R, D] = h^{k-1} of the rows; out [R, D] = head_norm(h^k); c.hk keeps h^k for the next depth.
void mtp_forward(const ModelConfig& c, const MTPWeights& m, const Tensor& embed, const RopeTable& rope,
                 const RowBatch& rb, const LayerOptions& o, const float* prev, const int32_t* tokens, float* out,
                 MTPCache& mc);
// dout: gradient wrt out; dhk (in): gradient reaching h^k from the next depth (may be null). dprev (out, [R, D]):
// gradient wrt prev. Weight gradients into g (the embedding's into dembed).
void mtp_backward(const ModelConfig& c, const MTPWeights& m, MTPWeights& g, Tensor& dembed, const RopeTable& rope,
                  const RowBatch& rb, const LayerOptions& o, const MTPCache& mc, const float* dout, const float* dhk,
                  float* dprev);

}  // namespace dseek
