#include "model/weights.h"

#include <fmt/format.h>

namespace dseek {

namespace {

struct Walker {
  const ModelConfig& c;
  const std::function<void(ParamRef&)>& fn;

  void tensor(const std::string& name, Shape shape, ParamRole role, Tensor& t, bool optional = false) {
    ParamRef r{name, std::move(shape), role, &t, nullptr, optional};
    fn(r);
  }
  void linear(const std::string& name, int64_t out, int64_t in, Linear& l, bool bias = false) {
    ParamRef r{name + ".weight", {out, in}, ParamRole::Matrix, &l.weight, &l, false};
    fn(r);
    if (!bias) return;
    ParamRef b{name + ".bias", {out}, ParamRole::Bias, &l.bias, nullptr, false};
    fn(b);
  }
  void ffn(const std::string& p, int64_t inter, FFNWeights& f) {
    linear(p + ".gate_proj", inter, c.hidden_size, f.gate_proj, c.mlp_bias);
    linear(p + ".up_proj", inter, c.hidden_size, f.up_proj, c.mlp_bias);
    linear(p + ".down_proj", c.hidden_size, inter, f.down_proj, c.mlp_bias);
  }
  void mla(const std::string& ap, MLAWeights& a) {
    const int64_t H = c.num_attention_heads;
    if (c.q_lora_rank > 0) {
      linear(ap + ".q_a_proj", c.q_lora_rank, c.hidden_size, a.q_a_proj);
      tensor(ap + ".q_a_layernorm.weight", {c.q_lora_rank}, ParamRole::Norm, a.q_a_layernorm);
      linear(ap + ".q_b_proj", H * c.qk_head_dim(), c.q_lora_rank, a.q_b_proj);
    } else {
      linear(ap + ".q_proj", H * c.qk_head_dim(), c.hidden_size, a.q_proj);
    }
    linear(ap + ".kv_a_proj_with_mqa", c.kv_lora_rank + c.qk_rope_head_dim, c.hidden_size, a.kv_a_proj);
    tensor(ap + ".kv_a_layernorm.weight", {c.kv_lora_rank}, ParamRole::Norm, a.kv_a_layernorm);
    linear(ap + ".kv_b_proj", H * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank, a.kv_b_proj);
    linear(ap + ".o_proj", c.hidden_size, H * c.v_head_dim, a.o_proj);
  }
  void gqa(const std::string& ap, GQAWeights& a) {
    const int64_t d = c.head_dim;
    linear(ap + ".q_proj", c.num_attention_heads * d, c.hidden_size, a.q_proj, c.qkv_bias);
    linear(ap + ".k_proj", c.num_key_value_heads * d, c.hidden_size, a.k_proj, c.qkv_bias);
    linear(ap + ".v_proj", c.num_key_value_heads * d, c.hidden_size, a.v_proj, c.qkv_bias);
    linear(ap + ".o_proj", c.hidden_size, c.num_attention_heads * d, a.o_proj, c.o_bias);
  }
  void layer(int64_t i, LayerWeights& L, bool moe) {
    const std::string p = fmt::format("model.layers.{}", i);
    tensor(p + ".input_layernorm.weight", {c.hidden_size}, ParamRole::Norm, L.input_layernorm);
    if (c.attention() == AttentionKind::MLA) mla(p + ".self_attn", L.mla);
    else gqa(p + ".self_attn", L.gqa);
    tensor(p + ".post_attention_layernorm.weight", {c.hidden_size}, ParamRole::Norm, L.post_attention_layernorm);
    L.is_moe = moe;
    if (!moe) {
      ffn(p + ".mlp", c.intermediate_size, L.mlp);
      return;
    }
    auto& m = L.moe;
    tensor(p + ".mlp.gate.weight", {c.n_routed_experts, c.hidden_size}, ParamRole::Router, m.router);
    if (c.uses_score_bias())
      tensor(p + ".mlp.gate.e_score_correction_bias", {c.n_routed_experts}, ParamRole::RouterBias, m.score_bias);
    m.experts.resize(size_t(c.n_routed_experts));
    for (int64_t e = 0; e < c.n_routed_experts; e++)
      ffn(fmt::format("{}.mlp.experts.{}", p, e), c.moe_intermediate_size, m.experts[size_t(e)]);
    m.has_shared = c.n_shared_experts > 0;
    if (m.has_shared) ffn(p + ".mlp.shared_experts", c.n_shared_experts * c.moe_intermediate_size, m.shared);
  }
};

}  // namespace

void for_each_param(const ModelConfig& c, ModelWeights& w, const std::function<void(ParamRef&)>& fn,
                    ParamOptions opt) {
  Walker wk{c, fn};
  wk.tensor("model.embed_tokens.weight", {c.vocab_size, c.hidden_size}, ParamRole::Embedding, w.embed);
  w.layers.resize(size_t(c.num_hidden_layers));
  for (int64_t i = 0; i < c.num_hidden_layers; i++) wk.layer(i, w.layers[size_t(i)], c.is_moe_layer(i));
  wk.tensor("model.norm.weight", {c.hidden_size}, ParamRole::Norm, w.norm);
  if (!c.tie_word_embeddings) wk.linear("lm_head", c.vocab_size, c.hidden_size, w.lm_head);
  if (!opt.include_mtp) return;
  w.mtp.resize(size_t(c.num_nextn_predict_layers));
  for (int64_t k = 0; k < c.num_nextn_predict_layers; k++) {
    const int64_t idx = c.num_hidden_layers + k;
    const std::string p = fmt::format("model.layers.{}", idx);
    MTPWeights& m = w.mtp[size_t(k)];
    wk.tensor(p + ".enorm.weight", {c.hidden_size}, ParamRole::Norm, m.enorm);
    wk.tensor(p + ".hnorm.weight", {c.hidden_size}, ParamRole::Norm, m.hnorm);
    wk.linear(p + ".eh_proj", c.hidden_size, 2 * c.hidden_size, m.eh_proj);
    // The MTP block follows the layer-type rule of its index (MoE in DeepSeek-V3).
    wk.layer(idx, m.block, c.is_moe_layer(idx));
    wk.tensor(p + ".shared_head.norm.weight", {c.hidden_size}, ParamRole::Norm, m.head_norm);
  }
}

void bind_shared_tensors(const ModelConfig& c, ModelWeights& w) {
  if (c.tie_word_embeddings) w.lm_head.weight = w.embed;
  for (auto& mt : w.mtp) {
    mt.embed = w.embed;
    mt.head = w.lm_head;
  }
}

}  // namespace dseek
