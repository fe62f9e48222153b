// Model parameters with their Hugging Face names. One walker (for_each_param) enumerates every
// parameter of a config, so init, load, save, gradients and the optimizer all see the same list.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/matmul.h"
#include "model/config.h"

namespace dseek {

struct MLAWeights {  // multi-head latent attention (DeepSeek-V2/V3)
  Linear q_proj;          // q_lora_rank == 0
  Linear q_a_proj;        // [q_lora_rank, hidden]
  Tensor q_a_layernorm;   // [q_lora_rank]
  Linear q_b_proj;        // [heads * qk_head_dim, q_lora_rank]
  Linear kv_a_proj;       // kv_a_proj_with_mqa: [kv_lora_rank + rope_dim, hidden]
  Tensor kv_a_layernorm;  // [kv_lora_rank]
  Linear kv_b_proj;       // [heads * (nope + v), kv_lora_rank]
  Linear o_proj;          // [hidden, heads * v]
};

struct GQAWeights {  // grouped-query attention (Qwen2, Llama); biases per config
  Linear q_proj;  // [heads * head_dim, hidden]
  Linear k_proj;  // [kv_heads * head_dim, hidden]
  Linear v_proj;  // [kv_heads * head_dim, hidden]
  Linear o_proj;  // [hidden, heads * head_dim]
};

struct FFNWeights {  // SwiGLU: down(silu(gate x) * up x)
  Linear gate_proj, up_proj, down_proj;
};

struct MoEWeights {
  Tensor router;      // mlp.gate.weight [n_routed, hidden], F32 in every checkpoint we write
  Tensor score_bias;  // mlp.gate.e_score_correction_bias [n_routed] (noaux_tc)
  std::vector<FFNWeights> experts;
  FFNWeights shared;  // n_shared_experts * moe_intermediate_size wide
  bool has_shared = false;
};

struct LayerWeights {
  Tensor input_layernorm, post_attention_layernorm;
  MLAWeights mla;  // AttentionKind::MLA
  GQAWeights gqa;  // AttentionKind::GQA
  bool is_moe = false;
  FFNWeights mlp;  // dense layer
  MoEWeights moe;
};

struct MTPWeights {  // module k lives at model.layers.{num_hidden_layers + k}
  Tensor enorm, hnorm;
  Linear eh_proj;  // [hidden, 2 * hidden]: concat(enorm(emb), hnorm(h))
  LayerWeights block;
  Tensor head_norm;    // shared_head.norm
  Linear head;         // shared_head.head (a copy of lm_head in DeepSeek-V3 checkpoints)
  Tensor embed;        // embed_tokens (same values as the main embedding)
};

struct ModelWeights {
  Tensor embed;  // model.embed_tokens.weight [vocab, hidden]
  std::vector<LayerWeights> layers;
  Tensor norm;   // model.norm.weight
  Linear lm_head;
  std::vector<MTPWeights> mtp;
};

enum class ParamRole { Embedding, Matrix, Bias, Norm, Router, RouterBias };

struct ParamRef {
  std::string name;
  Shape shape;
  ParamRole role;
  Tensor* tensor;
  Linear* linear;  // set for Matrix parameters (so FP8 scales can be bound)
  bool optional = false;  // e.g. MTP copies of shared tensors
};

struct ParamOptions {
  bool include_mtp = true;
};

// Sizes `w` for `c` and calls `fn` for every parameter in checkpoint order.
void for_each_param(const ModelConfig& c, ModelWeights& w, const std::function<void(ParamRef&)>& fn,
                    ParamOptions opt = {});

// Points the tensors that are shared rather than stored at their owners: a tied head at the embedding, each MTP
// module's embedding and head at the main model's. Call after replacing the embedding or head tensors.
void bind_shared_tensors(const ModelConfig& c, ModelWeights& w);

}  // namespace dseek
