// Inputs that crashed, hung, overflowed or escaped as a raw nlohmann::json exception when replayed through the
// fuzz harnesses (fuzz/, docs/reliability.md); each must now be a dseek::Error naming the file and field.
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "model/config.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace dseek {
namespace {

using json = nlohmann::json;
using test::error_of;

std::string tokenizer_error(const json& t) {
  return error_of([&] { Tokenizer::from_json(t, json(), "t.json"); });
}

json bpe_tokenizer() {
  return {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}}, {"merges", {"a b"}}}}};
}

TEST(FuzzRegression, TemplateProcessingSpecialTokenIdMustBeAString) {
  json t = bpe_tokenizer();
  t["post_processor"] = {{"type", "TemplateProcessing"}, {"single", {{{"SpecialToken", {{"id", 5}}}}}}};
  EXPECT_EQ(tokenizer_error(t), "t.json: post_processor.single[0].SpecialToken.id: expected a string");
}

TEST(FuzzRegression, TemplateProcessingSpecialTokenIdsMustBeIds) {
  json t = bpe_tokenizer();
  t["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", {{{"SpecialToken", {{"id", "x"}}}}}},
                         {"special_tokens", {{"x", {{"ids", {"q"}}}}}}};
  EXPECT_EQ(tokenizer_error(t), "t.json: post_processor.special_tokens.x.ids: expected token ids, got \"q\"");
}

TEST(FuzzRegression, VocabIdFarAboveTheVocabIsAnErrorNotAHugeAllocation) {
  json t = bpe_tokenizer();
  t["model"]["vocab"] = {{"a", 2147483647}};
  t["model"]["merges"] = json::array();
  EXPECT_EQ(tokenizer_error(t), "t.json: model.vocab: token 'a' has id 2147483647, more than 65536 above the 1 vocab entries");
  t["model"]["vocab"] = {{"a", 65536}};  // a gap within the bound still loads
  EXPECT_EQ(tokenizer_error(t), "");
}

json moe_config() {
  return {{"architectures", {"DeepseekV3ForCausalLM"}}, {"vocab_size", 10}, {"hidden_size", 8},
          {"num_hidden_layers", 2}, {"num_attention_heads", 2}, {"max_position_embeddings", 16},
          {"q_lora_rank", nullptr}, {"kv_lora_rank", 4}, {"qk_nope_head_dim", 4}, {"qk_rope_head_dim", 2},
          {"v_head_dim", 4}, {"n_routed_experts", 4}, {"moe_intermediate_size", 4}, {"num_experts_per_tok", 2},
          {"first_k_dense_replace", 0}, {"n_group", 1}, {"topk_group", 1}};
}

std::string config_error(const json& j) {
  return error_of([&] { ModelConfig::from_json(j, "c.json"); });
}

TEST(FuzzRegression, HugeLayerCountIsAnErrorNotALoop) {
  json j = moe_config();
  j["num_hidden_layers"] = 1000000000000000;  // all MoE: checking for a dense layer looped over every layer
  EXPECT_EQ(config_error(j), "c.json: field 'num_hidden_layers' is too large, got 1000000000000000 (at most 2147483647)");
  j["num_hidden_layers"] = 2147483647;  // representable, but beyond the layer bound
  EXPECT_EQ(config_error(j), "c.json: field 'num_hidden_layers' is 2147483647, beyond the largest dseek accepts (4096)");
  j["num_hidden_layers"] = 4096;
  EXPECT_EQ(config_error(j), "");
  // Dense layers (which need intermediate_size) are still found: layer 1 when moe_layer_freq is 2.
  j["moe_layer_freq"] = 2;
  EXPECT_EQ(config_error(j), "c.json: field 'intermediate_size' must be positive, got 0");
  j["num_hidden_layers"] = 1;
  EXPECT_EQ(config_error(j), "");
}

TEST(FuzzRegression, SizesWhoseProductsOverflowAreErrors) {
  json j = {{"architectures", {"LlamaForCausalLM"}}, {"vocab_size", 10}, {"hidden_size", 4611686018427387904},
            {"num_hidden_layers", 1}, {"num_attention_heads", 1}, {"max_position_embeddings", 16},
            {"intermediate_size", 4}};
  // kv_cache_dim() = 2 * heads * head_dim overflowed int64.
  EXPECT_EQ(config_error(j), "c.json: field 'hidden_size' is too large, got 4611686018427387904 (at most 2147483647)");
  json m = moe_config();
  m["q_lora_rank"] = 4611686018427387904;
  EXPECT_EQ(config_error(m), "c.json: field 'q_lora_rank' is too large, got 4611686018427387904 (at most 2147483647)");
}

}  // namespace
}  // namespace dseek
