// One decoder layer (MLA + dense SwiGLU or DeepSeekMoE) for training: forward saving what the backward needs,
// and the backward, side by side. Rows are B sequences of T tokens (row r = b T + t).
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/gemm.h"
#include "model/config.h"
#include "model/rope.h"
#include "model/router.h"
#include "model/weights.h"

namespace dseek {

struct TrainShape {
  int64_t B = 0, T = 0;
  std::vector<int32_t> positions;  // [R] RoPE positions (t, or t - document start when packing)
  std::vector<int32_t> key_begin;  // [R] first visible key of the row within its sequence; empty: 0
  int64_t rows() const { return B * T; }
  static TrainShape dense(int64_t B, int64_t T);  // positions t, no packing
};

struct TrainOptions {
  Precision precision = Precision::F32;
  double aux_alpha = 0.0;  // sequence-wise balance loss weight
};

struct FFNCache {
  std::vector<float> g, u, h;  // gate and up pre-activations, h = silu(g) u
};

struct ExpertCache {
  int64_t expert = 0, n = 0, nb = 0;  // rows routed here, and rows padded to a JIT bucket
  std::vector<int32_t> rows, slots;
  std::vector<float> x, g, u, h, y;  // [nb, *], padding rows zero
};

struct MoECache {
  std::vector<float> logits;  // router logits [R, E]
  Routing routing;
  std::vector<ExpertCache> experts;  // active experts, by index
  FFNCache shared;
  std::vector<int64_t> load;  // selections per expert in this forward
  double aux_loss = 0;
};

struct LayerCache {
  std::vector<float> x_in, hn1, rstd1;
  std::vector<float> qa, qa_rstd, qan;  // low-rank q
  std::vector<float> q, kv, kv_rstd, c, kvx;
  std::vector<float> Qh, Kh, Vh, O, lse;
  std::vector<float> x_mid, hn2, rstd2;
  FFNCache dense;
  MoECache moe;
};

// x [R, hidden] is the residual stream, updated in place.
void layer_forward(const ModelConfig& c, const LayerWeights& w, const RopeTable& rope, const TrainShape& s,
                   const TrainOptions& o, float* x, LayerCache& cache);
// dx [R, hidden]: gradient of the layer output, replaced by the gradient of its input. Weight gradients are
// accumulated into g.
void layer_backward(const ModelConfig& c, const LayerWeights& w, LayerWeights& g, const RopeTable& rope,
                    const TrainShape& s, const TrainOptions& o, const LayerCache& cache, float* dx);

}  // namespace dseek
