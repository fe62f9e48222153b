#include "inference/batch_generator.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "core/error.h"

namespace dseek {

std::vector<GenerationResult> BatchGenerator::generate(const std::vector<GenerationRequest>& reqs,
                                                       const std::function<bool(size_t, int32_t)>& on_token,
                                                       BatchStats* stats) {
  using clock = std::chrono::steady_clock;
  const int64_t V = fwd_.model().config.vocab_size;
  const size_t n = reqs.size();
  std::vector<GenerationResult> out(n);
  if (n == 0) return out;
  BatchStats st;
  std::vector<KVCache> caches(n);
  std::vector<Sampler> samplers;
  std::vector<std::vector<int32_t>> context(n);
  std::vector<std::vector<float>> logits(n, std::vector<float>(static_cast<size_t>(V)));
  for (size_t i = 0; i < n; i++) {
    if (reqs[i].prompt.empty()) fail("generation request {} has an empty prompt", i);
    samplers.emplace_back(reqs[i].sampling);
    context[i] = reqs[i].prompt;
  }

  std::vector<int64_t> budget(n);  // tokens each request may generate
  for (size_t i = 0; i < n; i++)
    budget[i] = generation_budget(fwd_.model().config, int64_t(reqs[i].prompt.size()), reqs[i].stop.max_tokens);
  // prefill each distinct prompt once (batched), then copy its cache and logits to the duplicates
  auto t0 = clock::now();
  std::map<std::vector<int32_t>, size_t> first;
  std::vector<size_t> owner(n);
  std::vector<size_t> unique;
  for (size_t i = 0; i < n; i++) {
    auto [it, inserted] = first.emplace(reqs[i].prompt, i);
    owner[i] = it->second;
    if (inserted) unique.push_back(i);
  }
  {
    std::vector<SeqChunk> chunks;
    for (size_t i : unique) {
      caches[i] = fwd_.new_cache(int64_t(reqs[i].prompt.size()) + budget[i]);
      chunks.push_back({&caches[i], reqs[i].prompt.data(), int64_t(reqs[i].prompt.size())});
      st.prompt_tokens += int64_t(reqs[i].prompt.size());
    }
    std::vector<float> last(unique.size() * size_t(V));
    fwd_.run(chunks, false, last.data());
    for (size_t u = 0; u < unique.size(); u++)
      std::copy(last.begin() + u * V, last.begin() + (u + 1) * V, logits[unique[u]].begin());
    for (size_t i = 0; i < n; i++)
      if (owner[i] != i) {
        caches[i] = caches[owner[i]];
        caches[i].reserve(int64_t(reqs[i].prompt.size()) + budget[i]);
        logits[i] = logits[owner[i]];
      }
  }
  st.prefill_seconds = std::chrono::duration<double>(clock::now() - t0).count();

  auto t1 = clock::now();
  std::vector<bool> active(n, true);
  std::vector<int32_t> next(n);
  for (;;) {
    std::vector<size_t> live;
    // each sequence draws from its own sampler (own seed), so the draws run in parallel
#pragma omp parallel for schedule(dynamic, 4) if (n >= 8)
    for (size_t i = 0; i < n; i++)
      if (active[i]) next[i] = samplers[i].sample(logits[i].data(), V, context[i]);
    for (size_t i = 0; i < n; i++) {
      if (!active[i]) continue;
      const int32_t tok = next[i];
      out[i].tokens.push_back(tok);
      context[i].push_back(tok);
      st.generated_tokens++;
      const auto& stop = reqs[i].stop;
      const bool is_stop = std::find(stop.stop_ids.begin(), stop.stop_ids.end(), tok) != stop.stop_ids.end();
      if (on_token && !on_token(i, tok)) {
        out[i].stop_reason = "stop";
        active[i] = false;
      } else if (is_stop) {
        out[i].stop_reason = "eos";
        active[i] = false;
      } else if (int64_t(out[i].tokens.size()) >= budget[i]) {  // max_tokens or the end of the context
        out[i].stop_reason = "length";
        active[i] = false;
      } else {
        live.push_back(i);  // feeds next[i]
      }
    }
    if (live.empty()) break;
    std::vector<SeqChunk> chunks;
    for (size_t i : live) chunks.push_back({&caches[i], &next[i], 1});
    std::vector<float> step(live.size() * size_t(V));
    fwd_.run(chunks, false, step.data());
    for (size_t k = 0; k < live.size(); k++)
      std::copy(step.begin() + k * V, step.begin() + (k + 1) * V, logits[live[k]].begin());
    st.steps++;
  }
  st.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  if (stats) *stats = st;
  return out;
}

}  // namespace dseek
