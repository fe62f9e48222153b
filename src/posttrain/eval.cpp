#include "posttrain/eval.h"

#include <algorithm>

#include "core/error.h"
#include "core/rng.h"

namespace dseek {

std::vector<int32_t> task_prompt_ids(const Tokenizer& tok, const TaskExample& ex, const ModelConfig& config) {
  nlohmann::json messages = nlohmann::json::array({{{"role", "user"}, {"content", ex.prompt}}});
  std::vector<int32_t> ids = tok.encode_chat(messages, true).ids;
  for (int32_t id : ids)
    if (id < 0 || id >= config.vocab_size)
      fail("prompt token id {} is outside the model's vocabulary (vocab_size {}): the tokenizer does not match the model",
           id, config.vocab_size);
  return ids;
}

std::string completion_text(const Tokenizer& tok, const std::vector<int32_t>& generated) {
  std::string text = tok.decode(generated, true);
  return tok.chat_format().prompt_opens_reasoning() ? "<think>\n" + text : text;
}

std::vector<int32_t> completion_stop_ids(const ModelConfig& config, const Tokenizer& tok) {
  std::vector<int32_t> ids(config.eos_token_ids.begin(), config.eos_token_ids.end());
  if (tok.eos_id() >= 0 && std::find(ids.begin(), ids.end(), tok.eos_id()) == ids.end()) ids.push_back(tok.eos_id());
  return ids;
}

EvalResult evaluate_task(Model& model, const Tokenizer& tok, const Task& task, const EvalOptions& opt) {
  if (opt.n == 0) fail("eval: the number of examples must be positive");
  if (opt.max_tokens <= 0) fail("eval: max_tokens must be positive, got {}", opt.max_tokens);
  EvalResult res;
  const std::vector<int32_t> stop_ids = completion_stop_ids(model.config, tok);
  Forward fwd(model);
  BatchGenerator gen(fwd);
  const size_t batch = std::max<size_t>(1, opt.batch);
  for (uint64_t first = 0; first < opt.n; first += batch) {
    const uint64_t count = std::min<uint64_t>(batch, opt.n - first);
    std::vector<GenerationRequest> requests;
    for (uint64_t k = 0; k < count; k++) {
      EvalRecord rec;
      rec.index = opt.start + first + k;
      rec.example = task.example(opt.split, rec.index);
      GenerationRequest req;
      req.prompt = task_prompt_ids(tok, rec.example, model.config);
      req.sampling = opt.sampling;
      req.sampling.seed = hash_index(opt.sampling.seed, 0x6576616c /* "eval" */, rec.index);
      req.stop.max_tokens = opt.max_tokens;
      req.stop.stop_ids = stop_ids;
      requests.push_back(std::move(req));
      res.records.push_back(std::move(rec));
    }
    BatchStats stats;
    std::vector<GenerationResult> out = gen.generate(requests, nullptr, &stats);
    res.seconds += stats.prefill_seconds + stats.decode_seconds;
    for (uint64_t k = 0; k < count; k++) {
      EvalRecord& rec = res.records[first + k];
      rec.completion = completion_text(tok, out[k].tokens);
      rec.tokens = int64_t(out[k].tokens.size());
      rec.stop_reason = out[k].stop_reason;
      rec.reward = task.score(rec.example, rec.completion);
      res.correct += rec.reward.accuracy > 0 ? 1 : 0;
      res.formatted += rec.reward.format > 0 ? 1 : 0;
      res.mean_tokens += double(rec.tokens);
    }
    if (opt.progress) opt.progress(size_t(first + count), size_t(opt.n));
  }
  const double n = double(opt.n);
  res.accuracy = double(res.correct) / n;
  res.format_rate = double(res.formatted) / n;
  res.mean_tokens /= n;
  return res;
}

}  // namespace dseek
