// dseek distill: a teacher's verified completions (and optionally its top-k distributions) into a student.
#include <algorithm>
#include <cstdio>

#include "cli/commands.h"
#include "cli/settings.h"
#include "core/error.h"
#include "core/json_util.h"
#include "posttrain/distill.h"

namespace dseek::cli {

void add_distill(CLI::App& app) {
  struct Opts {
    DistillConfig c;
    std::string hparams, resume;
    bool keep_all = false;
    int threads = 0;
    SettingFlags flags;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand(
      "distill", "Distil a teacher into a student: verified teacher completions as SFT data, optional logit KL");
  auto* teacher = sub->add_option("--teacher", o->c.teacher, "Teacher model folder or run");
  auto* student = sub->add_option("--student", o->c.student,
                                  "Student model folder (with the teacher's tokenizer, or none), or a config.json to "
                                  "initialise randomly");
  sub->add_option("--task", o->c.task, "Built-in task whose train split gives the prompts and the verifier");
  sub->add_option("--prompts", o->c.prompts_file, "JSON Lines of {\"prompt\", \"answer\"} instead of a task");
  auto* out = sub->add_option("--out", o->c.out, "New folder for distill_data.jsonl and the student's run (OUT/student)");
  sub->add_option("--resume", o->resume, "Continue the distillation in this folder (an earlier --out) from the student's "
                                         "latest checkpoint; training flags such as --steps set the new target");
  sub->add_option("--n-prompts", o->c.prompts, "Prompts the teacher answers")->default_val(512);
  sub->add_option("--sample-batch", o->c.batch, "Sequences the teacher samples at once (batched decoding)")
      ->default_val(128)
      ->check(CLI::PositiveNumber);
  sub->add_option("--samples-per-prompt", o->c.samples_per_prompt, "Teacher samples per prompt")->default_val(4);
  sub->add_option("--teacher-temperature", o->c.temperature, "Teacher sampling temperature")->default_val(0.8);
  sub->add_option("--max-new-tokens", o->c.max_new_tokens, "Completion length limit")->default_val(96);
  sub->add_flag("--keep-all", o->keep_all, "Keep every teacher sample (no rejection by the verifier)");
  sub->add_option("--top-k", o->c.top_k, "Also match the teacher's top-k next-token distribution (needs the same vocabulary)")
      ->default_val(0);
  sub->add_option("--hparams", o->hparams, "Student training settings file");
  add_task_option_flags(*sub, o->c.task_options, false);
  nlohmann::json defaults = TrainConfig().to_json();
  defaults.erase("distill_weight");  // 1 with --top-k, else unused
  o->flags.add_to(*sub, training_setting_flags(), defaults);
  add_threads_flag(*sub, o->threads);
  add_checkpoint_help(*sub);
  sub->callback([o, sub, teacher, student, out] {
    apply_threads(o->threads);
    o->c.rejection = !o->keep_all;
    nlohmann::json settings = gather_settings(o->hparams, o->flags);
    if (!o->resume.empty()) {
      // only training settings may come again (--steps ...); the rest is the distillation's own
      for (const CLI::Option* opt : sub->get_options()) {
        const std::string name = opt->get_name();
        std::string key = name.substr(2);
        std::replace(key.begin(), key.end(), '-', '_');
        const bool allowed = name == "--resume" || name == "--threads" || name == "--hparams" || settings.contains(key);
        if (opt->count() > 0 && !allowed)
          fail("{}: not with --resume (the distillation keeps its teacher, student, data and sampling settings)", name);
      }
      distill_resume(o->resume, settings);
      return;
    }
    for (const CLI::Option* required : {teacher, student, out})
      if (required->count() == 0) fail("{} is required (or --resume OUT to continue a distillation)", required->get_name());
    if (o->c.top_k > 0 && !settings.contains("distill_weight")) settings["distill_weight"] = 1.0;
    o->c.train = TrainConfig::from_json(settings, o->hparams.empty() ? kFlagsOrigin : o->hparams);
    DistillStats st = distill(o->c);
    if (st.generated > 0)
      std::printf("teacher: %lld samples, %lld kept (sample accuracy %.3f); student trained in %s/student\n",
                  (long long)st.generated, (long long)st.kept, st.teacher_accuracy, o->c.out.c_str());
  });
}

}  // namespace dseek::cli
