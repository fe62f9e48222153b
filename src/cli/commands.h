// Subcommands of the dseek CLI. Each add_* function registers one subcommand (flags, help and action).
#pragma once
#include <CLI/CLI.hpp>

namespace dseek::cli {

void add_init(CLI::App& app);
void add_logits(CLI::App& app);
void add_generate(CLI::App& app);
void add_tokenize(CLI::App& app);
void add_chat_template(CLI::App& app);
void add_tokenizer(CLI::App& app);  // tokenizer train
void add_prepare(CLI::App& app);
void add_train(CLI::App& app);
void add_sft(CLI::App& app);
void add_grpo(CLI::App& app);
void add_eval(CLI::App& app);  // built-in task evaluation (src/posttrain)

// Shared flag: --threads N (0 = all cores), applied before the command runs.
void add_threads_flag(CLI::App& sub, int& threads);
void apply_threads(int threads);

}  // namespace dseek::cli
