#include "inference/forward.h"

#include <algorithm>

#include "core/error.h"
#include "core/memory.h"
#include "core/profile.h"
#include "model/layers/embedding.h"
#include "model/layers/head.h"
#include "model/layers/linear.h"

namespace dseek {

Forward::Forward(Model& m, ForwardOptions opt) : model_(m), opt_(opt) { keep_freed_memory(); }

LayerOptions Forward::layer_options() const {
  LayerOptions lo;
  lo.precision = opt_.attn_precision;
  lo.attn = opt_.attn;
  lo.save = false;
  return lo;
}

void Forward::run(const std::vector<SeqChunk>& chunks, bool all_rows, float* logits, ForwardTrace* trace) {
  const ModelConfig& c = model_.config;
  const ModelWeights& w = model_.w;
  const int64_t D = c.hidden_size;
  std::vector<int64_t> row0(chunks.size() + 1, 0);
  int64_t max_pos = 0;
  for (size_t i = 0; i < chunks.size(); i++) {
    row0[i + 1] = row0[i] + chunks[i].n;
    max_pos = std::max(max_pos, chunks[i].cache->length() + chunks[i].n);
  }
  const int64_t R = row0.back();
  if (R == 0) return;
  model_.rope.prepare(max_pos);
  for (const auto& ch : chunks) ch.cache->reserve(ch.cache->length() + ch.n);

  // positions and embeddings
  positions_.resize(size_t(R));
  x_.resize(size_t(R * D));
  std::vector<int32_t> tokens(static_cast<size_t>(R));
  for (size_t i = 0; i < chunks.size(); i++)
    for (int64_t t = 0; t < chunks[i].n; t++) {
      positions_[size_t(row0[i] + t)] = int32_t(chunks[i].cache->length() + t);
      tokens[size_t(row0[i] + t)] = chunks[i].tokens[t];
    }
  float* x = x_.data();
  embedding_forward(w.embed, tokens.data(), R, x);
  if (trace) {
    trace->hidden.assign(1, std::vector<float>(x, x + R * D));
    trace->routing.assign(size_t(c.num_hidden_layers), Routing{});
  }

  const RowBatch rb = RowBatch::of(chunks, row0, positions_.data());
  const LayerOptions lo = layer_options();
  for (int64_t l = 0; l < c.num_hidden_layers; l++) {
    const LayerWeights& L = w.layers[size_t(l)];
    layer_forward(c, l, L, model_.rope, rb, lo, x, scratch_);
    if (trace) {
      trace->hidden.emplace_back(x, x + R * D);
      if (L.is_moe) trace->routing[size_t(l)] = scratch_.moe.routing;
    }
  }
  for (const auto& ch : chunks) ch.cache->set_length(ch.cache->length() + ch.n);

  // final norm and head on the requested rows
  DSEEK_PROFILE("lm_head");
  if (all_rows) {
    head_logits(c, w, x, R, nullptr, logits);
  } else {
    std::vector<int64_t> last(chunks.size());
    for (size_t i = 0; i < chunks.size(); i++) last[i] = row0[i + 1] - 1;
    head_logits(c, w, x, R, &last, logits);
  }
}

void Forward::run_mtp(KVCache& cache, const int32_t* tokens, const float* prev, int64_t n, float* logits) {
  const ModelConfig& c = model_.config;
  if (model_.w.mtp.empty()) fail("speculative decoding needs the model's MTP module (num_nextn_predict_layers >= 1)");
  const int64_t D = c.hidden_size;
  std::vector<SeqChunk> chunks{{&cache, tokens, n}};
  std::vector<int64_t> row0{0, n};
  model_.rope.prepare(cache.length() + n);
  cache.reserve(cache.length() + n);
  std::vector<int32_t> positions(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; t++) positions[size_t(t)] = int32_t(cache.length() + t);
  mtp_out_.resize(size_t(n * D));
  mtp_forward(c, model_.w.mtp[0], model_.w.embed, model_.rope, RowBatch::of(chunks, row0, positions.data()),
              layer_options(), prev, tokens, mtp_out_.data(), mtp_scratch_);
  cache.set_length(cache.length() + n);
  linear_forward(1, mtp_out_.data() + (n - 1) * D, D, model_.w.lm_head, logits, c.vocab_size);  // out is normed
}

std::vector<float> sequence_logits(Forward& fwd, const int32_t* tokens, int64_t B, int64_t T, bool decode,
                                   ForwardTrace* trace) {
  const int64_t V = fwd.model().config.vocab_size;
  std::vector<float> out(size_t(B * T * V));
  std::vector<KVCache> caches;
  for (int64_t b = 0; b < B; b++) caches.push_back(fwd.new_cache(T));
  if (!decode) {
    std::vector<SeqChunk> chunks;
    for (int64_t b = 0; b < B; b++) chunks.push_back({&caches[size_t(b)], tokens + b * T, T});
    fwd.run(chunks, true, out.data(), trace);
    return out;
  }
  std::vector<float> step(size_t(B * V));  // [B, V] the last row of each sequence
  for (int64_t t = 0; t < T; t++) {
    std::vector<SeqChunk> chunks;
    for (int64_t b = 0; b < B; b++) chunks.push_back({&caches[size_t(b)], tokens + b * T + t, 1});
    fwd.run(chunks, false, step.data());
    for (int64_t b = 0; b < B; b++)
      std::copy(step.begin() + b * V, step.begin() + (b + 1) * V, out.begin() + (b * T + t) * V);
  }
  return out;
}

}  // namespace dseek
