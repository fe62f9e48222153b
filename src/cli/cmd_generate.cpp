#include <cstdio>
#include <sstream>

#include "cli/commands.h"
#include "core/error.h"
#include "inference/generator.h"

namespace dseek::cli {

namespace {
std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      long v = std::stol(item, &used);
      if (used != item.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument("");
      ids.push_back(int32_t(v));
    } catch (const std::exception&) {
      fail("--prompt-ids: '{}' is not a token id (expected comma-separated integers)", item);
    }
  }
  if (ids.empty()) fail("--prompt-ids: empty");
  return ids;
}
}  // namespace

void add_generate(CLI::App& app) {
  struct Opts {
    std::string model, prompt_ids;
    int64_t max_tokens = 64;
    SamplingParams sp;
    bool ignore_eos = false;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("generate", "Generate tokens from a prompt, streaming them as they are produced");
  sub->add_option("--model", o->model, "Model folder or training run")->required();
  sub->add_option("--prompt-ids", o->prompt_ids, "Prompt as comma-separated token ids, e.g. 1,2,3")->required();
  sub->add_option("--max-tokens,-n", o->max_tokens, "Maximum tokens to generate")->default_val(64);
  sub->add_option("--temperature", o->sp.temperature, "Sampling temperature (0 = greedy)")->default_val(1.0);
  sub->add_option("--top-k", o->sp.top_k, "Keep the k most likely tokens (0 = off)")->default_val(0);
  sub->add_option("--top-p", o->sp.top_p, "Nucleus sampling threshold (1 = off)")->default_val(1.0);
  sub->add_option("--min-p", o->sp.min_p, "Drop tokens below min-p x the top probability (0 = off)")->default_val(0.0);
  sub->add_option("--repetition-penalty", o->sp.repetition_penalty, "Penalty for tokens already in the context (1 = off)")
      ->default_val(1.0);
  sub->add_option("--seed", o->sp.seed, "Sampling seed")->default_val(0);
  sub->add_flag("--ignore-eos", o->ignore_eos, "Do not stop at the end-of-sequence token");
  add_threads_flag(*sub, o->threads);
  sub->callback([o] {
    apply_threads(o->threads);
    std::vector<int32_t> prompt = parse_ids(o->prompt_ids);
    Model m = Model::load(o->model);
    Forward fwd(m);
    Generator gen(fwd);
    Sampler sampler(o->sp);
    StopConditions stop;
    stop.max_tokens = o->max_tokens;
    if (!o->ignore_eos) stop.stop_ids.push_back(int32_t(m.config.eos_token_id));
    bool first = true;
    GenerationStats st = gen.generate(prompt, sampler, stop, [&](int32_t id) {
      std::printf("%s%d", first ? "" : ",", id);
      std::fflush(stdout);
      first = false;
      return true;
    });
    std::printf("\n");
    std::fprintf(stderr, "prompt: %lld tokens, %.1f tokens/s | generation: %lld tokens, %.1f tokens/s | stop: %s\n",
                 (long long)st.prompt_tokens, st.prefill_tps(), (long long)st.generated_tokens, st.decode_tps(),
                 st.stop_reason.c_str());
  });
}

}  // namespace dseek::cli
