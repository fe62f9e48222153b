#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fileio.h"
#include "inference/generation_config.h"
#include "inference/generator.h"
#include "inference/speculative.h"
#include "model/model.h"
#include "tokenizer/text_stream.h"
#include "tokenizer/tokenizer.h"

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

// The model folder's tokenizer (a run's: its latest checkpoint's), found as Tokenizer::load finds it.
Tokenizer load_tokenizer(const std::string& model, const char* flag, const TokenizerOptions& options) {
  if (const auto file = Tokenizer::find_file(model)) return Tokenizer::load(*file, options);
  fail("--model {}: no tokenizer.json in {} (needed for {}; 'dseek tokenizer train' makes one)", model,
       resolve_model_dir(model), flag);
}

void check_ids_fit(const std::vector<int32_t>& ids, const Model& m) {
  for (int32_t id : ids)
    if (id >= m.config.vocab_size)
      fail("prompt token id {} is outside the model's vocabulary (vocab_size {}): the tokenizer does not match the model",
           id, m.config.vocab_size);
}

void print(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

// Shows reasoning apart from the answer: dimmed on a terminal, else between [reasoning] and [/reasoning].
struct ReasoningPrinter {
  bool tty = isatty(STDOUT_FILENO);
  bool inside = false;
  void show(const std::vector<ReasoningStream::Part>& parts) {
    for (const auto& p : parts) {
      if (p.reasoning != inside) {
        print(p.reasoning ? (tty ? "\x1b[2m" : "[reasoning]\n") : (tty ? "\x1b[0m\n" : "\n[/reasoning]\n"));
        inside = p.reasoning;
      }
      print(p.text);
    }
  }
  void end() {
    if (inside) print(tty ? "\x1b[0m\n" : "\n[/reasoning]\n");
    inside = false;
  }
};
}  // namespace

void add_generate(CLI::App& app) {
  struct Opts {
    std::string model, prompt_ids, prompt, system, chat_template;
    bool chat = false;
    std::vector<std::string> stops;
    int64_t max_tokens = 64;
    SamplingParams sp;
    bool ignore_eos = false, print_ids = false;
    int threads = 0;
    std::string speculative;
    int draft_tokens = 1;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("generate", "Generate from a prompt (text or ids) or chat, streaming as it goes");
  sub->add_option("--model", o->model, "Model folder or training run")->required();
  auto* ids_opt = sub->add_option("--prompt-ids", o->prompt_ids, "Prompt as comma-separated token ids, e.g. 1,2,3");
  auto* prompt_opt = sub->add_option("--prompt", o->prompt,
                                     "Prompt text (encoded with the model folder's tokenizer, BOS as its config says); "
                                     "--prompt \"\" starts from BOS alone");
  auto* chat_opt = sub->add_flag("--chat", o->chat, "Multi-turn chat: one user message per stdin line, replies streamed");
  ids_opt->excludes(prompt_opt)->excludes(chat_opt);
  prompt_opt->excludes(chat_opt);
  sub->add_option("--system", o->system, "System prompt for --chat");
  add_chat_template_flag(*sub, o->chat_template);
  sub->add_option("--stop", o->stops, "Stop when the generated text contains this string (repeatable)");
  sub->add_option("--max-tokens,-n", o->max_tokens, "Maximum tokens to generate (per reply with --chat)")->default_val(64);
  // Sampling flags override the model folder's generation_config.json (see inference/generation_config.h).
  CLI::Option* sampling_flags[] = {
      sub->add_option("--temperature", o->sp.temperature, "Sampling temperature (0 = greedy)"),
      sub->add_option("--top-k", o->sp.top_k, "Keep the k most likely tokens (0 = off)"),
      sub->add_option("--top-p", o->sp.top_p, "Nucleus sampling threshold (1 = off)"),
      sub->add_option("--min-p", o->sp.min_p, "Drop tokens below min-p x the top probability (0 = off)"),
      sub->add_option("--repetition-penalty", o->sp.repetition_penalty, "Penalty for tokens already in the context (1 = off)")};
  sub->add_option("--seed", o->sp.seed, "Sampling seed")->default_val(0);
  sub->add_flag("--ignore-eos", o->ignore_eos, "Do not stop at the end-of-sequence token");
  sub->add_option("--speculative", o->speculative,
                  "'mtp': the model's MTP module drafts the token after next and the main model verifies it (same "
                  "output distribution; greedy output unchanged)")->check(CLI::IsMember({"mtp"}));
  auto* draft_opt = sub->add_option("--draft-tokens", o->draft_tokens,
                                    "Tokens drafted per step with --speculative mtp (the one MTP module chained)")
                        ->default_val(1)->check(CLI::Range(1, 16));
  sub->add_flag("--print-ids", o->print_ids, "Print the generated token ids (comma-separated) instead of text");
  sub->footer(
      "Sampling defaults come from the model folder's generation_config.json as transformers reads it (greedy unless\n"
      "it sets do_sample); without one, llama.cpp's: temperature 0.8, top-k 40, top-p 0.95. Flags override them.");
  add_threads_flag(*sub, o->threads);
  sub->callback([o, ids_opt, prompt_opt, sampling_flags, draft_opt] {
    if (draft_opt->count() && o->speculative.empty()) fail("--draft-tokens: only with --speculative mtp");
    apply_threads(o->threads);
    const bool by_ids = ids_opt->count() > 0, by_text = prompt_opt->count() > 0;
    if (!by_ids && !by_text && !o->chat) fail("generate: give --prompt-ids, --prompt or --chat");
    if (!o->system.empty() && !o->chat) fail("--system: only with --chat");
    if (!o->chat_template.empty() && !o->chat) fail("--chat-template: only with --chat");
    if (o->print_ids && o->chat) fail("--print-ids: not with --chat");
    if (!o->stops.empty() && o->print_ids) fail("--stop: needs text output (drop --print-ids)");
    // the flags given override the model's defaults
    SamplingParams given = o->sp;
    const GenerationDefaults defaults = GenerationDefaults::load(resolve_model_dir(o->model));
    o->sp = defaults.sampling;
    o->sp.seed = given.seed;
    if (sampling_flags[0]->count()) o->sp.temperature = given.temperature;
    if (sampling_flags[1]->count()) o->sp.top_k = given.top_k;
    if (sampling_flags[2]->count()) o->sp.top_p = given.top_p;
    if (sampling_flags[3]->count()) o->sp.min_p = given.min_p;
    if (sampling_flags[4]->count()) o->sp.repetition_penalty = given.repetition_penalty;
    check_sampling_flags(o->sp);
    check_max_tokens(o->max_tokens);
    // Text needs the tokenizer; check it before loading the weights. Ids print as text when the folder has one.
    std::optional<Tokenizer> tok;
    if (by_text || o->chat || !o->stops.empty())
      tok = load_tokenizer(o->model, o->chat ? "--chat" : by_text ? "--prompt" : "--stop", {.chat_template = o->chat_template});
    else if (!o->print_ids && Tokenizer::find_file(o->model))
      tok = load_tokenizer(o->model, "--prompt-ids", {});
    Model m = Model::load(o->model, {.mtp = !o->speculative.empty()});
    if (!o->speculative.empty() && m.w.mtp.empty())
      fail("--speculative mtp: {} has no MTP module (num_nextn_predict_layers is 0)", o->model);
    if (std::any_of(std::begin(sampling_flags), std::end(sampling_flags), [](CLI::Option* f) { return f->count() == 0; }))
      std::fprintf(stderr, "sampling: temperature %g, top-k %lld, top-p %g, min-p %g, repetition penalty %g (flags not given: %s)\n",
                   o->sp.temperature, (long long)o->sp.top_k, o->sp.top_p, o->sp.min_p, o->sp.repetition_penalty,
                   defaults.source.c_str());
    Forward fwd(m);
    Generator plain_gen(fwd);
    SpeculativeGenerator spec_gen(fwd, o->draft_tokens);
    SpeculativeStats spec;
    struct {
      Generator& plain;
      SpeculativeGenerator& specul;
      SpeculativeStats& stats;
      bool on;
      GenerationStats generate(const std::vector<int32_t>& prompt, Sampler& s, const StopConditions& stop,
                               const std::function<bool(int32_t)>& f) {
        return on ? specul.generate(prompt, s, stop, f, &stats) : plain.generate(prompt, s, stop, f);
      }
    } gen{plain_gen, spec_gen, spec, !o->speculative.empty()};
    Sampler sampler(o->sp);
    StopConditions stop;
    stop.max_tokens = o->max_tokens;
    if (!o->ignore_eos) {
      stop.stop_ids.assign(m.config.eos_token_ids.begin(), m.config.eos_token_ids.end());
      if (tok && tok->eos_id() >= 0 &&
          std::find(stop.stop_ids.begin(), stop.stop_ids.end(), tok->eos_id()) == stop.stop_ids.end())
        stop.stop_ids.push_back(tok->eos_id());
    }
    auto report = [&m, &o, &spec](const GenerationStats& st) {
      const std::string why =
          st.context_full ? fmt::format(" (the context of {} tokens is full)", m.config.max_position_embeddings) : "";
      std::fprintf(stderr, "prompt: %lld tokens, %.1f tokens/s | generation: %lld tokens, %.1f tokens/s | stop: %s%s\n",
                   (long long)st.prompt_tokens, st.prefill_tps(), (long long)st.generated_tokens, st.decode_tps(),
                   st.stop_reason.c_str(), why.c_str());
      if (!o->speculative.empty())
        std::fprintf(stderr, "speculative (mtp): %lld of %lld drafts accepted (%.1f%%; first draft token %.1f%%), "
                     "%.2f tokens per main-model pass\n", (long long)spec.accepted, (long long)spec.drafted,
                     100 * spec.acceptance(), 100 * spec.first_acceptance(),
                     spec.main_passes ? double(st.generated_tokens - 1) / double(spec.main_passes) : 0.0);
    };

    // Streams the reply to `prompt` as text; returns the raw generated text (special tokens dropped).
    auto reply = [&](const std::vector<int32_t>& prompt, bool reasoning_opened, bool chat) {
      check_ids_fit(prompt, m);
      StreamDecoder decoder(*tok, true);
      StopStrings stops(o->stops);
      ReasoningStream reasoning(reasoning_opened);
      ReasoningPrinter printer;
      std::string text;
      auto show = [&](const std::string& s) {
        text += s;
        if (chat) {
          printer.show(reasoning.push(s));
        } else {
          print(s);
        }
      };
      GenerationStats st = gen.generate(prompt, sampler, stop, [&](int32_t id) {
        show(stops.push(decoder.push(id)));
        return !stops.stopped();
      });
      if (!stops.stopped()) show(stops.push(decoder.flush()) + stops.flush());
      if (chat) {
        printer.show(reasoning.flush());
        printer.end();
      }
      print("\n");
      report(st);
      return text;
    };

    if (!o->chat) {
      std::vector<int32_t> prompt = by_ids ? parse_ids(o->prompt_ids) : tok->encode(o->prompt, true);
      if (prompt.empty()) {  // an empty prompt starts from BOS, which this tokenizer does not add by itself
        if (m.config.bos_token_id < 0) fail("--prompt \"\": the model has no BOS token to start from (bos_token_id)");
        prompt.push_back(int32_t(m.config.bos_token_id));
      }
      if (tok && !o->print_ids) {
        reply(prompt, false, false);
        return;
      }
      if (!o->print_ids)
        std::fprintf(stderr, "(no tokenizer.json in %s: printing token ids)\n", resolve_model_dir(o->model).c_str());
      bool first = true;
      GenerationStats st = gen.generate(prompt, sampler, stop, [&](int32_t id) {
        std::printf("%s%d", first ? "" : ",", id);
        std::fflush(stdout);
        first = false;
        return true;
      });
      std::printf("\n");
      report(st);
      return;
    }
    nlohmann::json messages = nlohmann::json::array();
    if (!o->system.empty()) messages.push_back({{"role", "system"}, {"content", o->system}});
    bool tty = isatty(STDIN_FILENO);
    std::string line;
    for (;;) {
      if (tty) std::fprintf(stderr, "> ");
      if (!std::getline(std::cin, line)) break;
      if (line.empty()) continue;
      messages.push_back({{"role", "user"}, {"content", line}});
      ChatEncoding prompt = tok->encode_chat(messages, true);
      std::string answer = reply(prompt.ids, tok->chat_format().prompt_opens_reasoning(), true);
      messages.push_back({{"role", "assistant"}, {"content", answer}});
    }
  });
}

}  // namespace dseek::cli
