// Supervised fine-tuning data: JSON Lines of {"messages": [{"role", "content"}, ...]} rendered with the
// model's chat format. Only tokens the assistant writes are targets. Conversations are packed into rows of T
// tokens without crossing a row; each attends only within itself (key_begin) and its positions restart at 0.
#pragma once
#include <string>
#include <vector>

#include "core/rng.h"
#include "tokenizer/tokenizer.h"
#include "train/graph.h"
#include "train/trainer.h"

namespace dseek {

struct Conversation {
  std::vector<int32_t> ids;
  std::vector<uint8_t> assistant;  // 1 where ids[i] is written by the assistant
};

// All conversations of a chat JSONL file; val_fraction of them (by a hash of the line number) go to `val`.
void load_conversations(const std::string& path, const Tokenizer& tok, double val_fraction,
                        std::vector<Conversation>& train, std::vector<Conversation>& val);

// Packs conversations (in the given order) into micro-batches of B rows x T tokens.
std::vector<MicroBatch> pack_conversations(const std::vector<Conversation>& convs, int64_t B, int64_t T, int32_t pad_id);
// One row from a list of conversations (helper of the above; exposed for tests).
void pack_row(const std::vector<const Conversation*>& convs, int64_t T, int32_t pad_id, int32_t* inputs,
              int32_t* targets, int32_t* positions, int32_t* key_begin);

// Epochs over the training conversations in a seeded shuffled order, packed on the fly.
class ChatSource : public BatchSource {
 public:
  ChatSource(std::vector<Conversation> convs, uint64_t seed, int32_t pad_id);
  MicroBatch next(int64_t B, int64_t T) override;
  nlohmann::json state() const override;
  void restore(const nlohmann::json& s) override;

 private:
  void reshuffle();
  std::vector<Conversation> convs_;
  std::vector<size_t> order_;
  uint64_t seed_;
  int32_t pad_;
  int64_t epoch_ = 0, pos_ = 0;
};

}  // namespace dseek
