// Model description read from a Hugging Face config.json. The architecture is data: it names the attention
// (multi-head latent attention or grouped-query attention), the feed-forward (dense SwiGLU or DeepSeekMoE per
// layer), the RoPE layout and scaling, biases, the head and the MTP depth, and the model is assembled from it.
//
//   DeepseekV2ForCausalLM / DeepseekV3ForCausalLM  MLA, DeepSeekMoE (or dense students), interleaved RoPE + YaRN, MTP
//   Qwen2ForCausalLM                               GQA with q/k/v biases, dense SwiGLU, rotate-half RoPE
//   LlamaForCausalLM                               GQA (optional biases), dense SwiGLU, rotate-half RoPE with
//                                                  linear / dynamic / yarn / llama3 scaling
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dseek {

enum class Architecture { DeepseekV2, DeepseekV3, Qwen2, Llama };
enum class AttentionKind { MLA, GQA };
enum class RopeLayout { Interleaved, Half };  // pairs (x[2i], x[2i+1]) or (x[i], x[i + d/2])
enum class TopkMethod { Greedy, GroupLimitedGreedy, NoauxTc };
enum class ScoringFunc { Softmax, Sigmoid };

// Hugging Face class name and model_type of an architecture ("Qwen2ForCausalLM", "qwen2").
const char* architecture_class(Architecture a);
const char* architecture_model_type(Architecture a);

struct RopeScaling {
  enum class Type { None, Yarn, Linear, Dynamic, Llama3, Longrope };
  Type type = Type::None;
  double factor = 1.0;
  int64_t original_max_position_embeddings = 0;
  double beta_fast = 32, beta_slow = 1;
  double mscale = 1.0, mscale_all_dim = 0.0;     // DeepSeek YaRN
  double attention_factor = 0.0;                 // Llama YaRN (0: 0.1 ln(factor) + 1)
  double low_freq_factor = 1, high_freq_factor = 4;  // llama3
  std::vector<double> long_factor, short_factor;     // longrope: per-frequency divisors
  bool longrope_long = false;                        // longrope: the long factors apply (fixed by the config)
  bool top_level_original = false;                   // longrope: original length from the top-level key (Phi-3)
};

struct QuantizationConfig {
  bool fp8 = false;                                  // quant_method "fp8"
  int64_t block_rows = 128, block_cols = 128;        // weight_block_size
};

struct ModelConfig {
  Architecture arch = Architecture::DeepseekV3;
  int64_t vocab_size = 0, hidden_size = 0, intermediate_size = 0, moe_intermediate_size = 0;
  int64_t num_hidden_layers = 0, first_k_dense_replace = 0, moe_layer_freq = 1;
  int64_t num_attention_heads = 0;
  // MLA
  int64_t q_lora_rank = 0;  // 0: plain q_proj
  int64_t kv_lora_rank = 0, qk_nope_head_dim = 0, qk_rope_head_dim = 0, v_head_dim = 0;
  // GQA
  int64_t num_key_value_heads = 0, head_dim = 0;
  bool qkv_bias = false, o_bias = false, mlp_bias = false;
  // DeepSeekMoE
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
  int64_t bos_token_id = 0;
  std::vector<int64_t> eos_token_ids{1};  // generation stops at any of them; the first is the EOS
  // training-side keys (Hugging Face spellings where they exist)
  double aux_loss_alpha = 0.0;  // sequence-wise balance loss weight
  double initializer_range = 0.02;
  nlohmann::json raw;  // the file as read, for writing back unknown keys

  bool is_deepseek() const { return arch == Architecture::DeepseekV2 || arch == Architecture::DeepseekV3; }
  AttentionKind attention() const { return is_deepseek() ? AttentionKind::MLA : AttentionKind::GQA; }
  RopeLayout rope_layout() const { return is_deepseek() ? RopeLayout::Interleaved : RopeLayout::Half; }
  int64_t eos_token_id() const { return eos_token_ids.empty() ? -1 : eos_token_ids.front(); }
  // Per query head: width of q.k and of v; the rotated part of q and k.
  int64_t qk_head_dim() const { return is_deepseek() ? qk_nope_head_dim + qk_rope_head_dim : head_dim; }
  int64_t value_head_dim() const { return is_deepseek() ? v_head_dim : head_dim; }
  int64_t rope_dim() const { return is_deepseek() ? qk_rope_head_dim : head_dim; }
  // Heads that keys and values have: MLA expands one latent to every head; GQA shares each among a group.
  int64_t kv_heads() const { return is_deepseek() ? num_attention_heads : num_key_value_heads; }
  bool is_moe_layer(int64_t layer) const {
    return n_routed_experts > 0 && layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
  }
  bool uses_score_bias() const { return topk_method == TopkMethod::NoauxTc; }
  // Softmax scale 1/sqrt(d_qk), times mscale^2 under DeepSeek's YaRN.
  double softmax_scale() const;
  bool yarn_active() const;  // DeepSeek YaRN: only beyond the original context
  double rope_cos_sin_scale() const;  // factor on cos/sin (YaRN's attention scaling)
  // Floats one token occupies in the KV cache of one layer: the latent and the shared RoPE key (MLA), or the
  // keys and values of every KV head (GQA).
  int64_t kv_cache_dim() const {
    return attention() == AttentionKind::MLA ? kv_lora_rank + qk_rope_head_dim : 2 * num_key_value_heads * head_dim;
  }

  static ModelConfig from_json(const nlohmann::json& j, const std::string& origin);
  static ModelConfig load(const std::string& path);  // a config.json or a folder holding one
  // Hugging Face config.json of the architecture (unknown keys of the file read are kept).
  nlohmann::json to_json() const;
};

}  // namespace dseek
