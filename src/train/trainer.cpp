#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "core/fileio.h"
#include "core/json_util.h"
#include "core/memory.h"
#include "core/threads.h"
#include "inference/generation_config.h"
#include "kernels/matmul.h"
#include "model/quantize.h"
#include "tokenizer/tokenizer.h"
#include "train/balance.h"
#include "train/peak_flops.h"
#include "train/run_loop.h"

namespace dseek {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------------------
// config

json TrainConfig::to_json() const {
  json j{{"steps", steps},
              {"batch_size", batch_size},
              {"seq_len", seq_len},
              {"grad_accum", grad_accum},
              {"seed", seed},
              {"lr", opt.lr},
              {"min_lr_ratio", opt.min_lr_ratio},
              {"weight_decay", opt.weight_decay},
              {"beta1", opt.beta1},
              {"beta2", opt.beta2},
              {"eps", opt.eps},
              {"grad_clip", opt.grad_clip},
              {"warmup", opt.warmup},
              {"schedule", opt.schedule},
              {"decay_fraction", opt.decay_fraction},
              {"decay_steps", decay_steps},
              {"save_every", save_every},
              {"save_minutes", save_minutes},
              {"keep_checkpoints", keep_checkpoints},
              {"eval_every", eval_every},
              {"eval_batches", eval_batches},
              {"log_every", log_every},
              {"mtp_lambda", mtp_lambda},
              {"aux_alpha", aux_alpha},
              {"bias_gamma", bias_gamma},
              {"time_limit", time_limit},
              {"distill_weight", distill_weight}};
  mixed.write(j);
  return j;
}

TrainConfig TrainConfig::from_json(const json& j, const std::string& origin) {
  TrainConfig c;
  check_known_keys(j, c.to_json(), origin, "training setting");
  auto num = [&](const char* k, auto& dst) { read_field(j, k, dst, origin); };
  num("steps", c.steps);
  num("batch_size", c.batch_size);
  num("seq_len", c.seq_len);
  c.seq_len_given = j.contains("seq_len");
  num("grad_accum", c.grad_accum);
  num("seed", c.seed);
  num("lr", c.opt.lr);
  num("min_lr_ratio", c.opt.min_lr_ratio);
  num("weight_decay", c.opt.weight_decay);
  num("beta1", c.opt.beta1);
  num("beta2", c.opt.beta2);
  num("eps", c.opt.eps);
  num("grad_clip", c.opt.grad_clip);
  num("warmup", c.opt.warmup);
  num("decay_fraction", c.opt.decay_fraction);
  num("decay_steps", c.decay_steps);
  num("save_every", c.save_every);
  num("save_minutes", c.save_minutes);
  num("keep_checkpoints", c.keep_checkpoints);
  num("eval_every", c.eval_every);
  num("eval_batches", c.eval_batches);
  num("log_every", c.log_every);
  num("mtp_lambda", c.mtp_lambda);
  num("aux_alpha", c.aux_alpha);
  num("bias_gamma", c.bias_gamma);
  num("time_limit", c.time_limit);
  num("distill_weight", c.distill_weight);
  num("schedule", c.opt.schedule);
  c.mixed.read(j, origin);
  auto positive = [&](int64_t v, const char* k) {
    if (v <= 0) fail("{}: must be positive, got {}", setting_name(origin, k), v);
  };
  positive(c.batch_size, "batch_size");
  positive(c.seq_len, "seq_len");
  positive(c.grad_accum, "grad_accum");
  positive(c.log_every, "log_every");
  if (c.steps < 0) fail("{}: must be >= 0, got {}", setting_name(origin, "steps"), c.steps);
  if (!(c.opt.lr > 0)) fail("{}: must be positive, got {}", setting_name(origin, "lr"), c.opt.lr);
  if (c.opt.schedule != "constant" && c.opt.schedule != "cosine" && c.opt.schedule != "wsd")
    fail("{}: must be constant, cosine or wsd, got '{}'", setting_name(origin, "schedule"), c.opt.schedule);
  return c;
}

Model to_master_weights(Model m) {
  if (m.config.quantization.fp8) dequantize_model(m);
  for_each_param(m.config, m.w, [](ParamRef& p) {
    *p.tensor = p.tensor->dtype == DType::F32 ? p.tensor->clone() : p.tensor->to(DType::F32);
    if (p.linear) p.linear->scale_inv = Tensor{};
  }, ParamOptions{!m.w.mtp.empty()});
  bind_shared_tensors(m.config, m.w);
  // a routing bias must exist for the balance rule even if the checkpoint came without one
  for (auto& L : m.w.layers)
    if (L.is_moe && m.config.uses_score_bias() && !L.moe.score_bias.data)
      L.moe.score_bias = Tensor::zeros(DType::F32, {m.config.n_routed_experts});
  return m;
}

Trainer::Trainer(const std::string& run_dir, Model model, const DataSpec& data, const TrainConfig& cfg)
    : run_(run_dir), data_(data), cfg_(cfg), model_(std::move(model)), sampling_(sampling_defaults_of(model_)),
      graph_(model_.config) {
  const ModelConfig& c = model_.config;
  if (!cfg_.seq_len_given && cfg_.seq_len > c.max_position_embeddings) {
    cfg_.seq_len = c.max_position_embeddings;  // the default follows the model (a model built for 128 positions)
    std::fprintf(stderr, "--seq-len: %lld (the model's max_position_embeddings; the default is %lld)\n",
                 (long long)cfg_.seq_len, (long long)TrainConfig{}.seq_len);
  }
  if (cfg_.seq_len > c.max_position_embeddings)
    fail("--seq-len {} exceeds max_position_embeddings {}", cfg_.seq_len, c.max_position_embeddings);
  RunData d = open_run_data(data_, c, DataRequest{cfg_.batch_size, cfg_.seq_len, cfg_.eval_batches, cfg_.seed});
  source_ = std::move(d.train);
  val_batches_ = std::move(d.val);
  val_bytes_ = d.val_bytes;
  grads_ = zeros_like_weights(c, !model_.w.mtp.empty());
  cfg_.opt.bf16_moments = cfg_.mixed.bf16_moments;
  opt_ = std::make_unique<AdamW>(cfg_.opt, c, model_.w, grads_);
  mixed_ = std::make_unique<MixedPrecision>(cfg_.mixed, c, model_.w);
}

std::unique_ptr<Trainer> Trainer::create(const std::string& run_dir, Model init, const DataSpec& data,
                                         const TrainConfig& cfg) {
  RunDir(run_dir).start_new();
  TrainConfig c = cfg;
  if (c.decay_steps == 0) c.decay_steps = c.steps;
  DataSpec d = data;
  d.path = std::filesystem::absolute(d.path).string();
  if (!d.tokenizer.empty()) d.tokenizer = std::filesystem::absolute(d.tokenizer).string();
  auto t = std::unique_ptr<Trainer>(new Trainer(run_dir, to_master_weights(std::move(init)), d, c));
  json run{{"data", d.to_json()}, {"train", t->cfg_.to_json()}, {"model_config", t->model_.config.to_json()}};
  write_file_atomic(path_join(run_dir, "run.json"), run.dump(2) + "\n");
  return t;
}

std::unique_ptr<Trainer> Trainer::resume(const std::string& run_dir, const json& overrides) {
  RunDir rd(run_dir);
  const auto rp = rd.resume_point("train", overrides,
                                  {"steps", "time_limit", "save_every", "save_minutes", "eval_every", "log_every",
                                   "keep_checkpoints"},
                                  {"step", "data_state"});
  if (!rp.run.contains("data")) fail("{}: corrupted (no 'data')", rp.run_json);
  TrainConfig cfg = TrainConfig::from_json(rp.settings, rp.run_json);
  Model m = Model::load(rp.checkpoint, LoadOptions{.mtp = true});
  auto t = std::unique_ptr<Trainer>(
      new Trainer(run_dir, to_master_weights(std::move(m)), DataSpec::from_json(rp.run["data"], rp.run_json), cfg));
  t->opt_->load_state(SafetensorsFile::open(path_join(rp.checkpoint, "optimizer.safetensors")));
  t->source_->restore(rp.state["data_state"]);
  t->mixed_->restore(rp.state);
  t->step_ = rp.state["step"].get<int64_t>();
  t->elapsed_ = rp.state.value("elapsed_s", 0.0);
  rd.truncate_metrics_after(t->step_);
  return t;
}

std::optional<SamplingParams> sampling_defaults_of(const Model& model) {
  if (model.source.empty() || !file_exists(path_join(model.source, "generation_config.json"))) return std::nullopt;
  return GenerationDefaults::load(model.source).sampling;
}

void write_checkpoint_files(const std::string& dir, const Model& model, const AdamW& opt, const json& state,
                            const std::string& tokenizer_dir, const std::optional<SamplingParams>& sampling) {
  model.save(dir);
  write_generation_config(dir, model.config.bos_token_id, model.config.eos_token_ids, sampling);
  save_safetensors(path_join(dir, "optimizer.safetensors"), opt.state());
  write_file_atomic(path_join(dir, "trainer_state.json"), state.dump(2) + "\n");
  if (!tokenizer_dir.empty() && Tokenizer::find_file(tokenizer_dir)) Tokenizer::copy_files(tokenizer_dir, dir);
}

double Trainer::flops_per_token() const {
  const ModelConfig& c = model_.config;
  Model& m = const_cast<Model&>(model_);
  double params = 0;
  for_each_param(c, m.w, [&](ParamRef& p) {
    if (p.role != ParamRole::Matrix && p.role != ParamRole::Router) return;
    double n = double(shape_numel(p.shape));
    if (p.name.find(".mlp.experts.") != std::string::npos) n *= double(c.num_experts_per_tok) / double(c.n_routed_experts);
    params += n;
  }, ParamOptions{!m.w.mtp.empty()});
  if (!m.w.mtp.empty()) params += double(c.vocab_size * c.hidden_size) * double(m.w.mtp.size());  // shared head again
  const double layers = double(c.num_hidden_layers + int64_t(m.w.mtp.size()));
  const double attn = 2.0 * double(c.num_attention_heads) * double(c.qk_head_dim() + c.v_head_dim) *
                      double(cfg_.seq_len + 1) / 2.0 * layers;
  return 3.0 * (2.0 * params + attn);  // forward + backward (2x)
}


std::pair<double, double> Trainer::evaluate() {
  if (val_batches_.empty()) return {NAN, NAN};
  GraphOptions o;
  o.layer.precision = cfg_.mixed.products();
  o.use_mtp = false;
  double nats = 0;
  int64_t tokens = 0;
  for (const MicroBatch& mb : val_batches_) {
    TrainGraph g(model_.config);
    LossBreakdown lb = g.run(mixed_->compute(), nullptr, model_.rope, mb, o);
    nats += lb.main * double(lb.tokens);
    tokens += lb.tokens;
  }
  if (tokens == 0) return {NAN, NAN};
  return {nats / double(tokens), val_bytes_ > 0 ? nats / std::log(2.0) / val_bytes_ : NAN};
}

void Trainer::save_checkpoint() {
  run_.save_checkpoint(step_, [&](const std::string& dir) {
    json st{{"step", step_}, {"data_state", source_->state()}, {"elapsed_s", elapsed_}, {"train", cfg_.to_json()}};
    if (json ls = mixed_->state(); !ls.is_null()) st["loss_scaler"] = ls;
    write_checkpoint_files(dir, model_, *opt_, st, data_.kind == "tokens" ? data_.path : data_.tokenizer, sampling_);
  }, int(cfg_.keep_checkpoints));
}

void Trainer::train() {
  const ModelConfig& c = model_.config;
  const Precision prec = cfg_.mixed.products();
  const std::vector<int64_t> inject = overflow_injection_steps();
  GraphOptions go;
  go.layer.precision = prec;
  go.layer.fp8_activations = cfg_.mixed.fp8_activations();
  go.layer.aux_alpha = c.n_routed_experts > 0 ? cfg_.aux_alpha : 0.0;
  go.mtp_lambda = cfg_.mtp_lambda;
  go.soft_weight = float(cfg_.distill_weight);
  PeakFlops peak(prec);
  const double fpt = flops_per_token();
  MovingWindow window_s(20);  // seconds of the last 20 steps: the progress line's tokens/s and MFU
  const int64_t tokens_per_step = cfg_.batch_size * cfg_.seq_len * cfg_.grad_accum;
  const bool has_mtp = !model_.w.mtp.empty();
  std::fprintf(stderr, "training %s: %.1fM parameters, %lld tokens/step, %s, %d threads, target step %lld\n",
               run_.path().c_str(), double(model_.parameter_count(false)) / 1e6, (long long)tokens_per_step,
               std::string(train_precision_name(cfg_.mixed.precision)).c_str(), num_threads(), (long long)cfg_.steps);
  RunLoopMethod m;
  m.step = [&](int64_t step) {
    const auto t0 = std::chrono::steady_clock::now();
    const double lr = lr_at(cfg_.opt, step, cfg_.decay_steps > 0 ? cfg_.decay_steps : cfg_.steps);
    opt_->zero_grads();
    mixed_->reset_counts();
    go.loss_scale = mixed_->loss_scale();
    LossBreakdown sum;
    std::vector<std::vector<int64_t>> load;
    std::vector<int64_t> load_layers;
    for (int64_t a = 0; a < cfg_.grad_accum; a++) {
      MicroBatch mb = source_->next(cfg_.batch_size, cfg_.seq_len);
      LossBreakdown lb = graph_.run(mixed_->compute(), &grads_, model_.rope, mb, go);
      sum.main += lb.main;
      sum.mtp += lb.mtp;
      sum.aux += lb.aux;
      sum.total += lb.total;
      sum.soft_kl += lb.soft_kl;
      if (load.empty()) load = lb.load, load_layers = lb.load_layers;
      else
        for (size_t l = 0; l < load.size(); l++)
          for (size_t e = 0; e < load[l].size(); e++) load[l][e] += lb.load[l][e];
    }
    const double inv = 1.0 / double(cfg_.grad_accum);
    if (std::find(inject.begin(), inject.end(), step) != inject.end()) grads_.norm.f32()[0] = INFINITY;
    // a step whose scaled gradients overflowed is skipped (fp16 with loss scaling)
    const bool apply = mixed_->unscale(*opt_, cfg_.grad_accum);
    OptimizerStep os{NAN, lr};
    if (apply) {
      os = opt_->step(lr);
      if (model_.config.uses_score_bias()) update_routing_bias(model_.w, load, cfg_.bias_gamma);
      mixed_->refresh();
    }
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // only the terms this run has (a dense student has no MTP or balance loss, only distillation has a KL)
    json rec{{"loss", sum.main * inv}, {"total_loss", sum.total * inv}, {"lr", lr},
             {"tokens_per_s", double(tokens_per_step) / dt}, {"mfu", peak.utilisation(fpt * double(tokens_per_step) / dt)}};
    if (apply) rec["grad_norm"] = os.grad_norm;
    rec["peak_rss_mib"] = peak_rss_mib();
    mixed_->add_metrics(rec);
    if (has_mtp) rec["mtp_loss"] = sum.mtp * inv;
    if (go.layer.aux_alpha > 0) rec["aux_loss"] = sum.aux * inv;
    if (cfg_.distill_weight > 0) rec["distill_kl"] = sum.soft_kl * inv;
    window_s.push(dt);
    if (!load.empty()) {
      json ratio = json::array(), loads = json::array();
      for (const auto& l : load) {
        double mx = 0, mean = 0;
        for (int64_t v : l) {
          mx = std::max(mx, double(v));
          mean += double(v);
        }
        mean /= double(l.size());
        ratio.push_back(mean > 0 ? mx / mean : 0.0);
        json row = json::array();
        for (int64_t v : l) row.push_back(mean > 0 ? double(v) / mean : 0.0);
        loads.push_back(row);
      }
      rec["load_max_over_mean"] = ratio;
      rec["moe_layers"] = load_layers;  // checkpoint layer indices; MTP blocks from num_hidden_layers on
      if (!load_layers.empty() && load_layers.back() >= c.num_hidden_layers) rec["mtp_first_layer"] = c.num_hidden_layers;
      if ((step + 1) % 10 == 0 || step + 1 == cfg_.steps) rec["expert_load"] = loads;
    }
    return rec;
  };
  m.evaluate = [&](json& rec) {
    auto [vl, bpb] = evaluate();
    if (std::isfinite(vl)) {
      rec["val_loss"] = vl;
      if (std::isfinite(bpb)) rec["val_bpb"] = bpb;
    }
  };
  m.progress = [&](const json& r) {
    std::string s = fmt::format("loss {:.4f}", r["loss"].get<double>());
    if (has_mtp) s += fmt::format(" | mtp {:.4f}", r["mtp_loss"].get<double>());
    if (cfg_.distill_weight > 0) s += fmt::format(" | kl {:.4f}", r["distill_kl"].get<double>());
    // throughput over the last steps (one step's time is noisy on a shared machine); metrics.jsonl keeps each step's
    const double tps = double(tokens_per_step) / window_s.mean();
    if (r.contains("loss_scale")) s += fmt::format(" | scale {:g}", r["loss_scale"].get<double>());
    const std::string gnorm = r.contains("grad_norm") ? fmt::format("{:.3f}", r["grad_norm"].get<double>()) : "skipped";
    return s + fmt::format(" | lr {:.2e} | gnorm {} | {:.0f} tok/s | MFU {:.1f}%", r["lr"].get<double>(), gnorm, tps,
                           100.0 * fpt * tps / peak.value());
  };
  m.eval_progress = [](const json& r) {
    if (!r.contains("val_loss")) return std::string();
    const double bpb = r.contains("val_bpb") ? r["val_bpb"].get<double>() : NAN;  // chat data: no byte count
    return std::isfinite(bpb) ? fmt::format(" | val {:.4f} ({:.3f} bpb)", r["val_loss"].get<double>(), bpb)
                              : fmt::format(" | val {:.4f}", r["val_loss"].get<double>());
  };
  m.save = [&] { save_checkpoint(); };
  run_loop(run_, RunLoopConfig{cfg_.steps, cfg_.eval_every, cfg_.log_every, cfg_.save_every, cfg_.save_minutes, cfg_.time_limit},
           m, step_, elapsed_);
}

}  // namespace dseek
