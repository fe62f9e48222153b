// Model description read from a Hugging Face config.json (DeepseekV2ForCausalLM / DeepseekV3ForCausalLM).
// The same struct describes dense students (no routed experts), MTP depth and attention sparsity.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dseek {

enum class TopkMethod { Greedy, GroupLimitedGreedy, NoauxTc };
enum class ScoringFunc { Softmax, Sigmoid };

struct RopeScaling {
  bool yarn = false;
  double factor = 1.0;
  int64_t original_max_position_embeddings = 0;
  double beta_fast = 32, beta_slow = 1;
  double mscale = 1.0, mscale_all_dim = 0.0;
};

struct QuantizationConfig {
  bool fp8 = false;                                  // quant_method "fp8"
  int64_t block_rows = 128, block_cols = 128;        // weight_block_size
};

struct ModelConfig {
  std::string architecture = "DeepseekV3ForCausalLM";
  int version = 3;  // 2 or 3: selects the routing-weight semantics of that architecture
  int64_t vocab_size = 0, hidden_size = 0, intermediate_size = 0, moe_intermediate_size = 0;
  int64_t num_hidden_layers = 0, first_k_dense_replace = 0, moe_layer_freq = 1;
  int64_t num_attention_heads = 0;
  int64_t q_lora_rank = 0;  // 0: plain q_proj
  int64_t kv_lora_rank = 0, qk_nope_head_dim = 0, qk_rope_head_dim = 0, v_head_dim = 0;
  int64_t n_routed_experts = 0, n_shared_experts = 0, num_experts_per_tok = 0;
  int64_t n_group = 1, topk_group = 1;
  TopkMethod topk_method = TopkMethod::Greedy;
  ScoringFunc scoring_func = ScoringFunc::Softmax;
  bool norm_topk_prob = false;
  double routed_scaling_factor = 1.0;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  double rms_norm_eps = 1e-6;
  int64_t max_position_embeddings = 0;
  int64_t num_nextn_predict_layers = 0;
  bool tie_word_embeddings = false;
  QuantizationConfig quantization;
  int64_t bos_token_id = 0, eos_token_id = 1;
  // training-side keys (Hugging Face spellings where they exist)
  double aux_loss_alpha = 0.0;  // sequence-wise balance loss weight
  double initializer_range = 0.02;
  nlohmann::json raw;  // the file as read, for writing back unknown keys

  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  bool is_moe_layer(int64_t layer) const {
    return n_routed_experts > 0 && layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
  }
  bool uses_score_bias() const { return topk_method == TopkMethod::NoauxTc; }
  // Softmax scale 1/sqrt(d_qk), times mscale^2 under YaRN.
  double softmax_scale() const;
  bool yarn_active() const;
  double rope_cos_sin_scale() const;  // mscale(factor, mscale) / mscale(factor, mscale_all_dim)
  int64_t kv_cache_dim() const { return kv_lora_rank + qk_rope_head_dim; }

  static ModelConfig from_json(const nlohmann::json& j, const std::string& origin);
  static ModelConfig load(const std::string& path);  // a config.json or a folder holding one
  nlohmann::json to_json() const;
};

}  // namespace dseek
