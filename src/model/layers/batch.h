// The rows of one forward pass through the layers, and which keys each row attends to. Training passes whole
// sequences (B sequences of T rows, keys from the same rows); inference passes chunks that extend per-sequence
// KV caches (a prompt prefill is one chunk of many rows, a decode step one row per sequence).
#pragma once
#include <cstdint>
#include <vector>

#include "core/precision.h"
#include "model/kv_cache.h"

namespace dseek {

// Training rows: B sequences of T tokens, row r = b T + t.
struct TrainShape {
  int64_t B = 0, T = 0;
  std::vector<int32_t> positions;  // [R] RoPE positions (t, or t - document start when packing)
  std::vector<int32_t> key_begin;  // [R] first visible key of the row within its sequence; empty: 0
  int64_t rows() const { return B * T; }
  static TrainShape dense(int64_t B, int64_t T);  // positions t, no packing
};

// Inference rows: `n` tokens appended to `cache`.
struct SeqChunk {
  KVCache* cache;
  const int32_t* tokens;
  int64_t n;
};

enum class AttnImpl { Auto, Expanded, Absorbed };  // MLA over a cache: per-head K/V, or queries in latent space

struct RowBatch {
  int64_t rows = 0;
  const int32_t* positions = nullptr;  // [rows]
  // training (no cache): seqs x T rows
  int64_t seqs = 0, T = 0;
  const int32_t* key_begin = nullptr;  // [rows] or null
  // inference: chunk i holds rows [row0[i], row0[i + 1]) and appends them to its cache
  const std::vector<SeqChunk>* chunks = nullptr;
  const std::vector<int64_t>* row0 = nullptr;
  bool has_cache() const { return chunks != nullptr; }

  static RowBatch of(const TrainShape& s);
  // Inference rows: chunk i holds rows [row0[i], row0[i + 1]); positions [rows].
  static RowBatch of(const std::vector<SeqChunk>& chunks, const std::vector<int64_t>& row0, const int32_t* positions);
};

// How the layers run.
struct LayerOptions {
  Precision precision = Precision::F32;  // activation products (attention); weight products follow the weights
  double aux_alpha = 0.0;                // sequence-wise balance loss weight (training)
  float grad_scale = 1.0f;               // multiplier of the balance loss's gradient (loss scaling)
  AttnImpl attn = AttnImpl::Auto;        // MLA formulation over a cache
  bool save = true;                      // keep what the backward pass needs
  bool fp8_activations = false;          // with save: FFN and expert activations kept in FP8 (ffn.h)
};
using TrainOptions = LayerOptions;

}  // namespace dseek
