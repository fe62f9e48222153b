#include "model/config.h"

#include <cmath>

#include "core/error.h"
#include "core/fileio.h"

namespace dseek {

using json = nlohmann::json;

namespace {

// Typed field access with errors naming the file and the field.
struct Reader {
  const json& j;
  const std::string& origin;
  std::string prefix = "";  // "rope_scaling." for nested objects

  bool has(const char* k) const { return j.contains(k) && !j[k].is_null(); }
  std::string name(const char* k) const { return prefix + k; }

  int64_t integer(const char* k) const {
    if (!j.contains(k)) fail("{}: missing field '{}'", origin, name(k));
    return as_int(j[k], k);
  }
  int64_t integer(const char* k, int64_t def) const { return has(k) ? as_int(j[k], k) : def; }
  // Integers exactly: an integral float is accepted only where it converts without loss (|v| <= 2^53).
  int64_t as_int(const json& v, const char* k) const {
    if (v.is_number_integer()) {
      if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))
        fail("{}: field '{}' is out of range, got {}", origin, name(k), v.dump());
      return v.get<int64_t>();
    }
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) <= 9007199254740992.0) return int64_t(d);
      fail("{}: field '{}' must be an integer, got {}", origin, name(k), v.dump());
    }
    fail("{}: field '{}' must be an integer, got {}", origin, name(k), v.dump());
  }
  double number(const char* k, double def) const {
    if (!has(k)) return def;
    if (!j[k].is_number()) fail("{}: field '{}' must be a number, got {}", origin, name(k), j[k].dump());
    const double v = j[k].get<double>();
    if (!std::isfinite(v)) fail("{}: field '{}' must be finite, got {}", origin, name(k), j[k].dump());
    return v;
  }
  bool boolean(const char* k, bool def) const {
    if (!has(k)) return def;
    if (!j[k].is_boolean()) fail("{}: field '{}' must be true or false", origin, name(k));
    return j[k].get<bool>();
  }
  std::string string(const char* k, const std::string& def) const {
    if (!has(k)) return def;
    if (!j[k].is_string()) fail("{}: field '{}' must be a string", origin, name(k));
    return j[k].get<std::string>();
  }
};

double yarn_get_mscale(double scale, double mscale) {
  if (scale <= 1.0) return 1.0;
  return 0.1 * mscale * std::log(scale) + 1.0;
}

// Keys of the DeepSeek layout (MLA, DeepSeekMoE, MTP) that a dense GQA architecture has no place for.
constexpr const char* kDeepseekOnlyKeys[] = {
    "q_lora_rank",   "kv_lora_rank",         "qk_nope_head_dim",        "qk_rope_head_dim",         "v_head_dim",
    "n_routed_experts", "n_shared_experts",  "num_experts_per_tok",     "moe_intermediate_size",    "first_k_dense_replace",
    "moe_layer_freq", "topk_method",         "n_group",                 "topk_group",               "scoring_func",
    "norm_topk_prob", "routed_scaling_factor", "num_nextn_predict_layers", "aux_loss_alpha",       "seq_aux",
    "ep_size"};

Architecture parse_architecture(const Reader& r, const json& j, const std::string& origin) {
  std::string cls;
  if (r.has("architectures")) {
    if (!j["architectures"].is_array() || j["architectures"].empty() || !j["architectures"][0].is_string())
      fail("{}: field 'architectures' must be a non-empty list of strings", origin);
    cls = j["architectures"][0].get<std::string>();
  }
  const std::string type = r.string("model_type", "");
  for (Architecture a : {Architecture::DeepseekV2, Architecture::DeepseekV3, Architecture::Qwen2, Architecture::Llama})
    if (cls.empty() ? type == architecture_model_type(a) : cls == architecture_class(a)) return a;
  if (cls.empty())
    fail("{}: missing field 'architectures' (and model_type '{}' is not deepseek_v2, deepseek_v3, qwen2 or llama)",
         origin, type);
  fail("{}: field 'architectures': '{}' is not supported (DeepseekV2ForCausalLM, DeepseekV3ForCausalLM, "
       "Qwen2ForCausalLM, LlamaForCausalLM)",
       origin, cls);
}

void parse_deepseek(const Reader& r, const json& j, ModelConfig& c) {
  const std::string& origin = r.origin;
  const bool v3 = c.arch == Architecture::DeepseekV3;
  if (!j.contains("q_lora_rank")) fail("{}: missing field 'q_lora_rank' (null for a plain q_proj)", origin);
  c.q_lora_rank = r.integer("q_lora_rank", 0);
  c.kv_lora_rank = r.integer("kv_lora_rank");
  c.qk_nope_head_dim = r.integer("qk_nope_head_dim");
  c.qk_rope_head_dim = r.integer("qk_rope_head_dim");
  c.v_head_dim = r.integer("v_head_dim");
  c.n_routed_experts = r.integer("n_routed_experts", 0);
  c.first_k_dense_replace = r.integer("first_k_dense_replace", v3 ? 3 : 0);
  c.moe_layer_freq = r.integer("moe_layer_freq", 1);
  if (c.n_routed_experts > 0) {
    c.moe_intermediate_size = r.integer("moe_intermediate_size");
    c.num_experts_per_tok = r.integer("num_experts_per_tok");
    c.n_shared_experts = r.integer("n_shared_experts", 0);
    c.n_group = r.integer("n_group", 1);
    c.topk_group = r.integer("topk_group", 1);
  }
  std::string method = r.string("topk_method", v3 ? "noaux_tc" : "greedy");
  if (method == "greedy" || method == "gready") c.topk_method = TopkMethod::Greedy;
  else if (method == "group_limited_greedy") c.topk_method = TopkMethod::GroupLimitedGreedy;
  else if (method == "noaux_tc") c.topk_method = TopkMethod::NoauxTc;
  else fail("{}: field 'topk_method': unknown value '{}' (greedy, group_limited_greedy, noaux_tc)", origin, method);
  std::string scoring = r.string("scoring_func", v3 ? "sigmoid" : "softmax");
  if (scoring == "softmax") c.scoring_func = ScoringFunc::Softmax;
  else if (scoring == "sigmoid") c.scoring_func = ScoringFunc::Sigmoid;
  else fail("{}: field 'scoring_func': unknown value '{}' (softmax, sigmoid)", origin, scoring);
  c.norm_topk_prob = r.boolean("norm_topk_prob", v3);
  c.routed_scaling_factor = r.number("routed_scaling_factor", v3 ? 2.5 : 1.0);
  c.num_nextn_predict_layers = r.integer("num_nextn_predict_layers", 0);
  c.aux_loss_alpha = r.number("aux_loss_alpha", 0.0);
  c.intermediate_size = r.integer("intermediate_size", 0);
  if (r.boolean("attention_bias", false)) fail("{}: field 'attention_bias': true is not supported", origin);
  // GQA keys that MLA fixes: every head has its own keys and values, expanded from the latent.
  const int64_t kvh = r.integer("num_key_value_heads", c.num_attention_heads);
  if (kvh != c.num_attention_heads)
    fail("{}: field 'num_key_value_heads' ({}) does not apply to {}: MLA gives every head its keys (expected {})",
         origin, kvh, architecture_class(c.arch), c.num_attention_heads);
  if (r.has("head_dim") && r.integer("head_dim") != c.qk_rope_head_dim)
    fail("{}: field 'head_dim' ({}) does not apply to {}: MLA head sizes are qk_nope_head_dim, qk_rope_head_dim "
         "and v_head_dim",
         origin, r.integer("head_dim"), architecture_class(c.arch));
  if (r.has("rope_scaling")) {
    Reader rr{j["rope_scaling"], origin, "rope_scaling."};
    if (!rr.j.is_object()) fail("{}: field 'rope_scaling' must be an object or null", origin);
    std::string type = rr.string("type", rr.string("rope_type", ""));
    if (type != "yarn") fail("{}: field 'rope_scaling.type': '{}' is not supported (yarn)", origin, type);
    RopeScaling& s = c.rope_scaling;
    s.type = RopeScaling::Type::Yarn;
    if (!rr.has("factor")) fail("{}: missing field 'rope_scaling.factor'", origin);
    s.factor = rr.number("factor", 1.0);
    if (!rr.has("original_max_position_embeddings"))
      fail("{}: missing field 'rope_scaling.original_max_position_embeddings'", origin);
    s.original_max_position_embeddings = rr.integer("original_max_position_embeddings");
    s.beta_fast = rr.number("beta_fast", 32);
    s.beta_slow = rr.number("beta_slow", 1);
    s.mscale = rr.number("mscale", 1.0);
    s.mscale_all_dim = rr.number("mscale_all_dim", 0.0);
    if (s.factor <= 0) fail("{}: field 'rope_scaling.factor' must be positive", origin);
    if (s.original_max_position_embeddings <= 0)
      fail("{}: field 'rope_scaling.original_max_position_embeddings' must be positive", origin);
  }
}

// Llama's rope_scaling (transformers' ROPE_INIT_FUNCTIONS): linear, dynamic, yarn, llama3.
void parse_llama_rope_scaling(const Reader& r, const json& j, ModelConfig& c) {
  const std::string& origin = r.origin;
  if (!r.has("rope_scaling")) return;
  Reader rr{j["rope_scaling"], origin, "rope_scaling."};
  if (!rr.j.is_object()) fail("{}: field 'rope_scaling' must be an object or null", origin);
  const std::string type = rr.string("rope_type", rr.string("type", "default"));
  RopeScaling& s = c.rope_scaling;
  if (type == "default") return;
  auto require = [&](const char* k) {
    if (!rr.has(k)) fail("{}: missing field 'rope_scaling.{}' (rope type '{}')", origin, k, type);
  };
  if (type == "longrope") {
    // transformers' _compute_longrope_parameters: with a top-level original_max_position_embeddings O (Phi-3
    // layout) the factor is max_position_embeddings / O; otherwise O = max_position_embeddings and the context
    // is expanded by rope_scaling.factor. The long factors apply when the expanded context exceeds O.
    s.type = RopeScaling::Type::Longrope;
    double original, expanded;
    if (r.has("original_max_position_embeddings")) {
      s.top_level_original = true;
      original = double(r.integer("original_max_position_embeddings"));
      if (original <= 0) fail("{}: field 'original_max_position_embeddings' must be positive", origin);
      expanded = double(c.max_position_embeddings);
      s.factor = expanded / original;
    } else {
      require("factor");
      s.factor = rr.number("factor", 1.0);
      original = double(c.max_position_embeddings);
      expanded = original * s.factor;
    }
    s.original_max_position_embeddings = int64_t(original);
    s.longrope_long = expanded > original;
    const double af = rr.number("attention_factor", 0.0);
    s.attention_factor = af > 0 ? af : s.factor <= 1.0 ? 1.0 : std::sqrt(1.0 + std::log(s.factor) / std::log(original));
    auto factors = [&](const char* k, std::vector<double>& out) {
      require(k);
      const json& a = rr.j[k];
      if (!a.is_array() || int64_t(a.size()) * 2 != c.hidden_size / c.num_attention_heads)
        fail("{}: field 'rope_scaling.{}' must be a list of head_dim / 2 = {} numbers", origin, k,
             c.hidden_size / c.num_attention_heads / 2);
      for (const json& v : a) {
        if (!v.is_number() || !(v.get<double>() > 0)) fail("{}: field 'rope_scaling.{}' must hold positive numbers", origin, k);
        out.push_back(v.get<double>());
      }
    };
    factors("long_factor", s.long_factor);
    factors("short_factor", s.short_factor);
    return;
  }
  require("factor");
  s.factor = rr.number("factor", 1.0);
  if (type == "linear") {
    s.type = RopeScaling::Type::Linear;
  } else if (type == "dynamic") {
    s.type = RopeScaling::Type::Dynamic;
  } else if (type == "yarn") {
    s.type = RopeScaling::Type::Yarn;
    s.attention_factor = rr.number("attention_factor", 0.0);
    s.beta_fast = rr.number("beta_fast", 32);
    s.beta_slow = rr.number("beta_slow", 1);
  } else if (type == "llama3") {
    s.type = RopeScaling::Type::Llama3;
    require("low_freq_factor");
    require("high_freq_factor");
    require("original_max_position_embeddings");
    s.low_freq_factor = rr.number("low_freq_factor", 1);
    s.high_freq_factor = rr.number("high_freq_factor", 4);
    s.original_max_position_embeddings = rr.integer("original_max_position_embeddings");
    if (!(s.high_freq_factor > s.low_freq_factor) || s.low_freq_factor <= 0)
      fail("{}: field 'rope_scaling': need 0 < low_freq_factor < high_freq_factor, got {} and {}", origin,
           s.low_freq_factor, s.high_freq_factor);
    if (s.original_max_position_embeddings <= 0)
      fail("{}: field 'rope_scaling.original_max_position_embeddings' must be positive", origin);
  } else {
    fail("{}: field 'rope_scaling.rope_type': '{}' is not supported for {} (default, linear, dynamic, yarn, longrope, llama3)",
         origin, type, architecture_class(c.arch));
  }
  if (!(s.factor >= 1.0)) fail("{}: field 'rope_scaling.factor' must be >= 1, got {}", origin, s.factor);
}

void parse_dense(const Reader& r, const json& j, ModelConfig& c) {
  const std::string& origin = r.origin;
  const char* cls = architecture_class(c.arch);
  for (const char* k : kDeepseekOnlyKeys)
    if (r.has(k))
      fail("{}: field '{}' does not apply to {} (a dense grouped-query-attention model); remove it or use a "
           "DeepseekV2/V3 config",
           origin, k, cls);
  c.intermediate_size = r.integer("intermediate_size");
  c.num_key_value_heads = r.integer("num_key_value_heads", c.num_attention_heads);
  if (c.num_key_value_heads <= 0) fail("{}: field 'num_key_value_heads' must be positive", origin);
  if (c.num_attention_heads % c.num_key_value_heads)
    fail("{}: field 'num_key_value_heads' ({}) must divide num_attention_heads ({})", origin, c.num_key_value_heads,
         c.num_attention_heads);
  // transformers computes the head size as hidden_size / num_attention_heads for both architectures.
  if (c.hidden_size % c.num_attention_heads)
    fail("{}: field 'hidden_size' ({}) must be a multiple of num_attention_heads ({})", origin, c.hidden_size,
         c.num_attention_heads);
  c.head_dim = c.hidden_size / c.num_attention_heads;
  if (r.has("head_dim") && r.integer("head_dim") != c.head_dim)
    fail("{}: field 'head_dim' ({}) differs from hidden_size / num_attention_heads ({}), which {} uses", origin,
         r.integer("head_dim"), c.head_dim, cls);
  if (c.head_dim % 2) fail("{}: the head size hidden_size / num_attention_heads ({}) must be even for RoPE", origin, c.head_dim);
  if (c.arch == Architecture::Qwen2) {
    c.qkv_bias = true;  // Qwen2 always has q/k/v biases and no o_proj bias
    if (r.boolean("use_sliding_window", false))
      fail("{}: field 'use_sliding_window': sliding-window attention is not supported (set it to false)", origin);
    if (r.has("rope_scaling")) {
      Reader rr{j["rope_scaling"], origin, "rope_scaling."};
      const std::string type = rr.j.is_object() ? rr.string("rope_type", rr.string("type", "default")) : "";
      if (type != "default")
        fail("{}: field 'rope_scaling': '{}' is not supported for Qwen2ForCausalLM", origin, rr.j.dump());
    }
  } else {
    const bool attention_bias = r.boolean("attention_bias", false);
    c.qkv_bias = c.o_bias = attention_bias;
    c.mlp_bias = r.boolean("mlp_bias", false);
    parse_llama_rope_scaling(r, j, c);
  }
  const int64_t tp = r.integer("pretraining_tp", 1);
  if (tp < 1) fail("{}: field 'pretraining_tp' must be >= 1", origin);
}

}  // namespace

const char* architecture_class(Architecture a) {
  switch (a) {
    case Architecture::DeepseekV2: return "DeepseekV2ForCausalLM";
    case Architecture::DeepseekV3: return "DeepseekV3ForCausalLM";
    case Architecture::Qwen2: return "Qwen2ForCausalLM";
    case Architecture::Llama: return "LlamaForCausalLM";
  }
  return "";
}

const char* architecture_model_type(Architecture a) {
  switch (a) {
    case Architecture::DeepseekV2: return "deepseek_v2";
    case Architecture::DeepseekV3: return "deepseek_v3";
    case Architecture::Qwen2: return "qwen2";
    case Architecture::Llama: return "llama";
  }
  return "";
}

bool ModelConfig::yarn_active() const {
  return is_deepseek() && rope_scaling.type == RopeScaling::Type::Yarn &&
         max_position_embeddings > rope_scaling.original_max_position_embeddings;
}

double ModelConfig::softmax_scale() const {
  double s = 1.0 / std::sqrt(double(qk_head_dim()));
  if (yarn_active() && rope_scaling.mscale_all_dim != 0.0) {
    double m = yarn_get_mscale(rope_scaling.factor, rope_scaling.mscale_all_dim);
    s *= m * m;
  }
  return s;
}

double ModelConfig::rope_cos_sin_scale() const {
  if (is_deepseek()) {
    if (!yarn_active()) return 1.0;
    return yarn_get_mscale(rope_scaling.factor, rope_scaling.mscale) /
           yarn_get_mscale(rope_scaling.factor, rope_scaling.mscale_all_dim);
  }
  if (rope_scaling.type == RopeScaling::Type::Longrope) return rope_scaling.attention_factor;
  if (rope_scaling.type == RopeScaling::Type::Yarn)
    return rope_scaling.attention_factor > 0 ? rope_scaling.attention_factor
                                             : yarn_get_mscale(rope_scaling.factor, 1.0);
  return 1.0;
}

ModelConfig ModelConfig::from_json(const json& j, const std::string& origin) {
  if (!j.is_object()) fail("{}: config is not a JSON object", origin);
  Reader r{j, origin};
  ModelConfig c;
  c.raw = j;
  c.arch = parse_architecture(r, j, origin);

  c.vocab_size = r.integer("vocab_size");
  c.hidden_size = r.integer("hidden_size");
  c.num_hidden_layers = r.integer("num_hidden_layers");
  c.num_attention_heads = r.integer("num_attention_heads");
  c.max_position_embeddings = r.integer("max_position_embeddings");
  c.rope_theta = r.number("rope_theta", 10000.0);
  c.rms_norm_eps = r.number("rms_norm_eps", 1e-6);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  c.bos_token_id = r.integer("bos_token_id", 0);
  if (j.contains("eos_token_id") && j["eos_token_id"].is_array()) {
    c.eos_token_ids.clear();
    for (const json& v : j["eos_token_id"]) c.eos_token_ids.push_back(r.as_int(v, "eos_token_id"));
    if (c.eos_token_ids.empty()) fail("{}: field 'eos_token_id' is an empty list", origin);
  } else {
    c.eos_token_ids = {r.integer("eos_token_id", 1)};
  }
  c.initializer_range = r.number("initializer_range", 0.02);
  if (r.string("hidden_act", "silu") != "silu")
    fail("{}: field 'hidden_act': only 'silu' is supported, got '{}'", origin, r.string("hidden_act", ""));

  // Sizes are bounded so that products of two of them (weight shapes, cache rows) fit in int64.
  auto positive = [&](int64_t v, const char* name) {
    if (v <= 0) fail("{}: field '{}' must be positive, got {}", origin, name, v);
    if (v > INT32_MAX) fail("{}: field '{}' is too large, got {} (at most {})", origin, name, v, INT32_MAX);
  };
  positive(c.vocab_size, "vocab_size");
  positive(c.hidden_size, "hidden_size");
  positive(c.num_hidden_layers, "num_hidden_layers");
  positive(c.num_attention_heads, "num_attention_heads");
  positive(c.max_position_embeddings, "max_position_embeddings");
  // Far beyond any published model, and small enough that walking the layers allocates nothing large.
  auto at_most = [&](int64_t v, int64_t limit, const char* name) {
    if (v > limit) fail("{}: field '{}' is {}, beyond the largest dseek accepts ({})", origin, name, v, limit);
  };
  at_most(c.vocab_size, int64_t(1) << 24, "vocab_size");
  at_most(c.hidden_size, int64_t(1) << 18, "hidden_size");
  at_most(c.num_hidden_layers, 4096, "num_hidden_layers");
  at_most(c.num_attention_heads, 4096, "num_attention_heads");
  at_most(c.max_position_embeddings, int64_t(1) << 30, "max_position_embeddings");

  if (c.is_deepseek()) parse_deepseek(r, j, c);
  else parse_dense(r, j, c);

  if (r.has("quantization_config")) {
    const json& q = j["quantization_config"];
    if (!q.is_object()) fail("{}: field 'quantization_config' must be an object", origin);
    Reader qr{q, origin, "quantization_config."};
    std::string m = qr.string("quant_method", "");
    if (m != "fp8") fail("{}: field 'quantization_config.quant_method': '{}' is not supported (fp8)", origin, m);
    std::string fmt_ = qr.string("fmt", "e4m3");
    if (fmt_ != "e4m3") fail("{}: field 'quantization_config.fmt': '{}' is not supported (e4m3)", origin, fmt_);
    c.quantization.fp8 = true;
    if (qr.has("weight_block_size")) {
      const json& b = q["weight_block_size"];
      if (!b.is_array() || b.size() != 2 || !b[0].is_number_integer() || !b[1].is_number_integer() ||
          b[0].get<int64_t>() <= 0 || b[1].get<int64_t>() <= 0)
        fail("{}: field 'quantization_config.weight_block_size' must be two positive integers", origin);
      c.quantization.block_rows = b[0].get<int64_t>();
      c.quantization.block_cols = b[1].get<int64_t>();
    }
  }

  // consistency
  if (!(c.rms_norm_eps > 0)) fail("{}: field 'rms_norm_eps' must be positive", origin);
  if (!(c.rope_theta > 0)) fail("{}: field 'rope_theta' must be positive", origin);
  if (c.bos_token_id < 0 || c.bos_token_id >= c.vocab_size)
    fail("{}: field 'bos_token_id' ({}) is outside the vocabulary [0, {})", origin, c.bos_token_id, c.vocab_size);
  for (int64_t e : c.eos_token_ids)
    if (e < 0 || e >= c.vocab_size)
      fail("{}: field 'eos_token_id' ({}) is outside the vocabulary [0, {})", origin, e, c.vocab_size);
  if (!c.is_deepseek()) return c;
  positive(c.kv_lora_rank, "kv_lora_rank");
  positive(c.qk_nope_head_dim, "qk_nope_head_dim");
  positive(c.qk_rope_head_dim, "qk_rope_head_dim");
  positive(c.v_head_dim, "v_head_dim");
  positive(c.moe_layer_freq, "moe_layer_freq");
  if (c.q_lora_rank < 0) fail("{}: field 'q_lora_rank' must be positive or null", origin);
  if (c.q_lora_rank > 0) positive(c.q_lora_rank, "q_lora_rank");
  if (c.qk_rope_head_dim % 2) fail("{}: field 'qk_rope_head_dim' must be even, got {}", origin, c.qk_rope_head_dim);
  if (c.first_k_dense_replace < 0) fail("{}: field 'first_k_dense_replace' must be >= 0", origin);
  if (c.num_nextn_predict_layers < 0) fail("{}: field 'num_nextn_predict_layers' must be >= 0", origin);
  if (c.num_nextn_predict_layers > 64) fail("{}: field 'num_nextn_predict_layers' is {}, beyond 64", origin, c.num_nextn_predict_layers);
  if (c.n_routed_experts * c.num_hidden_layers > (int64_t(1) << 17))
    fail("{}: n_routed_experts {} x num_hidden_layers {} is beyond the {} experts dseek accepts", origin,
         c.n_routed_experts, c.num_hidden_layers, int64_t(1) << 17);
  // Layer 0 is dense unless MoE starts there; then layer 1 is dense when moe_layer_freq skips it.
  const bool any_dense = !c.is_moe_layer(0) || (c.num_hidden_layers > 1 && !c.is_moe_layer(1));
  if (any_dense) positive(c.intermediate_size, "intermediate_size");
  if (c.n_routed_experts < 0) fail("{}: field 'n_routed_experts' must be >= 0", origin);
  if (c.n_routed_experts > 0) {
    positive(c.moe_intermediate_size, "moe_intermediate_size");
    positive(c.num_experts_per_tok, "num_experts_per_tok");
    positive(c.n_group, "n_group");
    positive(c.topk_group, "topk_group");
    if (c.n_shared_experts < 0) fail("{}: field 'n_shared_experts' must be >= 0", origin);
    if (c.num_experts_per_tok > c.n_routed_experts)
      fail("{}: field 'num_experts_per_tok' ({}) exceeds n_routed_experts ({})", origin, c.num_experts_per_tok,
           c.n_routed_experts);
    if (c.topk_method != TopkMethod::Greedy) {
      if (c.n_routed_experts % c.n_group)
        fail("{}: field 'n_group' ({}) must divide n_routed_experts ({})", origin, c.n_group, c.n_routed_experts);
      if (c.topk_group > c.n_group)
        fail("{}: field 'topk_group' ({}) exceeds n_group ({})", origin, c.topk_group, c.n_group);
      int64_t per_group = c.n_routed_experts / c.n_group;
      if (c.num_experts_per_tok > c.topk_group * per_group)
        fail("{}: field 'num_experts_per_tok' ({}) exceeds topk_group x experts per group ({})", origin,
             c.num_experts_per_tok, c.topk_group * per_group);
      if (c.topk_method == TopkMethod::NoauxTc && per_group < 2 && c.n_group > 1)
        fail("{}: noaux_tc group scores need at least 2 experts per group (n_routed_experts / n_group = {})", origin,
             per_group);
    }
  }
  return c;
}

ModelConfig ModelConfig::load(const std::string& path) {
  std::string file = is_directory(path) ? path_join(path, "config.json") : path;
  if (!file_exists(file)) fail("{}: config file not found", file);
  json j = json::parse(read_file(file), nullptr, false);
  if (j.is_discarded()) fail("{}: not valid JSON", file);
  return from_json(j, file);
}

namespace {

json eos_json(const ModelConfig& c) {
  return c.eos_token_ids.size() == 1 ? json(c.eos_token_ids[0]) : json(c.eos_token_ids);
}

json deepseek_json(const ModelConfig& c, json j) {
  j["num_key_value_heads"] = c.num_attention_heads;
  j["q_lora_rank"] = c.q_lora_rank > 0 ? json(c.q_lora_rank) : json(nullptr);
  j["kv_lora_rank"] = c.kv_lora_rank;
  j["qk_nope_head_dim"] = c.qk_nope_head_dim;
  j["qk_rope_head_dim"] = c.qk_rope_head_dim;
  j["v_head_dim"] = c.v_head_dim;
  j["first_k_dense_replace"] = c.first_k_dense_replace;
  j["moe_layer_freq"] = c.moe_layer_freq;
  j["n_routed_experts"] = c.n_routed_experts > 0 ? json(c.n_routed_experts) : json(nullptr);
  if (c.n_routed_experts > 0) {
    j["moe_intermediate_size"] = c.moe_intermediate_size;
    j["num_experts_per_tok"] = c.num_experts_per_tok;
    j["n_shared_experts"] = c.n_shared_experts;
    j["n_group"] = c.n_group;
    j["topk_group"] = c.topk_group;
  }
  j["topk_method"] = c.topk_method == TopkMethod::Greedy               ? "greedy"
                     : c.topk_method == TopkMethod::GroupLimitedGreedy ? "group_limited_greedy"
                                                                       : "noaux_tc";
  j["scoring_func"] = c.scoring_func == ScoringFunc::Softmax ? "softmax" : "sigmoid";
  j["norm_topk_prob"] = c.norm_topk_prob;
  j["routed_scaling_factor"] = c.routed_scaling_factor;
  j["num_nextn_predict_layers"] = c.num_nextn_predict_layers;
  j["attention_bias"] = false;
  const RopeScaling& s = c.rope_scaling;
  if (s.type == RopeScaling::Type::Yarn) {
    j["rope_scaling"] = {{"type", "yarn"},
                         {"factor", s.factor},
                         {"original_max_position_embeddings", s.original_max_position_embeddings},
                         {"beta_fast", s.beta_fast},
                         {"beta_slow", s.beta_slow},
                         {"mscale", s.mscale},
                         {"mscale_all_dim", s.mscale_all_dim}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  return j;
}

json dense_json(const ModelConfig& c, json j) {
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["attention_dropout"] = 0.0;
  if (c.arch == Architecture::Qwen2) {
    j["use_sliding_window"] = false;
    if (!j.contains("sliding_window")) j["sliding_window"] = nullptr;
    if (!j.contains("max_window_layers")) j["max_window_layers"] = c.num_hidden_layers;
    if (!j.contains("rope_scaling")) j["rope_scaling"] = nullptr;
    return j;
  }
  j["attention_bias"] = c.o_bias;
  j["mlp_bias"] = c.mlp_bias;
  if (!j.contains("pretraining_tp")) j["pretraining_tp"] = 1;
  const RopeScaling& s = c.rope_scaling;
  switch (s.type) {
    case RopeScaling::Type::None: j["rope_scaling"] = nullptr; break;
    case RopeScaling::Type::Linear: j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", s.factor}}; break;
    case RopeScaling::Type::Dynamic: j["rope_scaling"] = {{"rope_type", "dynamic"}, {"factor", s.factor}}; break;
    case RopeScaling::Type::Yarn:
      j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", s.factor}, {"beta_fast", s.beta_fast}, {"beta_slow", s.beta_slow}};
      if (s.attention_factor > 0) j["rope_scaling"]["attention_factor"] = s.attention_factor;
      break;
    case RopeScaling::Type::Longrope:
      j["rope_scaling"] = {{"rope_type", "longrope"}, {"long_factor", s.long_factor}, {"short_factor", s.short_factor}};
      if (!s.top_level_original) j["rope_scaling"]["factor"] = s.factor;
      if (c.raw.contains("rope_scaling") && c.raw["rope_scaling"].is_object() &&
          c.raw["rope_scaling"].contains("attention_factor"))
        j["rope_scaling"]["attention_factor"] = s.attention_factor;
      break;
    case RopeScaling::Type::Llama3:
      j["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", s.factor},
                           {"low_freq_factor", s.low_freq_factor},
                           {"high_freq_factor", s.high_freq_factor},
                           {"original_max_position_embeddings", s.original_max_position_embeddings}};
      break;
  }
  return j;
}

}  // namespace

json ModelConfig::to_json() const {
  json j = raw.is_object() ? raw : json::object();
  j["architectures"] = {architecture_class(arch)};
  j["model_type"] = architecture_model_type(arch);
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["max_position_embeddings"] = max_position_embeddings;
  j["rope_theta"] = rope_theta;
  j["rms_norm_eps"] = rms_norm_eps;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["bos_token_id"] = bos_token_id;
  j["eos_token_id"] = eos_json(*this);
  j["hidden_act"] = "silu";
  j["initializer_range"] = initializer_range;
  j = is_deepseek() ? deepseek_json(*this, j) : dense_json(*this, j);
  if (quantization.fp8) {
    j["quantization_config"] = {{"quant_method", "fp8"},
                                {"fmt", "e4m3"},
                                {"activation_scheme", "dynamic"},
                                {"weight_block_size", {quantization.block_rows, quantization.block_cols}}};
  } else {
    j.erase("quantization_config");
  }
  return j;
}

}  // namespace dseek
