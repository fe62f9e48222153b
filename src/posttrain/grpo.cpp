#include "posttrain/grpo.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "core/error.h"
#include "core/fileio.h"
#include "core/json_util.h"
#include "core/rng.h"
#include "core/threads.h"
#include "inference/batch_generator.h"
#include "kernels/matmul.h"
#include "posttrain/eval.h"
#include "posttrain/verifier.h"
#include "train/run_loop.h"
#include "train/trainer.h"

namespace dseek {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------------------
// settings

json GrpoConfig::to_json() const {
  json j{{"task", task},
              {"task_seed", task_options.seed},
              {"min_digits", task_options.min_digits},
              {"max_digits", task_options.max_digits},
              {"numbers", task_options.numbers},
              {"ops", task_options.ops},
              {"prompts_file", prompts_file},
              {"reward_command", reward_command},
              {"accuracy_weight", accuracy_weight},
              {"format_weight", format_weight},
              {"steps", steps},
              {"prompts_per_step", prompts_per_step},
              {"group_size", group_size},
              {"mu", mu},
              {"micro_batch", micro_batch},
              {"max_new_tokens", max_new_tokens},
              {"temperature", temperature},
              {"top_p", top_p},
              {"top_k", top_k},
              {"epsilon", loss.eps_low},
              {"epsilon_high", loss.eps_high},
              {"beta", loss.beta},
              {"scale_rewards", loss.scale_std},
              {"loss_normalization", loss.token_level ? "token" : "sequence"},
              {"lr", opt.lr},
              {"weight_decay", opt.weight_decay},
              {"grad_clip", opt.grad_clip},
              {"warmup", opt.warmup},
              {"schedule", opt.schedule},
              {"eval_every", eval_every},
              {"eval_n", eval_n},
              {"save_every", save_every},
              {"save_minutes", save_minutes},
              {"keep_checkpoints", keep_checkpoints},
              {"log_every", log_every},
              {"seed", seed},
              {"time_limit", time_limit}};
  mixed.write(j);
  return j;
}

GrpoConfig GrpoConfig::from_json(const json& j, const std::string& origin) {
  GrpoConfig c;
  check_known_keys(j, c.to_json(), origin, "GRPO setting");
  auto get = [&](const char* k, auto& dst) { read_field(j, k, dst, origin); };
  get("task", c.task);
  get("task_seed", c.task_options.seed);
  get("min_digits", c.task_options.min_digits);
  get("max_digits", c.task_options.max_digits);
  get("numbers", c.task_options.numbers);
  get("ops", c.task_options.ops);
  get("prompts_file", c.prompts_file);
  get("reward_command", c.reward_command);
  get("accuracy_weight", c.accuracy_weight);
  get("format_weight", c.format_weight);
  get("steps", c.steps);
  get("prompts_per_step", c.prompts_per_step);
  get("group_size", c.group_size);
  get("mu", c.mu);
  get("micro_batch", c.micro_batch);
  get("max_new_tokens", c.max_new_tokens);
  get("temperature", c.temperature);
  get("top_p", c.top_p);
  get("top_k", c.top_k);
  get("epsilon", c.loss.eps_low);
  c.loss.eps_high = c.loss.eps_low;
  get("epsilon_high", c.loss.eps_high);
  get("beta", c.loss.beta);
  get("scale_rewards", c.loss.scale_std);
  std::string norm = c.loss.token_level ? "token" : "sequence";
  get("loss_normalization", norm);
  if (norm != "token" && norm != "sequence")
    fail("{}: must be token or sequence, got '{}'", setting_name(origin, "loss_normalization"), norm);
  c.loss.token_level = norm == "token";
  get("lr", c.opt.lr);
  get("weight_decay", c.opt.weight_decay);
  get("grad_clip", c.opt.grad_clip);
  get("warmup", c.opt.warmup);
  get("schedule", c.opt.schedule);
  c.mixed.read(j, origin);
  get("eval_every", c.eval_every);
  get("eval_n", c.eval_n);
  get("save_every", c.save_every);
  get("save_minutes", c.save_minutes);
  get("keep_checkpoints", c.keep_checkpoints);
  get("log_every", c.log_every);
  get("seed", c.seed);
  get("time_limit", c.time_limit);
  if (c.task.empty() == c.prompts_file.empty())
    fail("{}: give exactly one of a task (--task) or a prompts file (--prompts)", origin);
  if (c.group_size < 2)
    fail("{}: must be at least 2 (advantages compare completions of a prompt), got {}", setting_name(origin, "group_size"),
         c.group_size);
  const std::pair<const char*, int64_t> positive[] = {{"prompts_per_step", c.prompts_per_step}, {"mu", c.mu},
                                                      {"micro_batch", c.micro_batch}, {"max_new_tokens", c.max_new_tokens},
                                                      {"log_every", c.log_every}};
  for (const auto& [key, v] : positive)
    if (v < 1) fail("{}: must be positive, got {}", setting_name(origin, key), v);
  if (c.loss.eps_low < 0 || c.loss.eps_high < c.loss.eps_low)
    fail("{} and {}: need 0 <= epsilon <= epsilon_high, got {} and {}", setting_name(origin, "epsilon"),
         setting_name(origin, "epsilon_high"), c.loss.eps_low, c.loss.eps_high);
  if (c.loss.beta < 0) fail("{}: must be >= 0, got {}", setting_name(origin, "beta"), c.loss.beta);
  return c;
}

// ---------------------------------------------------------------------------------------------------------

GrpoTrainer::GrpoTrainer(const std::string& run_dir, Model policy, std::optional<Model> reference,
                         const std::string& tokenizer_dir, const GrpoConfig& cfg)
    : run_(run_dir), cfg_(cfg), tokenizer_dir_(tokenizer_dir), tok_(Tokenizer::load(tokenizer_dir)),
      policy_(std::move(policy)), reference_(std::move(reference)), graph_(policy_.config) {
  task_ = cfg_.task.empty() ? load_prompts_task(cfg_.prompts_file) : make_task(cfg_.task, cfg_.task_options);
  if (!cfg_.reward_command.empty()) reward_cmd_.emplace(cfg_.reward_command);
  const ModelConfig& c = policy_.config;
  grads_ = zeros_like_weights(c, !policy_.w.mtp.empty());
  cfg_.opt.bf16_moments = cfg_.mixed.bf16_moments;
  opt_ = std::make_unique<AdamW>(cfg_.opt, c, policy_.w, grads_);
  mixed_ = std::make_unique<MixedPrecision>(cfg_.mixed, c, policy_.w);
}

std::unique_ptr<GrpoTrainer> GrpoTrainer::create(const std::string& run_dir, const std::string& model_dir,
                                                 const GrpoConfig& cfg) {
  RunDir(run_dir).start_new();
  const std::string dir = resolve_model_dir(model_dir);
  ModelConfig mc = ModelConfig::load(dir);
  Model policy = to_master_weights(Model::load(dir, LoadOptions{.mtp = mc.num_nextn_predict_layers > 0}));
  make_dirs(run_dir);
  std::optional<Model> ref;
  if (cfg.loss.beta > 0) {  // the frozen reference is kept with the run so resuming needs nothing else
    ref = to_master_weights(Model::load(dir, LoadOptions{.mtp = mc.num_nextn_predict_layers > 0}));
    ref->save(path_join(run_dir, "reference"));
  }
  json run{{"grpo", cfg.to_json()}, {"model", std::filesystem::absolute(dir).string()},
           {"tokenizer", std::filesystem::absolute(dir).string()}};
  write_file_atomic(path_join(run_dir, "run.json"), run.dump(2) + "\n");
  return std::unique_ptr<GrpoTrainer>(new GrpoTrainer(run_dir, std::move(policy), std::move(ref), dir, cfg));
}

std::unique_ptr<GrpoTrainer> GrpoTrainer::resume(const std::string& run_dir, const json& overrides) {
  RunDir rd(run_dir);
  const auto rp = rd.resume_point(
      "grpo", overrides, {"steps", "time_limit", "save_every", "save_minutes", "eval_every", "eval_n", "log_every",
                 "keep_checkpoints"},
      {"step", "cursor"});
  if (!rp.run.contains("tokenizer")) fail("{}: corrupted (no 'tokenizer')", rp.run_json);
  GrpoConfig cfg = GrpoConfig::from_json(rp.settings, rp.run_json);
  const LoadOptions lo{.mtp = ModelConfig::load(rp.checkpoint).num_nextn_predict_layers > 0};
  std::optional<Model> ref;
  if (cfg.loss.beta > 0) ref = to_master_weights(Model::load(path_join(run_dir, "reference"), lo));
  auto t = std::unique_ptr<GrpoTrainer>(new GrpoTrainer(run_dir, to_master_weights(Model::load(rp.checkpoint, lo)),
                                                        std::move(ref), rp.run["tokenizer"].get<std::string>(), cfg));
  t->opt_->load_state(SafetensorsFile::open(path_join(rp.checkpoint, "optimizer.safetensors")));
  t->mixed_->restore(rp.state);
  t->step_ = rp.state["step"].get<int64_t>();
  t->cursor_ = rp.state["cursor"].get<uint64_t>();
  t->elapsed_ = rp.state.value("elapsed_s", 0.0);
  rd.truncate_metrics_after(t->step_);
  return t;
}

void GrpoTrainer::save_checkpoint() {
  run_.save_checkpoint(step_, [&](const std::string& dir) {
    json st{{"step", step_}, {"cursor", cursor_}, {"elapsed_s", elapsed_}, {"grpo", cfg_.to_json()}};
    if (json ls = mixed_->state(); !ls.is_null()) st["loss_scaler"] = ls;
    // the rollouts' sampling becomes the model's default (do_sample with GRPO's temperature, top-p, top-k)
    SamplingParams sampling;
    sampling.temperature = cfg_.temperature;
    sampling.top_p = cfg_.top_p;
    sampling.top_k = cfg_.top_k;
    write_checkpoint_files(dir, policy_, *opt_, st, tokenizer_dir_, sampling);
  }, int(cfg_.keep_checkpoints));
}

double GrpoTrainer::held_out_accuracy(double* format_rate) {
  Model view = policy_;
  view.w = mixed_->compute();
  EvalOptions eo;
  eo.n = uint64_t(cfg_.eval_n);
  eo.max_tokens = cfg_.max_new_tokens;
  EvalResult r = evaluate_task(view, tok_, *task_, eo);
  if (format_rate) *format_rate = r.format_rate;
  return r.accuracy;
}

namespace {

// One sequence of the update: prompt + completion, with its advantage.
struct Sample {
  std::vector<int32_t> ids;
  int64_t prompt_len = 0;
  double advantage = 0;
};

// Sequences [i0, i1) of `order` as one padded micro-batch; `row_sample` maps each row to its sample.
MicroBatch make_batch(const std::vector<Sample>& s, const std::vector<size_t>& order, size_t i0, size_t i1, int32_t pad,
                      std::vector<int64_t>& row_sample) {
  int64_t T = 1;
  for (size_t k = i0; k < i1; k++) T = std::max<int64_t>(T, int64_t(s[order[k]].ids.size()) - 1);
  const int64_t B = int64_t(i1 - i0);
  MicroBatch mb;
  mb.B = B;
  mb.T = T;
  mb.inputs.assign(size_t(B * T), pad);
  mb.targets.assign(size_t(B * T), -1);
  mb.shape = TrainShape::dense(B, T);
  row_sample.assign(size_t(B * T), -1);
  for (int64_t b = 0; b < B; b++) {
    const Sample& x = s[order[i0 + size_t(b)]];
    const int64_t L = int64_t(x.ids.size());
    for (int64_t t = 0; t + 1 < L; t++) {
      mb.inputs[size_t(b * T + t)] = x.ids[size_t(t)];
      if (t + 1 >= x.prompt_len) {  // position t predicts completion token t+1
        mb.targets[size_t(b * T + t)] = x.ids[size_t(t + 1)];
        row_sample[size_t(b * T + t)] = int64_t(order[i0 + size_t(b)]);
      }
    }
  }
  return mb;
}

}  // namespace

void GrpoTrainer::train() {
  using clock = std::chrono::steady_clock;
  const ModelConfig& c = policy_.config;
  const int64_t P = cfg_.prompts_per_step, G = cfg_.group_size;
  const std::vector<int32_t> stop_ids = completion_stop_ids(c, tok_);
  const int32_t pad = stop_ids.empty() ? 0 : stop_ids[0];
  Model view = policy_;  // the policy as the inference engine sees it: same tensors, updated in place
  view.w = mixed_->compute();
  Forward fwd(view);
  BatchGenerator gen(fwd);
  GraphOptions go;
  go.layer.precision = cfg_.mixed.products();
  go.layer.fp8_activations = cfg_.mixed.fp8_activations();
  go.use_mtp = false;
  std::fprintf(stderr, "GRPO %s: %s, %lld prompts x %lld completions per step, target step %lld, %d threads\n",
               run_.path().c_str(), task_->name().c_str(), (long long)P, (long long)G, (long long)cfg_.steps,
               num_threads());
  if (step_ == 0 && cfg_.eval_every > 0) {
    double fr = 0;
    const double acc = held_out_accuracy(&fr);
    run_.log(json{{"step", 0}, {"eval_accuracy", acc}, {"eval_format_rate", fr}});
    std::fprintf(stderr, "step 0 | held-out accuracy %.3f (format %.3f)\n", acc, fr);
  }
  auto mean = [](const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size()); };
  RunLoopMethod m;
  m.step = [&](int64_t step) {
    const auto t0 = clock::now();
    // 1. rollouts: G samples per prompt from the current policy
    std::vector<TaskExample> examples;
    std::vector<GenerationRequest> reqs;
    for (int64_t p = 0; p < P; p++) {
      examples.push_back(task_->example("train", cursor_ + uint64_t(p)));
      const std::vector<int32_t> prompt = task_prompt_ids(tok_, examples.back(), c);
      for (int64_t g = 0; g < G; g++) {
        GenerationRequest r;
        r.prompt = prompt;
        r.sampling.temperature = cfg_.temperature;
        r.sampling.top_p = cfg_.top_p;
        r.sampling.top_k = cfg_.top_k;
        r.sampling.seed = hash_index(cfg_.seed, uint64_t(step), uint64_t(p * G + g));
        r.stop.max_tokens = cfg_.max_new_tokens;
        r.stop.stop_ids = stop_ids;
        reqs.push_back(std::move(r));
      }
    }
    cursor_ += uint64_t(P);
    BatchStats bs;
    std::vector<GenerationResult> outs = gen.generate(reqs, nullptr, &bs);
    const double rollout_s = bs.prefill_seconds + bs.decode_seconds;

    // 2. rewards and group-normalised advantages
    std::vector<std::string> texts(outs.size());
    std::vector<double> rewards(outs.size()), acc(outs.size()), fmt_ok(outs.size());
    for (size_t i = 0; i < outs.size(); i++) {
      texts[i] = completion_text(tok_, outs[i].tokens);
      const Reward r = task_->score(examples[i / size_t(G)], texts[i]);
      acc[i] = r.accuracy;
      fmt_ok[i] = r.format;
      rewards[i] = cfg_.accuracy_weight * r.accuracy + cfg_.format_weight * r.format;
    }
    if (reward_cmd_) {
      std::vector<json> items;
      for (size_t i = 0; i < outs.size(); i++) items.push_back(reward_item(examples[i / size_t(G)], texts[i]));
      rewards = reward_cmd_->score(items);
    }
    const std::vector<double> adv = group_advantages(rewards, G, cfg_.loss);

    // 3. the update batch: every completion token is a target; rows sorted by length to limit padding
    std::vector<Sample> samples(outs.size());
    int64_t completion_tokens = 0;
    for (size_t i = 0; i < outs.size(); i++) {
      samples[i].ids = reqs[i].prompt;
      samples[i].prompt_len = int64_t(reqs[i].prompt.size());
      samples[i].ids.insert(samples[i].ids.end(), outs[i].tokens.begin(), outs[i].tokens.end());
      samples[i].advantage = adv[i];
      completion_tokens += int64_t(outs[i].tokens.size());
    }
    std::vector<size_t> order(samples.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return samples[a].ids.size() < samples[b].ids.size(); });
    struct Batch {
      MicroBatch mb;
      std::vector<int64_t> row_sample;
      std::vector<float> lp_old, lp_ref;
    };
    std::vector<Batch> batches;
    for (size_t i = 0; i < order.size(); i += size_t(cfg_.micro_batch)) {
      Batch b;
      b.mb = make_batch(samples, order, i, std::min(order.size(), i + size_t(cfg_.micro_batch)), pad, b.row_sample);
      batches.push_back(std::move(b));
    }
    // reference and (for mu > 1) behaviour-policy log-probs, teacher-forced with the training graph
    for (Batch& b : batches) {
      GraphOptions fo = go;
      if (reference_) {
        fo.logp_out = &b.lp_ref;
        TrainGraph(c).run(reference_->w, nullptr, reference_->rope, b.mb, fo);
      }
      if (cfg_.mu > 1) {
        fo.logp_out = &b.lp_old;
        TrainGraph(c).run(mixed_->compute(), nullptr, policy_.rope, b.mb, fo);
      }
    }
    // 4. mu optimizer steps on the clipped surrogate with the KL penalty
    double kl_sum = 0, clipped = 0, policy_loss = 0, grad_norm = 0;
    int64_t counted = 0;
    const double lr = lr_at(cfg_.opt, step, cfg_.steps);
    for (int64_t it = 0; it < cfg_.mu; it++) {
      opt_->zero_grads();
      mixed_->reset_counts();
      for (Batch& b : batches) {
        const int64_t R = b.mb.B * b.mb.T;
        std::vector<float> row_kl(size_t(R), 0.0f);
        std::vector<uint8_t> row_clip(size_t(R), 0);
        GraphOptions uo = go;
        uo.loss_scale = mixed_->loss_scale();
        uo.policy = [&](int64_t r, float lp) -> std::pair<double, double> {
          const Sample& s = samples[size_t(b.row_sample[size_t(r)])];
          const double w = cfg_.loss.token_level ? 1.0 / double(completion_tokens)
                                                 : 1.0 / (double(int64_t(s.ids.size()) - s.prompt_len) * double(samples.size()));
          const double old = cfg_.mu > 1 ? double(b.lp_old[size_t(r)]) : double(lp);  // mu = 1: ratio 1, same gradient
          const double ref = reference_ ? double(b.lp_ref[size_t(r)]) : double(lp);
          const TokenLoss tl = grpo_token_loss(lp, old, ref, s.advantage, w, cfg_.loss);
          row_kl[size_t(r)] = float(tl.kl);
          row_clip[size_t(r)] = tl.clipped;
          return {tl.loss, tl.dlogp};
        };
        LossBreakdown lb = graph_.run(mixed_->compute(), &grads_, policy_.rope, b.mb, uo);
        if (it == 0) {
          for (int64_t r = 0; r < R; r++)
            if (b.mb.targets[size_t(r)] >= 0) {
              kl_sum += row_kl[size_t(r)];
              clipped += row_clip[size_t(r)];
              counted++;
            }
          policy_loss += lb.policy;
        }
      }
      if (!mixed_->unscale(*opt_, 1)) continue;  // fp16: overflow, the update is skipped
      const OptimizerStep os = opt_->step(lr);
      if (it == 0) grad_norm = os.grad_norm;
      mixed_->refresh();
    }
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();

    // 5. metrics
    const double rmean = mean(rewards);
    double rvar = 0;
    for (double r : rewards) rvar += (r - rmean) * (r - rmean);
    // every reward of the step equal: all advantages are 0 and the policy cannot learn from this batch
    const bool constant = std::all_of(rewards.begin(), rewards.end(), [&](double r) { return r == rewards.front(); });
    if (constant && constant_reward_warnings_ < 3) {
      constant_reward_warnings_++;
      std::fprintf(stderr,
                   "warning: step %lld: all %zu rewards are %g, so every advantage is 0 and this step teaches nothing; %s%s\n",
                   (long long)step + 1, rewards.size(), rewards.front(),
                   reward_cmd_ ? "check what --reward-cmd prints"
                               : "check that completions can earn a reward (the default checker wants <think>...</think> "
                                 "<answer>...</answer>; --reward-cmd scores them your way)",
                   constant_reward_warnings_ == 3 ? " (not repeated: metrics.jsonl marks such steps rewards_constant)" : "");
    }
    json rec{{"reward_mean", rmean}, {"reward_std", std::sqrt(rvar / double(rewards.size()))}};
    if (constant) rec["rewards_constant"] = true;
    if (!reward_cmd_) {  // the verifier's parts of the reward (a reward command scores as a whole)
      rec["accuracy"] = mean(acc);
      rec["format_rate"] = mean(fmt_ok);
    }
    rec.update(json{{"kl", counted ? kl_sum / double(counted) : 0.0},
                {"clip_fraction", counted ? clipped / double(counted) : 0.0},
                {"completion_length", double(completion_tokens) / double(outs.size())},
                {"policy_loss", policy_loss},
                {"grad_norm", grad_norm},
                {"lr", lr},
                {"samples_per_s", double(outs.size()) / rollout_s},
                {"rollout_tokens_per_s", double(bs.generated_tokens) / std::max(bs.decode_seconds, 1e-9)},
                {"rollout_s", rollout_s},
                {"update_s", dt - rollout_s}});
    mixed_->add_metrics(rec);
    return rec;
  };
  m.evaluate = [&](json& rec) {
    double fr = 0;
    rec["eval_accuracy"] = held_out_accuracy(&fr);
    rec["eval_format_rate"] = fr;
  };
  m.progress = [](const json& r) {
    std::string s = fmt::format("reward {:.3f}", r["reward_mean"].get<double>());
    if (r.contains("accuracy"))
      s += fmt::format(" | acc {:.3f} | format {:.3f}", r["accuracy"].get<double>(), r["format_rate"].get<double>());
    else
      s += fmt::format(" (command, std {:.3f})", r["reward_std"].get<double>());
    return s + fmt::format(" | kl {:.4f} | clip {:.3f} | len {:.1f} | {:.1f} samples/s", r["kl"].get<double>(),
                           r["clip_fraction"].get<double>(), r["completion_length"].get<double>(),
                           r["samples_per_s"].get<double>());
  };
  m.eval_progress = [](const json& r) { return fmt::format(" | held-out acc {:.3f}", r["eval_accuracy"].get<double>()); };
  m.save = [&] { save_checkpoint(); };
  run_loop(run_, RunLoopConfig{cfg_.steps, cfg_.eval_every, cfg_.log_every, cfg_.save_every, cfg_.save_minutes, cfg_.time_limit},
           m, step_, elapsed_);
}

}  // namespace dseek
