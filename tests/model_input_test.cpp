// Bad model input found by trying it as a hostile user would (reliability issue, defects 2, 3 and 5): every case is a
// clear error naming the field or tensor, reached before anything large is allocated.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fileio.h"
#include "formats/safetensors.h"
#include "model/model.h"
#include "test_util.h"

namespace dseek {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string v3_tiny() { return test::shared_dir() + "/conformance/v3-tiny"; }

json tiny_config() { return json::parse(read_file(v3_tiny() + "/config.json")); }

// "" when accepted
std::string config_error(const std::function<void(json&)>& edit) {
  json j = tiny_config();
  edit(j);
  return test::error_of([&] { ModelConfig::from_json(j, "config.json"); });
}

// Loads a copy of v3-tiny (3 layers, no MTP) whose config.json is edited; "" when accepted.
std::string load_error(const test::TempDir& dir, const std::function<void(json&)>& edit) {
  fs::copy_file(v3_tiny() + "/model.safetensors", dir / "model.safetensors", fs::copy_options::overwrite_existing);
  json j = tiny_config();
  edit(j);
  std::ofstream(dir / "config.json") << j.dump(2);
  return test::error_of([&] { Model::load(dir.str()); });
}

bool mentions(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(ModelInput, IntegersAreReadStrictlyAndQuotedAsGiven) {
  // 1e300 was cast to int64 (undefined behaviour) and reported as -9223372036854775808
  const std::string e = config_error([](json& j) { j["num_hidden_layers"] = 1e300; });
  EXPECT_PRED2(mentions, e, "'num_hidden_layers'");
  EXPECT_PRED2(mentions, e, "1e+300");
  EXPECT_FALSE(mentions(e, "-9223372036854775808")) << e;
  EXPECT_PRED2(mentions, config_error([](json& j) { j["hidden_size"] = 64.5; }), "must be an integer, got 64.5");
  EXPECT_PRED2(mentions, config_error([](json& j) { j["vocab_size"] = 18446744073709551615ull; }), "out of range");
  EXPECT_EQ(config_error([](json& j) { j["num_hidden_layers"] = 3.0; }), "");  // integral float: exact
}

TEST(ModelInput, AbsurdSizesAreRefusedBeforeAllocating) {
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_PRED2(mentions, config_error([](json& j) { j["num_hidden_layers"] = 1000000000; }),
               "'num_hidden_layers' is 1000000000, beyond");
  EXPECT_PRED2(mentions, config_error([](json& j) { j["vocab_size"] = int64_t(1) << 40; }), "'vocab_size'");
  EXPECT_PRED2(mentions, config_error([](json& j) { j["hidden_size"] = int64_t(1) << 30; }), "'hidden_size'");
  EXPECT_PRED2(mentions, config_error([](json& j) { j["n_routed_experts"] = 1 << 20; j["num_experts_per_tok"] = 2; }),
               "n_routed_experts");
  // within the bounds but larger than this machine's memory: refused by init before any weight exists
  ModelConfig big = ModelConfig::from_json(
      [] { json j = tiny_config(); j["hidden_size"] = 200000; j["vocab_size"] = 1000000; return j; }(), "big.json");
  EXPECT_PRED2(mentions, test::error_of([&] { Model::random(big, 1); }), "GiB of memory");  // not a 1.5 TB model
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
}

TEST(ModelInput, ConfigMustDescribeTheCheckpointExactly) {
  test::TempDir dir;
  EXPECT_EQ(load_error(dir, [](json&) {}), "");
  // fewer layers than the checkpoint: model.layers.2 would be ignored silently
  EXPECT_PRED2(mentions, load_error(dir, [](json& j) { j["num_hidden_layers"] = 2; }), "model.layers.2 is unused");
  // more layers than the checkpoint: refused before the layers are allocated
  EXPECT_PRED2(mentions, load_error(dir, [](json& j) { j["num_hidden_layers"] = 4000; }), "holds layers 0-2 only");
  // MTP declared without its weights
  EXPECT_PRED2(mentions, load_error(dir, [](json& j) { j["num_nextn_predict_layers"] = 1; }),
               "num_nextn_predict_layers is 1");
  // special ids outside the vocabulary
  EXPECT_PRED2(mentions, load_error(dir, [](json& j) { j["bos_token_id"] = -5; }), "'bos_token_id' (-5)");
  EXPECT_PRED2(mentions, load_error(dir, [](json& j) { j["eos_token_id"] = 99999; }), "'eos_token_id' (99999)");
}

TEST(ModelInput, EveryCheckpointTensorMustBeUsed) {
  // v3-tiny's tensors plus one that no config field describes (e.g. a q/k norm of another architecture)
  test::TempDir dir;
  WeightFiles files = WeightFiles::open(v3_tiny() + "/model.safetensors");
  NamedTensors tensors;
  for (const std::string& n : files.names()) tensors.emplace_back(n, files.get(n));
  tensors.emplace_back("model.layers.1.self_attn.q_norm.weight", files.get("model.norm.weight"));
  save_safetensors(dir / "model.safetensors", tensors);
  fs::copy_file(v3_tiny() + "/config.json", dir / "config.json");
  EXPECT_PRED2(mentions, test::error_of([&] { Model::load(dir.str()); }),
               "1 tensor(s) that config.json does not describe, e.g. 'model.layers.1.self_attn.q_norm.weight'");
}

TEST(ModelInput, ReferenceOutputsBesideTheWeightsAreNotWeights) {
  // v3-tiny holds expected.safetensors next to model.safetensors; only model.safetensors is read (as transformers)
  Model m = Model::load(v3_tiny());
  EXPECT_EQ(m.config.num_hidden_layers, 3);
}

}  // namespace
}  // namespace dseek
