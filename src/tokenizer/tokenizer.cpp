#include "tokenizer/tokenizer.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "core/error.h"
#include "core/fileio.h"
#include "core/model_folder.h"
#include "core/threads.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decoders.h"
#include "tokenizer/deepseek_splitter.h"
#include "tokenizer/normalizers.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizers.h"
#include "tokenizer/unicode.h"

namespace dseek {

using nlohmann::json;
namespace fs = std::filesystem;

struct Tokenizer::Impl {
  std::string name;
  std::unique_ptr<tok::Normalizer> normalizer;
  tok::PreTokenizerPipeline pre;
  std::unique_ptr<tok::BpeModel> model;
  std::vector<tok::AddedToken> added;
  std::unordered_map<int32_t, size_t> added_by_id;
  std::unordered_map<std::string, int32_t, tok::StringHash, std::equal_to<>> added_by_content;
  tok::AddedTokenMatcher raw_matcher, normalized_matcher;
  std::unique_ptr<tok::Decoder> decoder;
  tok::PostProcessor post;
  int32_t bos = -1, eos = -1;
  size_t vocab_size = 0;
  ChatFormat chat;
  uint64_t instance = next_instance();

  static uint64_t next_instance() {
    static std::atomic<uint64_t> n{1};
    return n++;
  }

  // Appends the ids of `text`; `starts` (optional) receives the byte offset in `text` of the piece or added
  // token each id comes from. Exact where the normalizer leaves the text as it is; where it changes a stretch,
  // `cuts` (sorted offsets in `text`, e.g. chat span starts) are kept: an id gets the start of the part
  // between cuts its piece starts in (when normalizing part by part gives the same text; else the stretch
  // start).
  void encode_into(std::string_view text, bool add_special, std::vector<int32_t>& ids, std::vector<uint32_t>* starts,
                   const std::vector<size_t>* cuts = nullptr) const;

 private:
  void encode_text(std::string_view text, bool at_start, size_t offset, std::vector<int32_t>& ids,
                   std::vector<uint32_t>* starts, const std::vector<size_t>* cuts) const;
  // encode_text() of text already normalized: added tokens matched after normalization, then the pieces.
  void encode_normalized(std::string_view text, bool at_start, size_t offset, std::vector<int32_t>& ids,
                         std::vector<uint32_t>* starts) const;
  void pre_tokenize_and_encode(std::string_view text, bool at_start, size_t offset, std::vector<int32_t>& ids,
                               std::vector<uint32_t>* starts) const;
  void encode_piece(std::string_view piece, bool raw_bytes, std::vector<int32_t>& ids) const;
};

namespace {
// Per-thread cache of piece -> ids for the tokenizer instance last used on this thread.
struct WordCache {
  uint64_t owner = 0;
  std::unordered_map<std::string, std::vector<int32_t>, tok::StringHash, std::equal_to<>> map;
};
constexpr size_t kCacheMaxPiece = 64, kCacheMaxEntries = 1 << 17;

void push_starts(std::vector<uint32_t>* starts, size_t count, size_t at) {
  if (starts) starts->resize(starts->size() + count, uint32_t(at));
}
}  // namespace

void Tokenizer::Impl::encode_piece(std::string_view piece, bool raw_bytes, std::vector<int32_t>& ids) const {
  if (piece.size() > kCacheMaxPiece) {
    model->encode_piece(piece, raw_bytes, ids);
    return;
  }
  thread_local WordCache cache;
  if (cache.owner != instance) {
    cache.map.clear();
    cache.owner = instance;
  }
  auto it = cache.map.find(piece);
  if (it != cache.map.end()) {
    ids.insert(ids.end(), it->second.begin(), it->second.end());
    return;
  }
  size_t before = ids.size();
  model->encode_piece(piece, raw_bytes, ids);
  if (cache.map.size() >= kCacheMaxEntries) cache.map.clear();
  cache.map.emplace(std::string(piece), std::vector<int32_t>(ids.begin() + before, ids.end()));
}

void Tokenizer::Impl::pre_tokenize_and_encode(std::string_view text, bool at_start, size_t offset,
                                              std::vector<int32_t>& ids, std::vector<uint32_t>* starts) const {
  if (text.empty()) return;
  if (pre.deepseek_v3) {
    thread_local std::vector<std::pair<uint32_t, uint32_t>> spans;
    spans.clear();
    tok::deepseek_v3_split(text, spans);
    for (auto [b, e] : spans) {
      size_t before = ids.size();
      encode_piece(text.substr(b, e - b), true, ids);
      push_starts(starts, ids.size() - before, offset + b);
    }
    return;
  }
  if (pre.steps.empty()) {
    size_t before = ids.size();
    encode_piece(text, false, ids);
    push_starts(starts, ids.size() - before, offset);
    return;
  }
  std::vector<tok::Piece> pieces{{std::string(text), at_start}};
  pre.apply(pieces);
  // Offsets of the pieces, when they are `text` cut in order (else each gets the start of `text`).
  bool cut_in_order = starts != nullptr;
  for (size_t i = 0, at = 0; cut_in_order && i < pieces.size(); at += pieces[i++].text.size())
    cut_in_order = text.compare(at, pieces[i].text.size(), pieces[i].text) == 0;
  size_t at = 0;
  for (const tok::Piece& p : pieces) {
    size_t before = ids.size();
    encode_piece(p.text, pre.model_maps_bytes, ids);
    push_starts(starts, ids.size() - before, offset + (cut_in_order ? at : 0));
    at += p.text.size();
  }
}

namespace {
// Maps offsets in a normalized stretch back to the stretch: the parts between `cuts`, normalized one by
// one, give the same text as the whole normalized (else everything maps to 0). An offset in an unchanged
// part maps exactly; in a changed part, to the part's start.
class NormalizedOffsets {
 public:
  NormalizedOffsets(const tok::Normalizer& n, std::string_view text, size_t offset, const std::string& normalized,
                    const std::vector<size_t>* cuts) {
    std::vector<size_t> bounds{0};
    if (cuts)
      for (size_t c : *cuts)
        if (c > offset && c < offset + text.size()) bounds.push_back(c - offset);
    bounds.push_back(text.size());
    std::string joined;
    for (size_t k = 0; k + 1 < bounds.size(); ++k) {
      std::string_view part = text.substr(bounds[k], bounds[k + 1] - bounds[k]);
      std::string norm = n.normalize(part);
      parts_.push_back({joined.size(), bounds[k], norm == part});
      joined += norm;
    }
    if (joined != normalized) parts_ = {{0, 0, false}};
  }
  uint32_t map(uint32_t p) const {
    size_t k = parts_.size() - 1;
    while (k > 0 && parts_[k].normalized_start > p) --k;
    const Part& part = parts_[k];
    return uint32_t(part.start + (part.same ? p - part.normalized_start : 0));
  }

 private:
  struct Part {
    size_t normalized_start, start;
    bool same;
  };
  std::vector<Part> parts_;
};
}  // namespace

void Tokenizer::Impl::encode_text(std::string_view text, bool at_start, size_t offset, std::vector<int32_t>& ids,
                                  std::vector<uint32_t>* starts, const std::vector<size_t>* cuts) const {
  if (normalizer) {
    std::string normalized = normalizer->normalize(text);
    if (normalized != text) {
      // Encode in normalized offsets, then map those back.
      size_t first = starts ? starts->size() : 0;
      encode_normalized(normalized, at_start, 0, ids, starts);
      if (starts) {
        NormalizedOffsets back(*normalizer, text, offset, normalized, cuts);
        for (size_t i = first; i < starts->size(); ++i) (*starts)[i] = uint32_t(offset) + back.map((*starts)[i]);
      }
      return;
    }
  }
  encode_normalized(text, at_start, offset, ids, starts);
}

void Tokenizer::Impl::encode_normalized(std::string_view text, bool at_start, size_t offset, std::vector<int32_t>& ids,
                                        std::vector<uint32_t>* starts) const {
  if (normalized_matcher.empty()) {
    pre_tokenize_and_encode(text, at_start, offset, ids, starts);
    return;
  }
  std::vector<tok::Segment> segs;
  normalized_matcher.split(text, segs);
  for (const tok::Segment& s : segs) {
    if (s.id >= 0) {
      ids.push_back(s.id);
      push_starts(starts, 1, offset + s.begin);
    } else {
      pre_tokenize_and_encode(text.substr(s.begin, s.end - s.begin), at_start && s.begin == 0, offset + s.begin, ids,
                              starts);
    }
  }
}

void Tokenizer::Impl::encode_into(std::string_view text, bool add_special, std::vector<int32_t>& ids,
                                  std::vector<uint32_t>* starts, const std::vector<size_t>* cuts) const {
  size_t bad = unicode::find_invalid_utf8(text);
  if (bad != std::string_view::npos) fail("text to encode is not valid UTF-8 (byte {})", bad);
  size_t first = ids.size();
  if (raw_matcher.empty()) {
    encode_text(text, true, 0, ids, starts, cuts);
  } else {
    std::vector<tok::Segment> segs;
    raw_matcher.split(text, segs);
    for (const tok::Segment& s : segs) {
      if (s.id >= 0) {
        ids.push_back(s.id);
        push_starts(starts, 1, s.begin);
      } else {
        encode_text(text.substr(s.begin, s.end - s.begin), s.begin == 0, s.begin, ids, starts, cuts);
      }
    }
  }
  if (add_special && (!post.prefix.empty() || !post.suffix.empty())) {
    ids.insert(ids.begin() + first, post.prefix.begin(), post.prefix.end());
    ids.insert(ids.end(), post.suffix.begin(), post.suffix.end());
    if (starts) {
      starts->insert(starts->begin() + first, post.prefix.size(), 0);
      starts->insert(starts->end(), post.suffix.size(), uint32_t(text.size()));
    }
  }
}

// ---- Loading ----

namespace {
json read_json(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) fail("{}: cannot open", p.string());
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::exception& e) {
    fail("{}: invalid JSON: {}", p.string(), e.what());
  }
}

// bos_token / eos_token of tokenizer_config.json: a string or {"content": ...}; "" when absent.
std::string config_token(const json& config, const char* name, const std::string& where) {
  if (!config.is_object() || !config.contains(name) || config[name].is_null()) return {};
  const json& v = config[name];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  fail("{}: {}: expected a string or an object with \"content\"", where, name);
}
}  // namespace

std::optional<std::string> Tokenizer::find_file(const std::string& path) {
  fs::path p(path);
  std::error_code ec;
  if (!fs::exists(p, ec)) fail("{}: no such file or folder", path);
  if (!fs::is_directory(p, ec)) return path;
  fs::path file = p / "tokenizer.json";
  // a training run: the tokenizer of its latest checkpoint
  if (!fs::exists(file) && !fs::exists(p / "config.json"))
    if (const auto dir = latest_checkpoint_of(path)) file = fs::path(*dir) / "tokenizer.json";
  if (!fs::exists(file)) return std::nullopt;
  return file.string();
}

namespace {
std::string file_of(const std::string& path) {
  if (auto f = Tokenizer::find_file(path)) return *f;
  fail("{}: no tokenizer.json in this folder", path);
}
}  // namespace

uint64_t Tokenizer::content_fingerprint(const std::string& path) {
  const std::string file = file_of(path);
  const json tj = read_json(file);
  if (!tj.is_object()) fail("{}: expected a JSON object", file);
  // nlohmann's objects are ordered by key, so the dump is canonical
  const std::string content = tj.value("model", json()).dump() + "\n" + tj.value("added_tokens", json()).dump();
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char ch : content) h = (h ^ ch) * 1099511628211ull;
  return h;
}

void Tokenizer::copy_files(const std::string& path, const std::string& dir) {
  const fs::path file(file_of(path));
  write_file_atomic((fs::path(dir) / "tokenizer.json").string(), read_file(file.string()));
  const fs::path config = file.parent_path() / "tokenizer_config.json";
  if (fs::exists(config)) write_file_atomic((fs::path(dir) / "tokenizer_config.json").string(), read_file(config.string()));
}

Tokenizer Tokenizer::load(const std::string& path, const TokenizerOptions& options) {
  const fs::path file(file_of(path));
  json tj = read_json(file);
  fs::path config_file = file.parent_path() / "tokenizer_config.json";
  json config = fs::exists(config_file) ? read_json(config_file) : json();
  return from_json(tj, config, file.string(), options);
}

Tokenizer Tokenizer::from_json(const json& tj, const json& config, const std::string& name,
                               const TokenizerOptions& options) {
  auto impl = std::make_shared<Impl>();
  impl->name = name;
  if (!tj.is_object()) fail("{}: expected a JSON object", name);
  if (!tj.contains("model")) fail("{}: missing \"model\"", name);
  impl->model = tok::BpeModel::from_json(tj["model"], name + ": model");
  impl->normalizer = tok::normalizer_from_json(tj.value("normalizer", json()), name + ": normalizer");
  impl->pre = tok::pre_tokenizer_from_json(tj.value("pre_tokenizer", json()), name + ": pre_tokenizer");
  if (!options.fast_pre_tokenizer) impl->pre.deepseek_v3 = false;
  impl->decoder = tok::decoder_from_json(tj.value("decoder", json()), name + ": decoder");
  impl->post = tok::PostProcessor::from_json(tj.value("post_processor", json()), name + ": post_processor");
  if (tj.contains("truncation") && !tj["truncation"].is_null())
    fail("{}: truncation is not supported (set it to null)", name);
  if (tj.contains("padding") && !tj["padding"].is_null()) fail("{}: padding is not supported (set it to null)", name);

  // Added tokens.
  size_t max_id = impl->model->id_space();
  if (tj.contains("added_tokens")) {
    const json& list = tj["added_tokens"];
    if (!list.is_array()) fail("{}: added_tokens: expected an array", name);
    for (size_t i = 0; i < list.size(); ++i) {
      const json& a = list[i];
      std::string where = fmt::format("{}: added_tokens[{}]", name, i);
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
          !a["content"].is_string())
        fail("{}: expected {{id, content, ...}}", where);
      tok::AddedToken t;
      t.id = a["id"].get<int32_t>();
      t.content = a["content"].get<std::string>();
      auto flag = [&](const char* k, bool def) {
        if (!a.contains(k)) return def;
        if (!a[k].is_boolean()) fail("{}.{}: expected true or false", where, k);
        return a[k].get<bool>();
      };
      t.single_word = flag("single_word", false);
      t.lstrip = flag("lstrip", false);
      t.rstrip = flag("rstrip", false);
      t.normalized = flag("normalized", !flag("special", false));
      t.special = flag("special", false);
      if (t.id < 0) fail("{}.id: negative", where);
      if (t.content.empty()) continue;
      impl->added_by_id[t.id] = impl->added.size();
      impl->added_by_content[t.content] = t.id;
      max_id = std::max(max_id, size_t(t.id) + 1);
      impl->added.push_back(std::move(t));
    }
  }
  impl->vocab_size = max_id;
  std::vector<const tok::AddedToken*> raw, norm;
  std::vector<std::string> raw_patterns, norm_patterns;
  for (const tok::AddedToken& t : impl->added) {
    if (t.normalized) {
      norm.push_back(&t);
      norm_patterns.push_back(impl->normalizer ? impl->normalizer->normalize(t.content) : t.content);
    } else {
      raw.push_back(&t);
      raw_patterns.push_back(t.content);
    }
  }
  impl->raw_matcher.build(raw, raw_patterns);
  impl->normalized_matcher.build(norm, norm_patterns);

  // tokenizer_config.json: special tokens, the BOS/EOS rule of transformers' Llama tokenizers, chat template.
  std::string config_name = (fs::path(name).parent_path() / "tokenizer_config.json").string();
  Tokenizer tok(impl);
  std::string bos = config_token(config, "bos_token", config_name);
  std::string eos = config_token(config, "eos_token", config_name);
  auto id_of = [&](const std::string& t, const char* field) {
    if (t.empty()) return int32_t(-1);
    int32_t id = tok.token_to_id(t);
    if (id < 0) fail("{}: {} '{}' is not in the vocabulary", config_name, field, t);
    return id;
  };
  impl->bos = id_of(bos, "bos_token");
  impl->eos = id_of(eos, "eos_token");
  if (config.is_object() && (config.contains("add_bos_token") || config.contains("add_eos_token"))) {
    bool add_bos = config.value("add_bos_token", false), add_eos = config.value("add_eos_token", false);
    if (add_bos && impl->bos < 0) fail("{}: add_bos_token is true but there is no bos_token", config_name);
    if (add_eos && impl->eos < 0) fail("{}: add_eos_token is true but there is no eos_token", config_name);
    impl->post = {};
    if (add_bos) impl->post.prefix = {impl->bos};
    if (add_eos) impl->post.suffix = {impl->eos};
  }
  impl->chat = options.chat_template.empty()
                   ? ChatFormat::from_config(config.is_object() ? config.value("chat_template", json()) : json(), bos,
                                             eos, config_name)
                   : ChatFormat::from_name(options.chat_template, bos, eos);
  return tok;
}

// ---- Encoding, decoding, lookups ----

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special) const {
  std::vector<int32_t> ids;
  impl_->encode_into(text, add_special, ids, nullptr);
  return ids;
}

std::vector<std::vector<int32_t>> Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                                          bool add_special) const {
  std::vector<std::vector<int32_t>> out(texts.size());
  std::string error;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < int64_t(texts.size()); ++i) {
    try {
      impl_->encode_into(texts[i], add_special, out[i], nullptr);
    } catch (const std::exception& e) {
#pragma omp critical
      if (error.empty()) error = fmt::format("texts[{}]: {}", i, e.what());
    }
  }
  if (!error.empty()) fail("{}", error);
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    auto it = impl_->added_by_id.find(id);
    if (it != impl_->added_by_id.end()) {
      const tok::AddedToken& t = impl_->added[it->second];
      if (!(skip_special && t.special)) tokens.push_back(t.content);
      continue;
    }
    const std::string& t = impl_->model->id_to_token(id);
    if (!t.empty()) tokens.push_back(t);
  }
  if (!impl_->decoder) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  impl_->decoder->decode_chain(tokens);
  std::string out;
  for (const std::string& t : tokens) out += t;
  return out;
}

int32_t Tokenizer::token_to_id(std::string_view token) const {
  auto it = impl_->added_by_content.find(token);
  if (it != impl_->added_by_content.end()) return it->second;
  return impl_->model->token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  auto it = impl_->added_by_id.find(id);
  if (it != impl_->added_by_id.end()) return impl_->added[it->second].content;
  return impl_->model->id_to_token(id);
}

bool Tokenizer::is_special(int32_t id) const {
  auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}

int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }
size_t Tokenizer::vocab_size() const { return impl_->vocab_size; }
const ChatFormat& Tokenizer::chat_format() const { return impl_->chat; }

std::string Tokenizer::render_chat(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                   const nlohmann::ordered_json& tools) const {
  return impl_->chat.render(messages, add_generation_prompt, tools);
}

ChatEncoding Tokenizer::encode_chat(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                    const nlohmann::ordered_json& tools) const {
  std::vector<ChatSpan> spans = impl_->chat.render_spans(messages, add_generation_prompt, tools);
  ChatEncoding out;
  std::string text;
  std::vector<std::pair<size_t, bool>> bounds;  // span start, assistant
  std::vector<size_t> cuts;
  for (const ChatSpan& s : spans) {
    bounds.emplace_back(text.size(), s.assistant);
    cuts.push_back(text.size());
    text += s.text;
  }
  std::vector<uint32_t> starts;
  impl_->encode_into(text, false, out.ids, &starts, &cuts);
  out.assistant_mask.resize(out.ids.size());
  size_t span = 0;
  for (size_t i = 0; i < out.ids.size(); ++i) {
    while (span + 1 < bounds.size() && bounds[span + 1].first <= starts[i]) ++span;
    out.assistant_mask[i] = !bounds.empty() && bounds[span].second ? 1 : 0;
  }
  return out;
}

// ---- Streaming ----

std::string StreamDecoder::push(int32_t id) {
  ids_.push_back(id);
  std::string text = tok_.decode(ids_, skip_special_);
  if (text.size() <= prefix_text_.size() || text.compare(0, prefix_text_.size(), prefix_text_) != 0) return {};
  // Hold back text that ends inside a character (the decoder shows it as U+FFFD for now).
  if (text.size() >= 3 && text.compare(text.size() - 3, 3, "\xEF\xBF\xBD") == 0) return {};
  std::string out = text.substr(prefix_text_.size());
  // Keep only the last emitted id as context for the next decode (decoders may treat a first token apart).
  ids_.erase(ids_.begin(), ids_.end() - 1);
  prefix_text_ = tok_.decode(ids_, skip_special_);
  return out;
}

std::string StreamDecoder::flush() {
  std::string text = tok_.decode(ids_, skip_special_);
  std::string out = text.size() > prefix_text_.size() ? text.substr(prefix_text_.size()) : std::string();
  ids_.clear();
  prefix_text_.clear();
  return out;
}

}  // namespace dseek
