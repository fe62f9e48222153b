// Subcommands of the dseek CLI. Each add_* function registers one subcommand (flags, help and action).
#pragma once
#include <CLI/CLI.hpp>

#include "inference/sampler.h"
#include "posttrain/task.h"

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
void add_plot(CLI::App& app);
void add_eval(CLI::App& app);  // built-in task evaluation (src/posttrain)

void add_task(CLI::App& app);     // task export
void add_distill(CLI::App& app);
void add_quantize(CLI::App& app);  // FP8 <-> BF16 checkpoints
void add_serve(CLI::App& app);     // OpenAI-compatible server (src/serve)

// Shared flag: --threads N (0 = all cores), applied before the command runs.
void add_threads_flag(CLI::App& sub, int& threads);
void apply_threads(int threads);
// The --help footer of the trainers: when checkpoints are written, signals, exit codes, interrupted runs.
void add_checkpoint_help(CLI::App& sub);
// Shared flag: --chat-template NAME, a built-in chat format (ChatFormat::from_name) instead of the one that
// tokenizer_config.json's chat_template names; empty when not given.
void add_chat_template_flag(CLI::App& sub, std::string& name);
// Shared flags of the built-in tasks' generators (--task-seed, --min-digits, --max-digits, --ops, --numbers, ...).
// `seed_alias`: also accept --seed for the task seed (commands without a sampling seed of their own, where
// --seed was its name before it became --task-seed everywhere).
void add_task_option_flags(CLI::App& sub, TaskOptions& o, bool seed_alias);
// Checks sampling flags as the user typed them (--temperature, --top-k, --top-p, --min-p, --repetition-penalty)
// and --max-tokens, each error naming the flag and its range.
void check_sampling_flags(const SamplingParams& sp);
void check_max_tokens(int64_t max_tokens, const char* flag = "--max-tokens");

}  // namespace dseek::cli
