// dseek eval: accuracy of a model on a built-in task's held-out split (rule-based rewards).
#include <unistd.h>

#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fileio.h"
#include "model/model.h"
#include "posttrain/eval.h"
#include "posttrain/task.h"
#include "tokenizer/tokenizer.h"

namespace dseek::cli {

void add_eval(CLI::App& app) {
  struct Opts {
    std::string model, task, split = "eval", chat_template;
    uint64_t n = 64, start = 0;
    int64_t max_tokens = 256;
    SamplingParams sp;
    size_t batch = 16, show = 0;
    TaskOptions task_opt;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("eval", "Accuracy and format rate of a model on a built-in task (arithmetic, countdown)");
  sub->add_option("--model", o->model, "Model folder or training run (tokenizer.json in the same folder)")->required();
  sub->add_option("--task", o->task, "Task: arithmetic or countdown")->required();
  sub->add_option("--n", o->n, "Number of examples")->default_val(64);
  sub->add_option("--start", o->start, "First example index")->default_val(0);
  sub->add_option("--split", o->split, "Split: eval (held out) or train")->check(CLI::IsMember({"eval", "train"}))->default_val("eval");
  sub->add_option("--max-tokens", o->max_tokens, "Maximum tokens per completion")->default_val(256);
  sub->add_option("--temperature", o->sp.temperature, "Sampling temperature (0 = greedy)")->default_val(0.0);
  sub->add_option("--top-p", o->sp.top_p, "Nucleus sampling threshold (1 = off)")->default_val(1.0);
  sub->add_option("--batch", o->batch, "Sequences decoded together")->default_val(16);
  sub->add_option("--show", o->show, "Print the first K examples with their completions")->default_val(0);
  add_task_option_flags(*sub, o->task_opt, true);  // the task seed also seeds sampling
  add_chat_template_flag(*sub, o->chat_template);
  add_threads_flag(*sub, o->threads);
  sub->callback([o] {
    apply_threads(o->threads);
    if (o->n == 0) fail("--n: must be positive");
    check_max_tokens(o->max_tokens);
    check_sampling_flags(o->sp);
    if (o->batch == 0) fail("--batch: must be positive");
    std::unique_ptr<Task> task = make_task(o->task, o->task_opt);
    const std::string dir = resolve_model_dir(o->model);
    const auto tok_file = Tokenizer::find_file(o->model);
    if (!tok_file)
      fail("--model {}: no tokenizer.json in {} (eval needs the model's tokenizer; 'dseek tokenizer train' makes one)",
           o->model, dir);
    Tokenizer tok = Tokenizer::load(*tok_file, {.chat_template = o->chat_template});
    Model m = Model::load(o->model);

    EvalOptions opt;
    opt.split = o->split;
    opt.start = o->start;
    opt.n = o->n;
    opt.max_tokens = o->max_tokens;
    opt.sampling = o->sp;
    opt.sampling.seed = o->task_opt.seed;
    opt.batch = o->batch;
    if (isatty(STDERR_FILENO))
      opt.progress = [](size_t done, size_t total) { std::fprintf(stderr, "\reval: %zu/%zu", done, total), std::fflush(stderr); };
    EvalResult r = evaluate_task(m, tok, *task, opt);
    if (opt.progress) std::fprintf(stderr, "\n");

    for (size_t i = 0; i < std::min(o->show, r.records.size()); i++) {
      const EvalRecord& e = r.records[i];
      std::printf("example %llu: accuracy %g format %g, %lld tokens (%s), answer %s\n  prompt: %s\n  completion: %s\n",
                  (unsigned long long)e.index, e.reward.accuracy, e.reward.format, (long long)e.tokens,
                  e.stop_reason.c_str(), nlohmann::json(e.example.answer).dump().c_str(),
                  nlohmann::json(e.example.prompt).dump().c_str(),
                  nlohmann::json(e.completion).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    }
    std::printf("task %s, split %s, examples %llu..%llu: %.1f tokens per completion, %.1f s\n", task->name().c_str(),
                o->split.c_str(), (unsigned long long)o->start, (unsigned long long)(o->start + o->n - 1), r.mean_tokens,
                r.seconds);
    std::printf("correct %zu/%llu, well-formatted %zu/%llu\n", r.correct, (unsigned long long)o->n, r.formatted,
                (unsigned long long)o->n);
    std::printf("format_rate %.4f\n", r.format_rate);
    std::printf("accuracy %.4f\n", r.accuracy);
  });
}

}  // namespace dseek::cli
