#include "inference/batch_generator.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "core/error.h"
#include "inference/engine.h"

namespace dseek {

std::vector<GenerationResult> BatchGenerator::generate(const std::vector<GenerationRequest>& reqs,
                                                       const std::function<bool(size_t, int32_t)>& on_token,
                                                       BatchStats* stats) {
  using clock = std::chrono::steady_clock;
  const size_t n = reqs.size();
  std::vector<GenerationResult> out(n);
  if (n == 0) return out;
  for (size_t i = 0; i < n; i++)
    if (reqs[i].prompt.empty()) fail("generation request {} has an empty prompt", i);
  // Requests with the same prompt and stop ids become the choices of one engine request (prefilled once), each with
  // its own sampling parameters, seed and token budget (the engine request takes the largest; a choice that reaches
  // its own ends there).
  std::map<std::pair<std::vector<int32_t>, std::vector<int32_t>>, size_t> group_of;  // (prompt, stop ids) -> group
  std::vector<std::vector<size_t>> order;  // the groups' requests, groups in order of their first request
  for (size_t i = 0; i < n; i++) {
    auto [it, inserted] = group_of.try_emplace({reqs[i].prompt, reqs[i].stop.stop_ids}, order.size());
    if (inserted) order.emplace_back();
    order[it->second].push_back(i);
  }
  // Everything runs at once: one prefill step over every distinct prompt, then one decode step per token.
  const int64_t per_token = int64_t(fwd_.new_cache(1).bytes_per_token());
  EngineOptions eo;
  eo.parallel = int(n);
  eo.max_queue = int64_t(n);
  eo.prefix_cache_bytes = 0;
  eo.step_tokens = 0;
  eo.kv_cache_bytes = 0;
  BatchStats st;
  const ModelConfig& c = fwd_.model().config;
  std::vector<int64_t> budget(n);
  std::vector<int64_t> group_budget;
  for (const auto& g : order) {
    const GenerationRequest& r = reqs[g[0]];
    int64_t most = 0;
    for (size_t i : g) most = std::max(most, budget[i] = generation_budget(c, int64_t(r.prompt.size()), reqs[i].stop.max_tokens));
    group_budget.push_back(most);
    eo.step_tokens += int64_t(r.prompt.size());
    eo.kv_cache_bytes += int64_t(g.size()) * (int64_t(r.prompt.size()) + most) * per_token;
    st.prompt_tokens += int64_t(r.prompt.size());
  }
  Engine engine(fwd_, eo);
  std::vector<char> caller_stopped(n, 0);
  for (size_t k = 0; k < order.size(); k++) {
    const auto& g = order[k];
    EngineRequest er;
    er.prompt = reqs[g[0]].prompt;
    er.n = int(g.size());
    er.max_tokens = group_budget[k];
    er.stop_ids = reqs[g[0]].stop.stop_ids;
    for (size_t i : g) er.choice_sampling.push_back(reqs[i].sampling);
    er.on_token = [&, g](int ch, const EngineToken& t) {
      const size_t i = g[size_t(ch)];
      out[i].tokens.push_back(t.id);
      if (on_token && !on_token(i, t.id)) return !(caller_stopped[i] = 1);
      return int64_t(out[i].tokens.size()) < budget[i];
    };
    er.on_finish = [&, g](int ch, const std::string& why) {
      const size_t i = g[size_t(ch)];
      GenerationResult& r = out[i];
      // the engine says "stop" for a stop id, the caller's stop and this request's own budget alike
      const auto& ids = reqs[i].stop.stop_ids;
      const bool stop_id = !r.tokens.empty() && std::find(ids.begin(), ids.end(), r.tokens.back()) != ids.end();
      r.stop_reason = caller_stopped[i] ? "stop" : stop_id ? "eos" : int64_t(r.tokens.size()) >= budget[i] ? "length" : why;
    };
    if (engine.submit(std::move(er)) == 0) fail("batch generation: the engine refused a request");
  }
  auto t0 = clock::now();
  engine.step();  // admission and the prefill of every distinct prompt
  auto t1 = clock::now();
  engine.run_until_idle();
  auto t2 = clock::now();
  const EngineStats es = engine.stats();
  st.generated_tokens = es.generated_tokens;
  st.steps = es.steps - 1;
  st.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
  st.decode_seconds = std::chrono::duration<double>(t2 - t1).count();
  if (stats) *stats = st;
  return out;
}

}  // namespace dseek
