// dseek grpo: reinforcement learning with group-relative policy optimisation and rule-based rewards.
#include "cli/commands.h"
#include "cli/settings.h"
#include "core/error.h"
#include "core/json_util.h"
#include "posttrain/grpo.h"
#include "train/mixed_precision.h"

namespace dseek::cli {

void add_grpo(CLI::App& app) {
  struct Opts {
    std::string model, task, prompts, out, resume, hparams, reward_cmd;
    bool no_std = false;
    int threads = 0;
    SettingFlags flags;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("grpo", "Reinforce a model with GRPO on a built-in task or a prompts file");
  sub->add_option("--model", o->model, "Policy to start from (model folder or run); also the frozen reference");
  sub->add_option("--task", o->task, "Built-in task with a verifier: arithmetic, countdown");
  sub->add_option("--prompts", o->prompts, "JSON Lines of {\"prompt\", \"answer\"} instead of a task");
  sub->add_option("--reward-cmd", o->reward_cmd,
                  "Shell command scoring completions: JSON lines {prompt, completion, answer, meta} in, one reward per line out");
  sub->add_option("--out", o->out, "Run folder to create");
  sub->add_option("--resume", o->resume, "Continue the run in this folder from its latest checkpoint");
  sub->add_option("--hparams", o->hparams, "Settings file: JSON, or 'key: value' lines; flags override it");
  sub->add_flag("--no-std-scaling", o->no_std, "Advantages r - mean without dividing by the group's std");
  std::vector<std::pair<std::string, std::string>> flags{{"steps", "Optimizer steps (batches of samples)"},
                         {"prompts_per_step", "Prompts per step"},
                         {"group_size", "Completions sampled per prompt (G)"},
                         {"mu", "Optimisation iterations per batch of samples"},
                         {"micro_batch", "Sequences per forward/backward"},
                         {"max_new_tokens", "Completion length limit"},
                         {"temperature", "Sampling temperature of the rollouts"},
                         {"top_p", "Nucleus sampling of the rollouts"},
                         {"top_k", "Top-k sampling of the rollouts (0: off)"},
                         {"epsilon", "Clip range: ratio in [1 - epsilon, 1 + epsilon_high]"},
                         {"epsilon_high", "Upper clip (default: epsilon)"},
                         {"beta", "KL coefficient to the frozen reference (0: none)"},
                         {"loss_normalization", "token (over all tokens of the batch) or sequence"},
                         {"accuracy_weight", "Weight of the accuracy reward"},
                         {"format_weight", "Weight of the <think>/<answer> format reward"},
                         {"lr", "Learning rate"},
                         {"weight_decay", "AdamW weight decay"},
                         {"grad_clip", "Global gradient-norm clip"},
                         {"warmup", "Linear warm-up steps"},
                         {"schedule", "constant, cosine or wsd"},
                         {"eval_every", "Held-out accuracy every N steps (0: off)"},
                         {"eval_n", "Held-out examples"},
                         {"save_every", "Checkpoint every N steps (0: by --save-minutes only); always at the end and on SIGINT/SIGTERM"},
                         {"save_minutes", "Also checkpoint when this many minutes passed since the last checkpoint (0: off)"},
                         {"log_every", "Progress line every N steps"},
                         {"seed", "Sampling seed"},
                         {"task_seed", "Seed of the task's problem generator"},
                         {"min_digits", "arithmetic: fewest digits per operand"},
                         {"max_digits", "arithmetic: most digits per operand"},
                         {"ops", "arithmetic: operations, any of +-*/"},
                         {"numbers", "countdown: numbers per problem"},
                         {"time_limit", "Stop (and checkpoint) after this many seconds (0: no limit)"}};
  flags.insert(flags.end(), precision_setting_flags().begin(), precision_setting_flags().end());
  o->flags.add_to(*sub, flags, GrpoConfig().to_json());
  add_threads_flag(*sub, o->threads);
  add_checkpoint_help(*sub);
  sub->callback([o] {
    apply_threads(o->threads);
    nlohmann::json settings = gather_settings(o->hparams, o->flags);
    if (!o->task.empty()) settings["task"] = o->task;
    if (!o->prompts.empty()) settings["prompts_file"] = o->prompts;
    if (!o->reward_cmd.empty()) settings["reward_command"] = o->reward_cmd;
    if (o->no_std) settings["scale_rewards"] = false;
    if (settings.contains("epsilon") && !settings.contains("epsilon_high")) settings["epsilon_high"] = settings["epsilon"];
    std::unique_ptr<GrpoTrainer> t;
    if (!o->resume.empty()) {
      if (!o->model.empty() || !o->out.empty()) fail("--resume continues an existing run; drop --model/--out");
      t = GrpoTrainer::resume(o->resume, settings);
    } else {
      if (o->model.empty() || o->out.empty()) fail("--model and --out are required");
      t = GrpoTrainer::create(o->out, o->model, GrpoConfig::from_json(settings, o->hparams.empty() ? kFlagsOrigin : o->hparams));
    }
    t->train();
  });
}

}  // namespace dseek::cli
