// What a run trains on. A DataSpec (saved in run.json) names a kind; the factory registered for that kind builds
// the training BatchSource and the fixed validation batches, the same way when a run is created and when it is
// resumed. This folder registers "tokens" (a `dseek prepare` folder); posttrain registers "chat" (conversations,
// assistant tokens only, optionally with a teacher's soft targets). The trainer knows only this interface.
#pragma once
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/config.h"
#include "train/data.h"
#include "train/graph.h"

namespace dseek {

// Micro-batches of a run; its state is saved in checkpoints so a resumed run sees the same data.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual MicroBatch next(int64_t B, int64_t T) = 0;
  virtual nlohmann::json state() const = 0;
  virtual void restore(const nlohmann::json& s) = 0;
};

struct DataSpec {
  std::string kind = "tokens";  // a registered kind
  std::string path;
  std::string tokenizer;
  double val_fraction = 0.05;
  std::string teacher;   // chat: a model whose top-k next-token distribution is a soft target (distillation)
  int64_t teacher_top_k = 20;
  nlohmann::json to_json() const;
  static DataSpec from_json(const nlohmann::json& j, const std::string& origin);
};

// The shapes and seed the data is built for.
struct DataRequest {
  int64_t batch_size = 0, seq_len = 0, eval_batches = 0;
  uint64_t seed = 0;
};

struct RunData {
  std::unique_ptr<BatchSource> train;
  std::vector<MicroBatch> val;  // fixed validation batches (may be empty)
  double val_bytes = 0;         // UTF-8 bytes of the validation targets (0: unknown, no bits per byte)
};

using DataFactory = std::function<RunData(const DataSpec&, const ModelConfig&, const DataRequest&)>;

// Registers `kind` (at static initialisation; returns true so it can initialise a constant).
bool register_data_kind(const std::string& kind, DataFactory factory);
// Builds the data of `spec` with its kind's factory; an unknown kind is an error naming the registered ones.
RunData open_run_data(const DataSpec& spec, const ModelConfig& model, const DataRequest& req);

}  // namespace dseek
