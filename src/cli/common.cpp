#include "cli/commands.h"
#include "core/threads.h"
#include "tokenizer/chat_format.h"

namespace dseek::cli {

void add_threads_flag(CLI::App& sub, int& threads) {
  sub.add_option("--threads", threads, "Worker threads (0 = all cores)")->default_val(0);
}

void apply_threads(int threads) { set_num_threads(threads); }

void add_chat_template_flag(CLI::App& sub, std::string& name) {
  sub.add_option("--chat-template", name,
                 "Render chats with this built-in template instead of tokenizer_config.json's chat_template: " +
                     ChatFormat::names());
}

void add_task_option_flags(CLI::App& sub, TaskOptions& o, const std::string& seed_flag) {
  sub.add_option(seed_flag, o.seed, "Task seed (use the one training used, so the eval split stays held out)")->default_val(0);
  sub.add_option("--min-digits", o.min_digits, "arithmetic: fewest digits of an operand")->default_val(1);
  sub.add_option("--max-digits", o.max_digits, "arithmetic: most digits of an operand")->default_val(3);
  sub.add_option("--ops", o.ops, "arithmetic: operations, any of +-*/")->default_val("+-*");
  sub.add_option("--numbers", o.numbers, "countdown: how many numbers")->default_val(3);
  sub.add_option("--max-number", o.max_number, "countdown: numbers are 1..N")->default_val(99);
  sub.add_option("--max-target", o.max_target, "countdown: targets are 1..N")->default_val(999);
}

}  // namespace dseek::cli
