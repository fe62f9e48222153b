#include "model/model.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include <unistd.h>

#include "core/error.h"
#include "core/fileio.h"
#include "core/rng.h"

namespace dseek {

namespace {

// Binds checkpoint tensors to a parameter slot, checking shape and dtype.
void bind(const WeightFiles& files, const ModelConfig& c, ParamRef& p) {
  if (!files.contains(p.name)) fail("{}: missing tensor '{}'", files.origin(), p.name);
  Tensor t = files.get(p.name);
  if (t.shape != p.shape)
    fail("{}: tensor '{}' has shape {}, but config.json implies {}", files.origin(), p.name, shape_str(t.shape),
         shape_str(p.shape));
  if (!dtype_is_float(t.dtype)) fail("{}: tensor '{}' has non-float dtype {}", files.origin(), p.name, dtype_name(t.dtype));
  if (p.role == ParamRole::Matrix) {
    if (t.dtype == DType::F64) t = Tensor(t).to(DType::F32);
    Linear& l = *p.linear;
    l.weight = t;
    const std::string sname = p.name + "_scale_inv";  // "...weight_scale_inv"
    if (t.dtype == DType::F8_E4M3) {
      if (!files.contains(sname)) fail("{}: FP8 tensor '{}' has no '{}'", files.origin(), p.name, sname);
      Tensor s = files.get(sname);
      const int64_t br = c.quantization.block_rows, bc = c.quantization.block_cols;
      Shape want{(p.shape[0] + br - 1) / br, (p.shape[1] + bc - 1) / bc};
      if (s.shape != want)
        fail("{}: tensor '{}' has shape {}, expected {} for {}x{} blocks", files.origin(), sname, shape_str(s.shape),
             shape_str(want), br, bc);
      if (!dtype_is_float(s.dtype) || s.dtype == DType::F8_E4M3)
        fail("{}: tensor '{}' has unsupported dtype {}", files.origin(), sname, dtype_name(s.dtype));
      l.scale_inv = s.dtype == DType::F32 ? s : s.to(DType::F32);
      l.block_rows = br;
      l.block_cols = bc;
    }
  } else {
    // Vectors, router and embedding: small or gathered by row; norms/router/bias as F32.
    if (p.role == ParamRole::Embedding) {
      if (t.dtype == DType::F8_E4M3) fail("{}: embedding '{}' in FP8 is not supported", files.origin(), p.name);
      *p.tensor = t;
    } else {
      *p.tensor = t.dtype == DType::F32 ? t : t.to(DType::F32);
    }
  }
}

// "model.layers.N.rest" -> N, or -1 for other names.
int64_t layer_index(const std::string& name) {
  static const std::string prefix = "model.layers.";
  if (name.compare(0, prefix.size(), prefix) != 0) return -1;
  int64_t n = 0;
  size_t i = prefix.size();
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9' && n < (int64_t(1) << 40); i++) n = n * 10 + (name[i] - '0');
  return i > prefix.size() && i < name.size() && name[i] == '.' ? n : -1;
}

// Before anything is allocated: the layers config.json describes must be the layers the checkpoint holds.
void check_layer_count(const ModelConfig& c, const std::string& dir, const WeightFiles& files) {
  int64_t held = 0;  // 1 + the highest layer index in the checkpoint
  for (const std::string& n : files.names()) held = std::max(held, layer_index(n) + 1);
  const int64_t L = c.num_hidden_layers, K = c.num_nextn_predict_layers;
  const std::string cfg = path_join(dir, "config.json");
  if (held < L)
    fail("{}: num_hidden_layers is {}, but {} holds layers 0-{} only", cfg, L, files.origin(), held - 1);
  if (held < L + K)
    fail("{}: num_nextn_predict_layers is {}, but {} has no tensors for the MTP layer model.layers.{} (set it to 0 for "
         "a checkpoint without MTP weights)", cfg, K, files.origin(), held);
  if (held > L + K)
    fail("{}: num_hidden_layers {} + num_nextn_predict_layers {} describe {} layers, but {} holds {} (model.layers.{} "
         "is unused)", cfg, L, K, L + K, files.origin(), held, held - 1);
}

// Every checkpoint tensor must be used: a leftover one means config.json does not describe these weights.
void check_all_used(const ModelConfig& c, const WeightFiles& files, const std::set<std::string>& used, bool mtp) {
  std::vector<std::string> unused;
  for (const std::string& n : files.names()) {
    if (used.count(n)) continue;
    const bool mtp_layer = layer_index(n) >= c.num_hidden_layers;
    if (!mtp && mtp_layer) continue;  // MTP layers, not loaded for inference
    if (n.ends_with("rotary_emb.inv_freq")) continue;  // recomputed from the config
    if (c.tie_word_embeddings && n == "lm_head.weight") continue;  // tied: the embedding is the head
    // DeepSeek-V3 checkpoints repeat the shared embedding and head inside each MTP layer
    if (mtp_layer && (n.ends_with(".embed_tokens.weight") || n.ends_with(".shared_head.head.weight")))
      continue;
    unused.push_back(n);
  }
  if (unused.empty()) return;
  fail("{}: {} tensor(s) that config.json does not describe, e.g. '{}' (check the architecture fields of config.json)",
       files.origin(), unused.size(), unused.front());
}

}  // namespace

Model Model::load(const std::string& path, const LoadOptions& opt) {
  const std::string dir = resolve_model_dir(path);
  Model m;
  m.source = dir;
  m.config = ModelConfig::load(dir);
  WeightFiles files = WeightFiles::open(dir);
  const ModelConfig& c = m.config;
  check_layer_count(c, dir, files);
  std::set<std::string> used;
  for_each_param(c, m.w, [&](ParamRef& p) {
    bind(files, c, p);
    used.insert(p.name);
    used.insert(p.name + "_scale_inv");
  }, ParamOptions{opt.mtp});
  check_all_used(c, files, used, opt.mtp);
  bind_shared_tensors(c, m.w);
  m.rope = RopeTable(c);
  return m;
}

Model Model::random(const ModelConfig& c, uint64_t seed, DType dtype, bool with_mtp) {
  {  // the weights must fit in this machine's memory before any is allocated
    ModelWeights shapes;
    double bytes = 0;
    for_each_param(c, shapes, [&](ParamRef& p) {
      double n = 1;
      for (int64_t d : p.shape) n *= double(d);
      bytes += n * (p.role == ParamRole::Matrix || p.role == ParamRole::Embedding ? double(dtype_size(dtype)) : 4.0);
    }, ParamOptions{with_mtp});
    const double ram = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE));
    if (ram > 0 && bytes > ram)
      fail("config.json describes {:.1f} GiB of {} weights; this machine has {:.1f} GiB of memory", bytes / 1073741824.0,
           dtype_name(dtype), ram / 1073741824.0);
  }
  Model m;
  m.config = c;
  const double std_ = c.initializer_range;
  uint64_t stream = 0;
  for_each_param(c, m.w, [&](ParamRef& p) {
    stream++;
    Tensor t = Tensor::empty(DType::F32, p.shape);
    float* d = t.f32();
    const int64_t n = t.numel();
    switch (p.role) {
      case ParamRole::Norm:
        std::fill(d, d + n, 1.0f);
        break;
      case ParamRole::RouterBias:
      case ParamRole::Bias:
        std::fill(d, d + n, 0.0f);
        break;
      default:
#pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) d[i] = float(normal_at(seed, stream, uint64_t(i)) * std_);
    }
    const bool keep_f32 = p.role != ParamRole::Matrix && p.role != ParamRole::Embedding;
    if (!keep_f32 && dtype != DType::F32) t = t.to(dtype);
    *p.tensor = t;
    if (p.linear) p.linear->weight = t;
  }, ParamOptions{with_mtp});
  bind_shared_tensors(c, m.w);
  m.rope = RopeTable(c);
  return m;
}

NamedTensors Model::hf_tensors() const {
  NamedTensors out;
  ModelWeights& w = const_cast<ModelWeights&>(this->w);
  const bool mtp = !w.mtp.empty();
  for_each_param(config, w, [&](ParamRef& p) {
    out.emplace_back(p.name, *p.tensor);
    if (p.linear && p.linear->weight.dtype == DType::F8_E4M3) out.emplace_back(p.name + "_scale_inv", p.linear->scale_inv);
  }, ParamOptions{mtp});
  if (mtp) {  // DeepSeek-V3 stores copies of the shared embedding and head with each MTP module
    for (int64_t k = 0; k < int64_t(w.mtp.size()); k++) {
      const std::string p = fmt::format("model.layers.{}", config.num_hidden_layers + k);
      out.emplace_back(p + ".embed_tokens.weight", w.embed);
      out.emplace_back(p + ".shared_head.head.weight", w.lm_head.weight);
    }
  }
  return out;
}

void Model::save(const std::string& dir, std::optional<DType> dtype) const {
  make_dirs(dir);
  NamedTensors tensors = hf_tensors();
  if (dtype) {
    for (auto& [name, t] : tensors) {
      const bool is_matrix_like = t.ndim() == 2 && name.find(".mlp.gate.weight") == std::string::npos;
      if (is_matrix_like && t.dtype != *dtype && t.dtype != DType::F8_E4M3 && name.find("scale_inv") == std::string::npos)
        t = t.dtype == DType::F32 ? t.to(*dtype) : t.to(DType::F32).to(*dtype);
    }
  }
  nlohmann::json cj = config.to_json();
  // transformers' torch_dtype: the dtype the weights are stored in (an FP8 checkpoint's unquantised tensors are
  // BF16, and DeepSeek-V3 says bfloat16 there too), read off the embedding
  const auto embed = std::find_if(tensors.begin(), tensors.end(), [](const auto& t) { return t.first == "model.embed_tokens.weight"; });
  const DType stored = dtype ? *dtype : embed != tensors.end() ? embed->second.dtype : DType::F32;
  cj["torch_dtype"] = stored == DType::BF16 ? "bfloat16" : stored == DType::F16 ? "float16" : "float32";
  save_safetensors_dir(dir, tensors, size_t(4) << 30, {{"format", "pt"}});
  write_file_atomic(path_join(dir, "config.json"), cj.dump(2) + "\n");
}

int64_t Model::parameter_count(bool active_only) const {
  int64_t total = 0;
  ModelWeights& ww = const_cast<ModelWeights&>(w);
  for_each_param(config, ww, [&](ParamRef& p) {
    int64_t n = shape_numel(p.shape);
    if (active_only && p.name.find(".mlp.experts.") != std::string::npos)
      n = n * config.num_experts_per_tok / std::max<int64_t>(config.n_routed_experts, 1);
    total += n;
  }, ParamOptions{false});
  return total;
}

size_t Model::weight_bytes() const {
  size_t total = 0;
  ModelWeights& ww = const_cast<ModelWeights&>(w);
  for_each_param(config, ww, [&](ParamRef& p) { total += p.tensor->nbytes(); }, ParamOptions{!w.mtp.empty()});
  return total;
}

}  // namespace dseek
