#include "train/data_source.h"

#include <filesystem>
#include <map>

#include "core/error.h"

namespace dseek {

using json = nlohmann::json;

namespace {

std::map<std::string, DataFactory>& registry() {
  static std::map<std::string, DataFactory> r;
  return r;
}

std::string kinds() {
  std::string s;
  for (const auto& [k, f] : registry()) s += (s.empty() ? "" : ", ") + k;
  return s;
}

// Pretraining: random windows of T+1 tokens from the train split; validation windows spread evenly over the
// val split when there is one.
class TokenWindowSource : public BatchSource {
 public:
  TokenWindowSource(const std::string& dir, uint64_t seed)
      : data_(TokenDataset::open(dir, "train")), sampler_(data_, seed) {}
  MicroBatch next(int64_t B, int64_t T) override {
    sampler_.next(B, T, buf_);
    return MicroBatch::from_tokens(buf_.data(), B, T);
  }
  json state() const override { return sampler_.state(); }
  void restore(const json& s) override { sampler_.set_state(s.get<std::vector<uint64_t>>()); }
  const TokenDataset& data() const { return data_; }

 private:
  TokenDataset data_;
  WindowSampler sampler_;
  std::vector<int32_t> buf_;  // [B, T+1]
};

RunData open_tokens(const DataSpec& spec, const ModelConfig& c, const DataRequest& req) {
  RunData d;
  auto src = std::make_unique<TokenWindowSource>(spec.path, req.seed);
  if (src->data().vocab_size() > c.vocab_size)
    fail("{}: data vocabulary ({}) is larger than the model's vocab_size ({})", spec.path, src->data().vocab_size(),
         c.vocab_size);
  d.train = std::move(src);
  bool has_val = false;
  for (const auto& e : std::filesystem::directory_iterator(spec.path))
    has_val |= e.path().filename().string().rfind("val-", 0) == 0;
  if (!has_val || req.eval_batches <= 0) return d;
  const int64_t B = req.batch_size, T = req.seq_len;
  TokenDataset val = TokenDataset::open(spec.path, "val");
  const int64_t windows = req.eval_batches * B, span = val.size() - T - 1;
  if (span < 0) return d;
  std::vector<int32_t> buf(size_t(B * (T + 1)));
  for (int64_t e = 0; e < req.eval_batches; e++) {
    for (int64_t b = 0; b < B; b++) {
      const int64_t w = e * B + b, start = windows > 1 ? span * w / (windows - 1) : 0;
      val.read(start, T + 1, buf.data() + b * (T + 1));
    }
    d.val.push_back(MicroBatch::from_tokens(buf.data(), B, T));
    for (int32_t t : d.val.back().targets) d.val_bytes += double(val.bytes_of(t));
  }
  return d;
}

const bool kTokensRegistered = register_data_kind("tokens", open_tokens);

}  // namespace

bool register_data_kind(const std::string& kind, DataFactory factory) {
  registry()[kind] = std::move(factory);
  return true;
}

RunData open_run_data(const DataSpec& spec, const ModelConfig& model, const DataRequest& req) {
  auto it = registry().find(spec.kind);
  if (it == registry().end()) fail("data kind '{}' is not one of: {}", spec.kind, kinds());
  return it->second(spec, model, req);
}

json DataSpec::to_json() const {
  return json{{"kind", kind},         {"path", path},       {"tokenizer", tokenizer}, {"val_fraction", val_fraction},
              {"teacher", teacher}, {"teacher_top_k", teacher_top_k}};
}

DataSpec DataSpec::from_json(const json& j, const std::string& origin) {
  DataSpec d;
  if (j.is_string()) {  // a plain token folder
    d.path = j.get<std::string>();
    return d;
  }
  if (!j.is_object() || !j.contains("kind") || !j.contains("path")) fail("{}: 'data' must have 'kind' and 'path'", origin);
  d.kind = j["kind"].get<std::string>();
  d.path = j["path"].get<std::string>();
  d.tokenizer = j.value("tokenizer", std::string());
  d.val_fraction = j.value("val_fraction", 0.05);
  d.teacher = j.value("teacher", std::string());
  d.teacher_top_k = j.value("teacher_top_k", int64_t(20));
  if (!registry().count(d.kind)) fail("{}: data kind '{}' is not one of: {}", origin, d.kind, kinds());
  return d;
}

}  // namespace dseek
