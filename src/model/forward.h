// Inference forward pass over a batch of sequence chunks that extend their KV caches: a prompt prefill is one
// chunk of many tokens, a decode step one token per sequence. Attention per chunk uses either the expanded
// formulation (per-head K/V from the latent, for long chunks) or the weight-absorbed one (queries mapped into
// the latent space, for short chunks), picked by estimated cost on the same latent cache.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/gemm.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/router.h"

namespace dseek {

struct SeqChunk {
  KVCache* cache;
  const int32_t* tokens;
  int64_t n;
};

enum class AttnImpl { Auto, Expanded, Absorbed };

struct ForwardOptions {
  AttnImpl attn = AttnImpl::Auto;
  Precision attn_precision = Precision::F32;
};

struct ForwardTrace {
  std::vector<std::vector<float>> hidden;  // [num_layers + 1][rows * hidden]: embedding, then after each layer
  std::vector<Routing> routing;            // per layer (empty for dense layers)
};

class Forward {
 public:
  explicit Forward(Model& m, ForwardOptions opt = {});
  // Appends the chunks' tokens to their caches. logits: [total rows, vocab] if all_rows, else
  // [chunks, vocab] for the last token of each chunk.
  void run(const std::vector<SeqChunk>& chunks, bool all_rows, float* logits, ForwardTrace* trace = nullptr);
  KVCache new_cache(int64_t capacity = 256) const { return KVCache(model_.config, model_.config.num_hidden_layers, capacity); }
  const Model& model() const { return model_; }
  ForwardOptions& options() { return opt_; }

 private:
  void attention(int64_t layer, const std::vector<SeqChunk>& chunks, const std::vector<int64_t>& row0, float* x);
  void attend_expanded(int64_t layer, const SeqChunk& ch, int64_t start, const float* q, float* out);
  void attend_absorbed(int64_t layer, const SeqChunk& ch, int64_t start, const float* q, float* out);
  void ffn_dense(const FFNWeights& f, const float* h, int64_t R, float* out, bool accumulate);
  void moe(int64_t layer, const MoEWeights& m, const float* h, int64_t R, float* x, Routing* trace);

  Model& model_;
  ForwardOptions opt_;
  std::vector<int32_t> positions_;
  std::vector<float> x_, hn_, q_, qa_, kv_, att_, tmp_, qabs_, scores_, olat_;
};

}  // namespace dseek
