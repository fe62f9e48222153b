#include <chrono>
#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fileio.h"
#include "tokenizer/bpe_trainer.h"

namespace dseek::cli {

// dseek tokenizer train: learns a byte-level BPE with DeepSeek-V3's pre-tokenizer and chat tokens.
void add_tokenizer(CLI::App& app) {
  CLI::App* group = app.add_subcommand("tokenizer", "Tokenizer tools (train)");
  group->require_subcommand(1);
  struct Opts {
    size_t vocab_size = 0;
    int64_t min_frequency = 2;
    std::vector<std::string> inputs;
    std::string out;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = group->add_subcommand(
      "train", "Train a byte-level BPE tokenizer (DeepSeek-V3 pre-tokenizer, chat template and special tokens)");
  sub->add_option("--vocab-size", o->vocab_size, "Vocabulary size, special and byte tokens included")->required();
  sub->add_option("--input", o->inputs, "Text files (UTF-8)")->required()->expected(1, -1);
  sub->add_option("--out", o->out, "Output folder (tokenizer.json, tokenizer_config.json)")->required();
  sub->add_option("--min-frequency", o->min_frequency, "Merge only pairs seen at least this often")->default_val(2);
  add_threads_flag(*sub, o->threads);
  sub->callback([o] {
    apply_threads(o->threads);
    auto start = std::chrono::steady_clock::now();
    std::vector<std::string> texts;
    for (const std::string& f : o->inputs) {
      if (!file_exists(f)) fail("--input {}: no such file", f);
      if (is_directory(f)) fail("--input {}: is a folder, not a file", f);
      texts.push_back(read_file(f));
    }
    BpeTrainerOptions opt;
    opt.vocab_size = o->vocab_size;
    opt.min_frequency = o->min_frequency;
    opt.progress = [](const std::string& s) { std::fprintf(stderr, "%s\n", s.c_str()); };
    TrainedTokenizer t = train_bpe(texts, opt);
    save_trained_tokenizer(t, o->out);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("wrote %s/tokenizer.json and tokenizer_config.json: %zu merges in %.1f s\n", o->out.c_str(),
                t.merges, secs);
  });
}

}  // namespace dseek::cli
