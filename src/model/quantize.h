// FP8 E4M3 block quantisation as in DeepSeek-V3 checkpoints: per block of br x bc weights,
// scale_inv = amax / 448 and q = round(w / scale_inv), so that w ~= q * scale_inv (edge blocks may be partial).
#pragma once
#include "model/model.h"

namespace dseek {

// F32 (or BF16/F16) weight [out, in] -> FP8 Linear with F32 weight_scale_inv.
Linear quantize_fp8(const Tensor& weight, int64_t block_rows = 128, int64_t block_cols = 128);

// Quantises every projection of the decoder layers (not the embedding, lm_head or router), as DeepSeek-V3
// ships its FP8 checkpoint, and sets config.quantization.
void quantize_model_fp8(Model& m, int64_t block_rows = 128, int64_t block_cols = 128);

// Each FP8 projection replaced by its dequantised F32 values (the reference semantics of an FP8 checkpoint).
void dequantize_model(Model& m);

// Every BF16/F16 weight (matrices, embedding, head, norms) widened to F32, so each product runs in float32 as
// transformers computes a checkpoint loaded in its default float32 (FP8 projections stay: see dequantize_model).
void widen_model_f32(Model& m);

}  // namespace dseek
