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

  bool has(const char* k) const { return j.contains(k) && !j[k].is_null(); }

  int64_t integer(const char* k) const {
    if (!j.contains(k)) fail("{}: missing field '{}'", origin, k);
    return as_int(j[k], k);
  }
  int64_t integer(const char* k, int64_t def) const { return has(k) ? as_int(j[k], k) : def; }
  int64_t as_int(const json& v, const char* k) const {
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()) return int64_t(v.get<double>());
    fail("{}: field '{}' must be an integer", origin, k);
  }
  double number(const char* k, double def) const {
    if (!has(k)) return def;
    if (!j[k].is_number()) fail("{}: field '{}' must be a number", origin, k);
    return j[k].get<double>();
  }
  bool boolean(const char* k, bool def) const {
    if (!has(k)) return def;
    if (!j[k].is_boolean()) fail("{}: field '{}' must be true or false", origin, k);
    return j[k].get<bool>();
  }
  std::string string(const char* k, const std::string& def) const {
    if (!has(k)) return def;
    if (!j[k].is_string()) fail("{}: field '{}' must be a string", origin, k);
    return j[k].get<std::string>();
  }
};

double yarn_get_mscale(double scale, double mscale) {
  if (scale <= 1.0) return 1.0;
  return 0.1 * mscale * std::log(scale) + 1.0;
}

}  // namespace

bool ModelConfig::yarn_active() const {
  return rope_scaling.yarn && max_position_embeddings > rope_scaling.original_max_position_embeddings;
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
  if (!yarn_active()) return 1.0;
  return yarn_get_mscale(rope_scaling.factor, rope_scaling.mscale) /
         yarn_get_mscale(rope_scaling.factor, rope_scaling.mscale_all_dim);
}

ModelConfig ModelConfig::from_json(const json& j, const std::string& origin) {
  if (!j.is_object()) fail("{}: config is not a JSON object", origin);
  Reader r{j, origin};
  ModelConfig c;
  c.raw = j;

  std::string model_type = r.string("model_type", "");
  if (r.has("architectures")) {
    if (!j["architectures"].is_array() || j["architectures"].empty() || !j["architectures"][0].is_string())
      fail("{}: field 'architectures' must be a non-empty list of strings", origin);
    c.architecture = j["architectures"][0].get<std::string>();
  } else if (model_type == "deepseek_v2") {
    c.architecture = "DeepseekV2ForCausalLM";
  } else if (model_type == "deepseek_v3") {
    c.architecture = "DeepseekV3ForCausalLM";
  } else {
    fail("{}: missing field 'architectures' (and no model_type deepseek_v2/deepseek_v3)", origin);
  }
  if (c.architecture == "DeepseekV2ForCausalLM") c.version = 2;
  else if (c.architecture == "DeepseekV3ForCausalLM") c.version = 3;
  else fail("{}: field 'architectures': '{}' is not supported (DeepseekV2ForCausalLM, DeepseekV3ForCausalLM)", origin,
            c.architecture);
  const bool v3 = c.version == 3;

  c.vocab_size = r.integer("vocab_size");
  c.hidden_size = r.integer("hidden_size");
  c.num_hidden_layers = r.integer("num_hidden_layers");
  c.num_attention_heads = r.integer("num_attention_heads");
  if (!j.contains("q_lora_rank")) fail("{}: missing field 'q_lora_rank' (null for a plain q_proj)", origin);
  c.q_lora_rank = r.integer("q_lora_rank", 0);
  c.kv_lora_rank = r.integer("kv_lora_rank");
  c.qk_nope_head_dim = r.integer("qk_nope_head_dim");
  c.qk_rope_head_dim = r.integer("qk_rope_head_dim");
  c.v_head_dim = r.integer("v_head_dim");
  c.max_position_embeddings = r.integer("max_position_embeddings");
  c.n_routed_experts = r.integer("n_routed_experts", 0);
  c.first_k_dense_replace = r.integer("first_k_dense_replace", v3 ? 3 : 0);
  c.moe_layer_freq = r.integer("moe_layer_freq", 1);
  c.intermediate_size = r.integer("intermediate_size", 0);
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
  c.rope_theta = r.number("rope_theta", 10000.0);
  c.rms_norm_eps = r.number("rms_norm_eps", 1e-6);
  c.num_nextn_predict_layers = r.integer("num_nextn_predict_layers", 0);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  c.bos_token_id = r.integer("bos_token_id", 0);
  c.eos_token_id = j.contains("eos_token_id") && j["eos_token_id"].is_array() && !j["eos_token_id"].empty()
                       ? r.as_int(j["eos_token_id"][0], "eos_token_id")
                       : r.integer("eos_token_id", 1);
  c.aux_loss_alpha = r.number("aux_loss_alpha", 0.0);
  c.initializer_range = r.number("initializer_range", 0.02);

  if (r.string("hidden_act", "silu") != "silu")
    fail("{}: field 'hidden_act': only 'silu' is supported, got '{}'", origin, r.string("hidden_act", ""));
  if (r.boolean("attention_bias", false)) fail("{}: field 'attention_bias': true is not supported", origin);

  if (r.has("rope_scaling")) {
    const json& rs = j["rope_scaling"];
    if (!rs.is_object()) fail("{}: field 'rope_scaling' must be an object or null", origin);
    Reader rr{rs, origin};
    std::string type = rr.string("type", rr.string("rope_type", ""));
    if (type != "yarn") fail("{}: field 'rope_scaling.type': '{}' is not supported (yarn)", origin, type);
    c.rope_scaling.yarn = true;
    if (!rr.has("factor")) fail("{}: missing field 'rope_scaling.factor'", origin);
    c.rope_scaling.factor = rr.number("factor", 1.0);
    if (!rr.has("original_max_position_embeddings"))
      fail("{}: missing field 'rope_scaling.original_max_position_embeddings'", origin);
    c.rope_scaling.original_max_position_embeddings = rr.integer("original_max_position_embeddings");
    c.rope_scaling.beta_fast = rr.number("beta_fast", 32);
    c.rope_scaling.beta_slow = rr.number("beta_slow", 1);
    c.rope_scaling.mscale = rr.number("mscale", 1.0);
    c.rope_scaling.mscale_all_dim = rr.number("mscale_all_dim", 0.0);
    if (c.rope_scaling.factor <= 0) fail("{}: field 'rope_scaling.factor' must be positive", origin);
    if (c.rope_scaling.original_max_position_embeddings <= 0)
      fail("{}: field 'rope_scaling.original_max_position_embeddings' must be positive", origin);
  }

  if (r.has("quantization_config")) {
    const json& q = j["quantization_config"];
    if (!q.is_object()) fail("{}: field 'quantization_config' must be an object", origin);
    Reader qr{q, origin};
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
  auto positive = [&](int64_t v, const char* name) {
    if (v <= 0) fail("{}: field '{}' must be positive, got {}", origin, name, v);
  };
  positive(c.vocab_size, "vocab_size");
  positive(c.hidden_size, "hidden_size");
  positive(c.num_hidden_layers, "num_hidden_layers");
  positive(c.num_attention_heads, "num_attention_heads");
  positive(c.kv_lora_rank, "kv_lora_rank");
  positive(c.qk_nope_head_dim, "qk_nope_head_dim");
  positive(c.qk_rope_head_dim, "qk_rope_head_dim");
  positive(c.v_head_dim, "v_head_dim");
  positive(c.max_position_embeddings, "max_position_embeddings");
  positive(c.moe_layer_freq, "moe_layer_freq");
  if (c.q_lora_rank < 0) fail("{}: field 'q_lora_rank' must be positive or null", origin);
  if (c.qk_rope_head_dim % 2) fail("{}: field 'qk_rope_head_dim' must be even, got {}", origin, c.qk_rope_head_dim);
  if (c.first_k_dense_replace < 0) fail("{}: field 'first_k_dense_replace' must be >= 0", origin);
  if (c.num_nextn_predict_layers < 0) fail("{}: field 'num_nextn_predict_layers' must be >= 0", origin);
  if (!(c.rms_norm_eps > 0)) fail("{}: field 'rms_norm_eps' must be positive", origin);
  if (!(c.rope_theta > 0)) fail("{}: field 'rope_theta' must be positive", origin);
  bool any_dense = false;
  for (int64_t l = 0; l < c.num_hidden_layers; l++) any_dense |= !c.is_moe_layer(l);
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

json ModelConfig::to_json() const {
  json j = raw.is_object() ? raw : json::object();
  j["architectures"] = {architecture};
  j["model_type"] = version == 2 ? "deepseek_v2" : "deepseek_v3";
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_attention_heads;
  j["q_lora_rank"] = q_lora_rank > 0 ? json(q_lora_rank) : json(nullptr);
  j["kv_lora_rank"] = kv_lora_rank;
  j["qk_nope_head_dim"] = qk_nope_head_dim;
  j["qk_rope_head_dim"] = qk_rope_head_dim;
  j["v_head_dim"] = v_head_dim;
  j["max_position_embeddings"] = max_position_embeddings;
  j["first_k_dense_replace"] = first_k_dense_replace;
  j["moe_layer_freq"] = moe_layer_freq;
  j["n_routed_experts"] = n_routed_experts > 0 ? json(n_routed_experts) : json(nullptr);
  if (n_routed_experts > 0) {
    j["moe_intermediate_size"] = moe_intermediate_size;
    j["num_experts_per_tok"] = num_experts_per_tok;
    j["n_shared_experts"] = n_shared_experts;
    j["n_group"] = n_group;
    j["topk_group"] = topk_group;
  }
  j["topk_method"] = topk_method == TopkMethod::Greedy ? "greedy"
                     : topk_method == TopkMethod::GroupLimitedGreedy ? "group_limited_greedy"
                                                                      : "noaux_tc";
  j["scoring_func"] = scoring_func == ScoringFunc::Softmax ? "softmax" : "sigmoid";
  j["norm_topk_prob"] = norm_topk_prob;
  j["routed_scaling_factor"] = routed_scaling_factor;
  j["rope_theta"] = rope_theta;
  j["rms_norm_eps"] = rms_norm_eps;
  j["num_nextn_predict_layers"] = num_nextn_predict_layers;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["bos_token_id"] = bos_token_id;
  j["eos_token_id"] = eos_token_id;
  j["hidden_act"] = "silu";
  j["attention_bias"] = false;
  if (rope_scaling.yarn) {
    j["rope_scaling"] = {{"type", "yarn"},
                         {"factor", rope_scaling.factor},
                         {"original_max_position_embeddings", rope_scaling.original_max_position_embeddings},
                         {"beta_fast", rope_scaling.beta_fast},
                         {"beta_slow", rope_scaling.beta_slow},
                         {"mscale", rope_scaling.mscale},
                         {"mscale_all_dim", rope_scaling.mscale_all_dim}};
  } else {
    j["rope_scaling"] = nullptr;
  }
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
