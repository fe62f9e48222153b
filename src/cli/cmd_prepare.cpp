// dseek prepare: tokenize text or JSON Lines into token shards for training.
#include <cstdio>

#include "cli/commands.h"
#include "train/prepare.h"

namespace dseek::cli {

void add_prepare(CLI::App& app) {
  auto o = std::make_shared<PrepareOptions>();
  auto threads = std::make_shared<int>(0);
  CLI::App* sub = app.add_subcommand("prepare", "Tokenize text files or JSON Lines ({\"text\": ...}) into token shards");
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer.json or a folder holding it")->required();
  sub->add_option("--input", o->inputs, "Input files (.txt: documents split at blank lines; .jsonl: one per line)")->required();
  sub->add_option("--out", o->out, "Output folder")->required();
  sub->add_option("--val-fraction", o->val_fraction, "Fraction of documents held out for validation")->default_val(0.05);
  sub->add_flag("--whole-files", o->whole_files, "Treat each text file as one document");
  add_threads_flag(*sub, *threads);
  sub->callback([o, threads] {
    apply_threads(*threads);
    PrepareStats st = prepare_dataset(*o);
    std::printf("wrote %s: %lld train tokens (%lld documents), %lld val tokens (%lld documents), %.1f MB of text in %.1fs\n",
                o->out.c_str(), (long long)st.train_tokens, (long long)st.train_docs, (long long)st.val_tokens,
                (long long)st.val_docs, double(st.bytes) / 1e6, st.seconds);
  });
}

}  // namespace dseek::cli
