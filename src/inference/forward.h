// Inference forward pass over a batch of sequence chunks that extend their KV caches: a prompt prefill is one
// chunk of many tokens, a decode step one token per sequence. The layers are the model library's
// (src/model/layers), run without keeping activations; weight products become GEMVs for decode-sized batches.
#pragma once
#include <cstdint>
#include <vector>

#include "model/kv_cache.h"
#include "model/layers/batch.h"
#include "model/layers/decoder_layer.h"
#include "model/layers/mtp.h"
#include "model/model.h"
#include "model/router.h"

namespace dseek {

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
  KVCache new_cache(int64_t capacity = 256) const {
    return KVCache(model_.config, model_.config.num_hidden_layers, capacity);
  }
  // The last run()'s final hidden states (the last layer's output, before the final norm): [rows, hidden].
  const float* hidden() const { return x_.data(); }

  // MTP module 0 (the model must be loaded with its MTP modules) over n rows appended to `cache`
  // (new_mtp_cache()): row r embeds tokens[r] beside prev[r], the main model's hidden state at the same position
  // (so it predicts the token after tokens[r]). logits [vocab]: the prediction of the last row.
  void run_mtp(KVCache& cache, const int32_t* tokens, const float* prev, int64_t n, float* logits);
  // The last run_mtp()'s block output of its last row (h^1, before the head norm): [hidden]. Chained drafts feed
  // it back as `prev` in place of the main model's hidden state, which is not known yet.
  const float* mtp_hidden_last() const { return mtp_scratch_.hk.data() + mtp_out_.size() - size_t(model_.config.hidden_size); }
  KVCache new_mtp_cache(int64_t capacity = 256) const {
    return KVCache(model_.config, 1, capacity, model_.config.num_hidden_layers);
  }
  const Model& model() const { return model_; }
  ForwardOptions& options() { return opt_; }

 private:
  LayerOptions layer_options() const;  // inference: nothing kept for a backward pass

  Model& model_;
  ForwardOptions opt_;
  std::vector<int32_t> positions_;
  std::vector<float> x_;
  LayerCache scratch_;  // reused by every layer
  MTPCache mtp_scratch_;
  std::vector<float> mtp_out_;
};

// Logits [B, T, vocab] of B sequences of T tokens (tokens [B, T]), each from position 0 in a fresh cache: one
// batched causal pass (trace: hidden states of that pass), or with `decode` one token per step through the cache.
std::vector<float> sequence_logits(Forward& fwd, const int32_t* tokens, int64_t B, int64_t T, bool decode,
                                   ForwardTrace* trace = nullptr);

}  // namespace dseek
