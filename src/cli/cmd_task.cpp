// dseek task export: examples of a built-in task as SFT chats (worked solutions), GRPO prompts, or text.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fileio.h"

namespace dseek::cli {

void add_task(CLI::App& app) {
  struct Opts {
    std::string task, split = "train", format = "chat", out;
    uint64_t start = 0, n = 1000;
    TaskOptions task_opt;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* task = app.add_subcommand("task", "Built-in tasks (arithmetic, countdown): export their data");
  task->require_subcommand(1);
  CLI::App* sub = task->add_subcommand("export", "Write examples as chats with worked solutions, prompts or text");
  sub->add_option("--task", o->task, "arithmetic or countdown")->required();
  sub->add_option("--split", o->split, "train or eval")->check(CLI::IsMember({"train", "eval"}))->default_val("train");
  sub->add_option("--start", o->start, "First example index")->default_val(0);
  sub->add_option("--n", o->n, "Number of examples")->default_val(1000);
  sub->add_option("--format", o->format,
                  "chat: {\"messages\": [user, assistant solution]} (for dseek sft); prompts: {\"prompt\", \"answer\"} "
                  "(for dseek grpo --prompts); text: prompt and solution as plain text (for dseek tokenizer train)")
      ->check(CLI::IsMember({"chat", "prompts", "text"}))
      ->default_val("chat");
  sub->add_option("--out", o->out, "Output file")->required();
  add_task_option_flags(*sub, o->task_opt, true);
  sub->callback([o] {
    std::unique_ptr<Task> t = make_task(o->task, o->task_opt);
    std::string out;
    for (uint64_t i = o->start; i < o->start + o->n; i++) {
      const TaskExample ex = t->example(o->split, i);
      if (o->format == "chat") {
        nlohmann::json j{{"messages", nlohmann::json::array({{{"role", "user"}, {"content", ex.prompt}},
                                                              {{"role", "assistant"}, {"content", t->solution(ex)}}})}};
        out += j.dump() + "\n";
      } else if (o->format == "prompts") {
        out += nlohmann::json{{"prompt", ex.prompt}, {"answer", ex.answer}}.dump() + "\n";
      } else {
        out += ex.prompt + "\n" + t->solution(ex) + "\n\n";
      }
    }
    write_file_atomic(o->out, out);
    std::printf("wrote %s: %llu %s examples of %s (%s split)\n", o->out.c_str(), (unsigned long long)o->n,
                o->format.c_str(), o->task.c_str(), o->split.c_str());
  });
}

}  // namespace dseek::cli
