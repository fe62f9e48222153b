// dseek sft: supervised fine-tuning on chat conversations (loss on assistant tokens only, packed sequences).
#include "cli/commands.h"
#include "cli/settings.h"
#include "core/error.h"
#include "core/json_util.h"
#include "train/trainer.h"

namespace dseek::cli {

void add_sft(CLI::App& app) {
  struct Opts {
    std::string model, data, out, resume, hparams;
    double val_fraction = 0.05;
    int threads = 0;
    SettingFlags flags;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand(
      "sft", "Fine-tune on chats: JSON Lines of {\"messages\": [{\"role\", \"content\"}, ...]}, assistant tokens only");
  sub->add_option("--model", o->model, "Model folder or run to fine-tune (its tokenizer renders the chats)");
  sub->add_option("--data", o->data, "Conversations, one JSON object per line");
  sub->add_option("--out", o->out, "Run folder to create");
  sub->add_option("--resume", o->resume, "Continue the run in this folder from its latest checkpoint");
  sub->add_option("--val-fraction", o->val_fraction, "Conversations held out for validation")->default_val(0.05);
  sub->add_option("--hparams", o->hparams, "Settings file: JSON, or 'key: value' lines; flags override it");
  o->flags.add_to(*sub, training_setting_flags(), TrainConfig().to_json());
  add_threads_flag(*sub, o->threads);
  add_checkpoint_help(*sub);
  sub->callback([o] {
    apply_threads(o->threads);
    const nlohmann::json settings = gather_settings(o->hparams, o->flags);
    std::unique_ptr<Trainer> t;
    if (!o->resume.empty()) {
      if (!o->model.empty() || !o->data.empty() || !o->out.empty()) fail("--resume continues an existing run; drop --model/--data/--out");
      t = Trainer::resume(o->resume, settings);
    } else {
      if (o->model.empty() || o->data.empty() || o->out.empty()) fail("--model, --data and --out are required");
      TrainConfig cfg = TrainConfig::from_json(settings, o->hparams.empty() ? kFlagsOrigin : o->hparams);
      DataSpec data;
      data.kind = "chat";
      data.path = o->data;
      data.tokenizer = resolve_model_dir(o->model);
      data.val_fraction = o->val_fraction;
      t = Trainer::create(o->out, Model::load(o->model, LoadOptions{.mtp = true}), data, cfg);
    }
    t->train();
  });
}

}  // namespace dseek::cli
