#include "posttrain/sft_data.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/fileio.h"
#include "core/json_util.h"

namespace dseek {

using json = nlohmann::json;

void load_conversations(const std::string& path, const Tokenizer& tok, double val_fraction,
                        std::vector<Conversation>& train, std::vector<Conversation>& val) {
  for_each_json_line(path, [&](const json& j, size_t line_no) {
    if (!j.contains("messages") || !j["messages"].is_array() || j["messages"].empty())
      fail("{}:{}: no non-empty 'messages' list", path, line_no);
    for (const auto& m : j["messages"]) {
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
        fail("{}:{}: every message needs a string 'role'", path, line_no);
      const std::string role = m["role"].get<std::string>();
      if (role != "system" && role != "user" && role != "assistant" && role != "tool")
        fail("{}:{}: unknown role '{}' (system, user, assistant, tool)", path, line_no, role);
    }
    ChatEncoding e;
    try {
      e = tok.encode_chat(j["messages"], false);
    } catch (const Error& err) {
      fail("{}:{}: {}", path, line_no, err.what());
    }
    Conversation c{std::move(e.ids), std::move(e.assistant_mask)};
    if (std::find(c.assistant.begin(), c.assistant.end(), 1) == c.assistant.end()) return;  // nothing to learn
    const bool is_val = val_fraction > 0 && uniform_at(0x5f7, 3, line_no) < val_fraction;
    (is_val ? val : train).push_back(std::move(c));
  });
  if (train.empty()) fail("{}: no training conversations with assistant turns", path);
}

void pack_row(const std::vector<const Conversation*>& convs, int64_t T, int32_t pad_id, int32_t* inputs,
              int32_t* targets, int32_t* positions, int32_t* key_begin) {
  int64_t t = 0;
  for (const Conversation* c : convs) {
    const int64_t L = std::min<int64_t>(int64_t(c->ids.size()), T - t);
    for (int64_t i = 0; i < L; i++) {
      inputs[t + i] = c->ids[size_t(i)];
      // position i predicts token i+1 of the same conversation (inside the row) if the assistant wrote it
      targets[t + i] = (i + 1 < L && c->assistant[size_t(i + 1)]) ? c->ids[size_t(i + 1)] : -1;
      positions[t + i] = int32_t(i);
      key_begin[t + i] = int32_t(t);
    }
    t += L;
  }
  for (; t < T; t++) {  // padding: attends to itself only, no target
    inputs[t] = pad_id;
    targets[t] = -1;
    positions[t] = 0;
    key_begin[t] = int32_t(t);
  }
}

namespace {
// Greedy packing: next conversations in order while they fit (a longer one than T gets a row to itself).
MicroBatch pack_from(const std::vector<Conversation>& convs, const std::function<size_t()>& next_index, int64_t B,
                     int64_t T, int32_t pad_id, const Conversation*& carry) {
  MicroBatch mb;
  mb.B = B;
  mb.T = T;
  mb.inputs.resize(size_t(B * T));
  mb.targets.resize(size_t(B * T));
  mb.shape.B = B;
  mb.shape.T = T;
  mb.shape.positions.resize(size_t(B * T));
  mb.shape.key_begin.resize(size_t(B * T));
  for (int64_t b = 0; b < B; b++) {
    std::vector<const Conversation*> row;
    int64_t used = 0;
    for (;;) {
      const Conversation* c = carry ? carry : &convs[next_index()];
      carry = nullptr;
      const int64_t L = int64_t(c->ids.size());
      if (!row.empty() && used + L > T) {
        carry = c;
        break;
      }
      row.push_back(c);
      used += L;
      if (used >= T) break;
    }
    pack_row(row, T, pad_id, mb.inputs.data() + b * T, mb.targets.data() + b * T, mb.shape.positions.data() + b * T,
             mb.shape.key_begin.data() + b * T);
  }
  return mb;
}
}  // namespace

std::vector<MicroBatch> pack_conversations(const std::vector<Conversation>& convs, int64_t B, int64_t T, int32_t pad_id) {
  std::vector<MicroBatch> out;
  size_t i = 0;
  const Conversation* carry = nullptr;
  // enough rows for every conversation once; indices past the end wrap (the last batch is completed with repeats)
  int64_t total = 0;
  for (const auto& c : convs) total += std::min<int64_t>(int64_t(c.ids.size()), T);
  const int64_t batches = std::max<int64_t>(1, (total + B * T - 1) / (B * T));
  for (int64_t k = 0; k < batches; k++)
    out.push_back(pack_from(convs, [&] { return (i++) % convs.size(); }, B, T, pad_id, carry));
  return out;
}

ChatSource::ChatSource(std::vector<Conversation> convs, uint64_t seed, int32_t pad_id)
    : convs_(std::move(convs)), seed_(seed), pad_(pad_id) {
  reshuffle();
}

void ChatSource::reshuffle() {
  order_.resize(convs_.size());
  std::iota(order_.begin(), order_.end(), 0);
  Rng r(seed_ ^ (0x9e3779b97f4a7c15ull * uint64_t(epoch_ + 1)));
  for (size_t i = order_.size(); i > 1; i--) std::swap(order_[i - 1], order_[size_t(r.below(i))]);
}

MicroBatch ChatSource::next(int64_t B, int64_t T) {
  const Conversation* carry = nullptr;
  MicroBatch mb = pack_from(convs_, [&] {
    if (pos_ >= int64_t(order_.size())) {
      epoch_++;
      pos_ = 0;
      reshuffle();
    }
    return order_[size_t(pos_++)];
  }, B, T, pad_, carry);
  if (carry) pos_--;  // the conversation that did not fit starts the next micro-batch
  if (pos_ < 0) pos_ = 0;
  return mb;
}

json ChatSource::state() const { return json{{"epoch", epoch_}, {"pos", pos_}}; }

void ChatSource::restore(const json& s) {
  epoch_ = s.at("epoch").get<int64_t>();
  pos_ = s.at("pos").get<int64_t>();
  reshuffle();
}

}  // namespace dseek
