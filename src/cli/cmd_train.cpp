// dseek train: pretraining from a config (random init) or a checkpoint, or resuming a run.
#include <cstdio>

#include "cli/commands.h"
#include "cli/settings.h"
#include "core/error.h"
#include "core/json_util.h"
#include "train/trainer.h"

namespace dseek::cli {

void add_train(CLI::App& app) {
  struct Opts {
    std::string config, model, data, out, resume, hparams;
    int threads = 0;
    SettingFlags flags;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("train", "Pretrain a model on prepared token shards (or resume a run)");
  sub->add_option("--config", o->config, "Model config.json to initialise randomly");
  sub->add_option("--model", o->model, "Model folder or run to start from instead");
  sub->add_option("--data", o->data, "Folder written by 'dseek prepare'");
  sub->add_option("--out", o->out, "Run folder to create (metrics.jsonl, checkpoints/, charts)");
  sub->add_option("--resume", o->resume, "Continue the run in this folder from its latest checkpoint");
  sub->add_option("--hparams", o->hparams, "Settings file: JSON, or 'key: value' lines; flags override it");
  o->flags.add_to(*sub, training_setting_flags(), TrainConfig().to_json());
  add_threads_flag(*sub, o->threads);
  add_checkpoint_help(*sub);
  sub->callback([o] {
    apply_threads(o->threads);
    const nlohmann::json settings = gather_settings(o->hparams, o->flags);
    std::unique_ptr<Trainer> t;
    if (!o->resume.empty()) {
      if (!o->config.empty() || !o->model.empty() || !o->data.empty() || !o->out.empty())
        fail("--resume continues an existing run; drop --config/--model/--data/--out");
      t = Trainer::resume(o->resume, settings);
    } else {
      if (o->config.empty() == o->model.empty()) fail("give exactly one of --config (new model) or --model (start from weights)");
      if (o->data.empty()) fail("--data is required");
      if (o->out.empty()) fail("--out is required");
      TrainConfig cfg = TrainConfig::from_json(settings, o->hparams.empty() ? kFlagsOrigin : o->hparams);
      Model init = o->config.empty() ? Model::load(o->model, LoadOptions{.mtp = true})
                                     : Model::random(ModelConfig::load(o->config), cfg.seed);
      DataSpec data;
      data.path = o->data;
      t = Trainer::create(o->out, std::move(init), data, cfg);
    }
    t->train();
  });
}

}  // namespace dseek::cli
