#include "cli/commands.h"

#include <algorithm>

#include "core/error.h"
#include "core/threads.h"
#include "tokenizer/chat_format.h"

namespace dseek::cli {

void check_sampling_flags(const SamplingParams& sp) {
  // the flag is stricter than the sampler, which caps min_p above 1 at the top token
  if (!(sp.min_p >= 0 && sp.min_p <= 1)) fail("--min-p: must be in [0, 1] (0: off), got {}", sp.min_p);
  check_sampling_params(sp, [](std::string_view param) {
    std::string flag = "--" + std::string(param) + ":";
    std::replace(flag.begin(), flag.end(), '_', '-');
    return flag;
  });
}

void check_max_tokens(int64_t max_tokens, const char* flag) {
  // generation also stops at the model's context (max_position_embeddings); this bounds the flag itself
  if (max_tokens <= 0 || max_tokens > (int64_t(1) << 30)) fail("{}: must be in [1, 2^30], got {}", flag, max_tokens);
}

void add_threads_flag(CLI::App& sub, int& threads) {
  sub.add_option("--threads", threads, "Worker threads (0 = all cores)")->default_val(0);
}

void apply_threads(int threads) { set_num_threads(threads); }

void add_checkpoint_help(CLI::App& sub) {
  sub.footer(
      "Checkpoints: every --save-every steps, every --save-minutes (default 10), at the end, and on SIGINT/SIGTERM:\n"
      "the current step finishes, a checkpoint is written and dseek exits with 130 (SIGINT) or 143 (SIGTERM); a\n"
      "second signal quits at once. --resume RUN continues from the latest checkpoint, bit-identically. A run folder\n"
      "without a complete checkpoint (stopped before its first save finished) is started over by the command that\n"
      "created it (the same --out); stale temporary files are deleted on start and resume.");
}

void add_chat_template_flag(CLI::App& sub, std::string& name) {
  sub.add_option("--chat-template", name,
                 "Render chats with this built-in template instead of tokenizer_config.json's chat_template: " +
                     ChatFormat::names());
}

void add_task_option_flags(CLI::App& sub, TaskOptions& o, bool seed_alias) {
  sub.add_option(seed_alias ? "--task-seed,--seed" : "--task-seed", o.seed,
                 "Seed of the task's problem generator (use the one training used, so the eval split stays held out)")
      ->default_val(0);
  sub.add_option("--min-digits", o.min_digits, "arithmetic: fewest digits of an operand")->default_val(1);
  sub.add_option("--max-digits", o.max_digits, "arithmetic: most digits of an operand")->default_val(3);
  sub.add_option("--ops", o.ops, "arithmetic: operations, any of +-*/")->default_val("+-*");
  sub.add_option("--numbers", o.numbers, "countdown: how many numbers")->default_val(3);
  sub.add_option("--max-number", o.max_number, "countdown: numbers are 1..N")->default_val(99);
  sub.add_option("--max-target", o.max_target, "countdown: targets are 1..N")->default_val(999);
}

}  // namespace dseek::cli
