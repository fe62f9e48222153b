#include "tokenizer/bpe.h"

#include <climits>
#include <queue>

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/unicode.h"

namespace dseek::tok {

using nlohmann::json;

void MergeTable::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  if (cap <= slots_.size()) return;
  std::vector<Entry> old;
  old.swap(slots_);
  slots_.assign(cap, Entry{});
  mask_ = cap - 1;
  count_ = 0;
  for (const Entry& e : old)
    if (e.key != kEmpty) insert(int32_t(e.key >> 32), int32_t(uint32_t(e.key)), e.rank, e.id);
}

void MergeTable::insert(int32_t a, int32_t b, int32_t rank, int32_t id) {
  if ((count_ + 1) * 2 > slots_.size()) reserve(count_ + 1);
  uint64_t key = uint64_t(uint32_t(a)) << 32 | uint32_t(b);
  for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
    Entry& e = slots_[i];
    if (e.key == key) return;
    if (e.key == kEmpty) {
      e = {key, rank, id};
      ++count_;
      return;
    }
  }
}

std::unique_ptr<BpeModel> BpeModel::from_json(const json& m, const std::string& where) {
  if (!m.is_object() || !m.contains("type") || !m["type"].is_string())
    fail("{}: expected an object with a \"type\"", where);
  std::string type = m["type"].get<std::string>();
  if (type != "BPE") fail("{}: unsupported model type '{}' (only BPE is supported)", where, type);
  auto bpe = std::make_unique<BpeModel>();
  if (!m.contains("vocab") || !m["vocab"].is_object()) fail("{}.vocab: expected an object of token -> id", where);
  int64_t max_id = -1;
  // The id -> token table is sized by the largest id, so ids may leave only a bounded gap above the count.
  constexpr int64_t kMaxIdGap = 1 << 16;
  const int64_t id_limit = int64_t(m["vocab"].size()) + kMaxIdGap;
  for (auto& [token, id] : m["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
      fail("{}.vocab: token '{}' has an invalid id {}", where, token, id.dump());
    if (id.get<int64_t>() >= id_limit)
      fail("{}.vocab: token '{}' has id {}, more than {} above the {} vocab entries", where, token, id.dump(),
           kMaxIdGap, m["vocab"].size());
    bpe->vocab_[token] = int32_t(id.get<int64_t>());
    max_id = std::max<int64_t>(max_id, id.get<int64_t>());
  }
  bpe->tokens_.resize(size_t(max_id + 1));
  for (auto& [token, id] : bpe->vocab_) bpe->tokens_[id] = token;

  auto opt_string = [&](const char* name) -> std::string {
    if (!m.contains(name) || m[name].is_null()) return {};
    if (!m[name].is_string()) fail("{}.{}: expected a string or null", where, name);
    return m[name].get<std::string>();
  };
  auto opt_bool = [&](const char* name) {
    if (!m.contains(name) || m[name].is_null()) return false;
    if (!m[name].is_boolean()) fail("{}.{}: expected true or false", where, name);
    return m[name].get<bool>();
  };
  if (m.contains("dropout") && !m["dropout"].is_null()) {
    if (!m["dropout"].is_number()) fail("{}.dropout: expected a number or null", where);
    if (m["dropout"].get<double>() != 0.0) fail("{}.dropout: BPE dropout is not supported (it makes encoding random)", where);
  }
  std::string unk = opt_string("unk_token");
  if (!unk.empty()) {
    bpe->unk_id_ = bpe->token_to_id(unk);
    if (bpe->unk_id_ < 0) fail("{}.unk_token: '{}' is not in the vocab", where, unk);
  }
  bpe->fuse_unk_ = opt_bool("fuse_unk");
  bpe->byte_fallback_ = opt_bool("byte_fallback");
  bpe->ignore_merges_ = opt_bool("ignore_merges");
  bpe->prefix_ = opt_string("continuing_subword_prefix");
  bpe->suffix_ = opt_string("end_of_word_suffix");

  if (!m.contains("merges") || !m["merges"].is_array()) fail("{}.merges: expected an array", where);
  const json& merges = m["merges"];
  bpe->merges_.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    const json& e = merges[r];
    std::string a, b;
    if (e.is_string()) {
      const std::string& s = e.get_ref<const std::string&>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos) fail("{}.merges[{}]: '{}' is not two tokens separated by a space", where, r, s);
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      a = e[0].get<std::string>();
      b = e[1].get<std::string>();
    } else {
      fail("{}.merges[{}]: expected \"a b\" or [\"a\", \"b\"]", where, r);
    }
    int32_t ia = bpe->token_to_id(a), ib = bpe->token_to_id(b);
    if (ia < 0) fail("{}.merges[{}]: token '{}' is not in the vocab", where, r, a);
    if (ib < 0) fail("{}.merges[{}]: token '{}' is not in the vocab", where, r, b);
    std::string merged = a + (b.compare(0, bpe->prefix_.size(), bpe->prefix_) == 0 && !bpe->prefix_.empty()
                                  ? b.substr(bpe->prefix_.size())
                                  : b);
    int32_t im = bpe->token_to_id(merged);
    if (im < 0) fail("{}.merges[{}]: merged token '{}' is not in the vocab", where, r, merged);
    bpe->merges_.insert(ia, ib, int32_t(r), im);
  }

  bpe->plain_bytes_ = bpe->prefix_.empty() && bpe->suffix_.empty();
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    unicode::append_utf8(ch, kByteLevel.to_char[b]);
    bpe->byte_ids_[b] = bpe->token_to_id(ch);
    if (bpe->byte_ids_[b] < 0) bpe->plain_bytes_ = false;
    bpe->byte_fallback_ids_[b] = bpe->token_to_id(fmt::format("<0x{:02X}>", b));
  }
  return bpe;
}

// One id per character of the word (Hugging Face BPE::merge_word before merging).
void BpeModel::initial_symbols(std::string_view word, bool raw_bytes, std::vector<int32_t>& ids) const {
  if (raw_bytes && plain_bytes_) {
    for (unsigned char c : word) ids.push_back(byte_ids_[c]);
    return;
  }
  std::string mapped;
  if (raw_bytes) {
    mapped = byte_level_encode(word);
    word = mapped;
  }
  int32_t unk_pending = -1;  // an unknown run not yet added (fuse_unk joins consecutive unknowns)
  std::string s;
  for (size_t i = 0; i < word.size();) {
    char32_t cp;
    size_t n = unicode::decode_utf8(word.data(), word.size(), i, cp);
    bool first = i == 0, last = i + n == word.size();
    s.assign(first ? "" : prefix_);
    s.append(word.substr(i, n));
    if (last) s += suffix_;
    i += n;
    int32_t id = token_to_id(s);
    if (id >= 0) {
      if (unk_pending >= 0) ids.push_back(unk_pending), unk_pending = -1;
      ids.push_back(id);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char c : s) all = all && byte_fallback_ids_[c] >= 0;
      if (all) {
        // Hugging Face adds fallback bytes without flushing a pending unknown first.
        for (unsigned char c : s) ids.push_back(byte_fallback_ids_[c]);
        continue;
      }
    }
    if (unk_id_ >= 0) {
      if (unk_pending >= 0 && !fuse_unk_) ids.push_back(unk_pending);
      unk_pending = unk_id_;
    }
  }
  if (unk_pending >= 0) ids.push_back(unk_pending);
}

void BpeModel::encode_piece(std::string_view piece, bool raw_bytes, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    int32_t id = raw_bytes ? token_to_id(byte_level_encode(piece)) : token_to_id(piece);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  thread_local std::vector<int32_t> ids;
  ids.clear();
  initial_symbols(piece, raw_bytes, ids);
  if (ids.size() > 64) {
    merge_long(ids);
  } else {
    merge(ids);
  }
  out.insert(out.end(), ids.begin(), ids.end());
}

// Short words: ranks of adjacent pairs kept in an array; each step merges the first lowest rank.
void BpeModel::merge(std::vector<int32_t>& ids) const {
  size_t n = ids.size();
  if (n < 2) return;
  int32_t rank[64], merged[64];
  auto look = [&](size_t i) {
    const MergeTable::Entry* e = merges_.find(ids[i], ids[i + 1]);
    rank[i] = e ? e->rank : INT_MAX;
    merged[i] = e ? e->id : -1;
  };
  for (size_t i = 0; i + 1 < n; ++i) look(i);
  while (n > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < n; ++i)
      if (rank[i] < rank[best]) best = i;
    if (rank[best] == INT_MAX) break;
    ids[best] = merged[best];
    for (size_t i = best + 1; i + 1 < n; ++i) {
      ids[i] = ids[i + 1];
      rank[i] = rank[i + 1];
      merged[i] = merged[i + 1];
    }
    --n;
    if (best > 0) look(best - 1);
    if (best + 1 < n) look(best);
  }
  ids.resize(n);
}

// Long words: a heap of candidate merges (rank, position) over a linked list of symbols.
void BpeModel::merge_long(std::vector<int32_t>& ids) const {
  struct Symbol {
    int32_t id, prev, next;
  };
  struct Candidate {
    int32_t rank, pos, id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<Symbol> sym(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) sym[i] = {ids[i], int32_t(i) - 1, i + 1 < ids.size() ? int32_t(i + 1) : -1};
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push = [&](int32_t pos) {
    if (pos < 0 || sym[pos].next < 0) return;
    if (const MergeTable::Entry* e = merges_.find(sym[pos].id, sym[sym[pos].next].id)) heap.push({e->rank, pos, e->id});
  };
  for (size_t i = 0; i + 1 < ids.size(); ++i) push(int32_t(i));
  std::vector<bool> alive(ids.size(), true);
  while (!heap.empty()) {
    Candidate c = heap.top();
    heap.pop();
    if (!alive[c.pos] || sym[c.pos].next < 0) continue;
    int32_t nxt = sym[c.pos].next;
    const MergeTable::Entry* e = merges_.find(sym[c.pos].id, sym[nxt].id);
    if (!e || e->rank != c.rank || e->id != c.id) continue;  // stale
    sym[c.pos].id = c.id;
    alive[nxt] = false;
    sym[c.pos].next = sym[nxt].next;
    if (sym[nxt].next >= 0) sym[sym[nxt].next].prev = c.pos;
    push(sym[c.pos].prev);
    push(c.pos);
  }
  ids.clear();
  for (int32_t i = 0; i >= 0; i = sym[i].next) ids.push_back(sym[i].id);
}

}  // namespace dseek::tok
