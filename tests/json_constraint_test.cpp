// JSON-object constrained decoding: the byte recogniser against valid and invalid texts, its shortest completion
// (checked by nlohmann::json and by brute force), and the token mask over random sampling episodes.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "inference/json_constraint.h"
#include "test_util.h"

namespace dseek {
namespace {

// Index of the first byte of `s` that push() refuses (s.size() if none).
size_t push_all(JsonPrefix& p, const std::string& s) {
  for (size_t i = 0; i < s.size(); i++)
    if (!p.push((unsigned char)s[i])) return i;
  return s.size();
}

bool parses_as_object(const std::string& s) {
  try {
    return nlohmann::json::parse(s).is_object();
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F) out += char(c);
    else out += fmt::format("\\x{:02X}", c);
  }
  return out;
}

std::string nested(int arrays) {  // {"a":[[...]]}: 1 + arrays containers deep
  return "{\"a\":" + std::string(size_t(arrays), '[') + std::string(size_t(arrays), ']') + "}";
}

const std::vector<std::string>& valid_objects() {
  static const std::vector<std::string> docs = {
      "{}",
      "  {\"a\":1}",
      "{\"a\":[]}",
      "{\"a\":{}}",
      "{\"\":\"\"}",
      "{\"a\":[1,2,{\"b\":null}],\"c\":{\"d\":[true,false,[],{}]}}",
      "{\"n\":[0,-0,7,-1,10,123,0.5,-0.5,1.25,1e5,1E5,1e+5,1e-5,1.5e10,-0.0e-0,0E+0,12.34E-56,9007199254740993]}",
      "{\"n\":0}",
      "{\"n\":-12}",
      "{\"n\":3.25}",
      "{\"n\":1e9}",
      "{\"e\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\uD83D\\uDE00 \\uFFFF\\ud7ff\\uE000\"}",
      "{\"\\u00e9\":\"key escape\"}",
      "{\"u\":\"h\xC3\xA9llo \xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x98\x80 \x7F"
      " \xE0\xA0\x80 \xED\x9F\xBF \xF4\x8F\xBF\xBF\"}",
      "{ \"a\" : [ 1 , 2 ] ,\n\t\"b\":\r\n{ } }",
      "{\"t\":true,\"f\":false,\"n\":null}",
      nested(63),
      "{\"big\":[1e307,-12e306,0.5e307,1E+307,1e-999,-1.5e-99999," + std::string(308, '9') + "]}",
  };
  return docs;
}

TEST(JsonConstraint, PrefixAcceptsValidObjects) {
  EXPECT_LE(sizeof(JsonPrefix), 24u);
  for (const std::string& doc : valid_objects()) {
    SCOPED_TRACE(printable(doc));
    ASSERT_TRUE(parses_as_object(doc));
    JsonPrefix p;
    for (size_t i = 0; i < doc.size(); i++) {
      EXPECT_FALSE(p.complete()) << "at byte " << i;
      ASSERT_TRUE(p.push((unsigned char)doc[i])) << "refused byte " << i;
    }
    EXPECT_TRUE(p.complete());
    EXPECT_EQ(p.closing_length(), 0u);
    EXPECT_EQ(p.closing(), "");
    // nothing may follow the object, not even whitespace
    EXPECT_FALSE(p.push(' '));
    EXPECT_FALSE(p.push('x'));
    EXPECT_TRUE(p.complete());
  }
}

TEST(JsonConstraint, PrefixRejectsAtTheExactByte) {
  struct Case {
    std::string text;
    size_t bad;  // index of the first byte to refuse
  };
  const std::vector<Case> cases = {
      {"{'a'", 1},
      {"{\"a\" 1}", 5},
      {"{\"a\":01}", 6},
      {"{\"a\":1,}", 7},
      {"[1]", 0},
      {"\"a\"", 0},
      {"{\"a\":tru e}", 8},
      {"{\"a\":nul}", 8},
      {"{\"a\":\"x\ny\"}", 7},
      {"{\"a\":\"x\x01y\"}", 7},
      {"{\"a\":1}x", 7},
      {"{\"a\":1} ", 7},
      {"{}}", 2},
      {"{\"a\":-}", 6},
      {"{\"a\":-a}", 6},
      {"{\"a\":1.}", 7},
      {"{\"a\":1.e5}", 7},
      {"{\"a\":1e}", 7},
      {"{\"a\":1e+}", 8},
      {"{\"a\":.5}", 5},
      {"{\"a\":+1}", 5},
      {"{\"a\":1 2}", 7},
      {"{\"a\":\"\\x\"}", 7},
      {"{\"a\":\"\\u12g4\"}", 10},
      {"{\"a\":\"\\uDC00\"}", 9},         // a low surrogate alone
      {"{\"a\":\"\\uD800x\"}", 12},       // a high surrogate alone
      {"{\"a\":\"\\uD800\\u0041\"}", 14}, // ... followed by a non-surrogate
      {"{\"a\":\"\xC0\x80\"}", 6},        // overlong lead bytes
      {"{\"a\":\"\xC1\xBF\"}", 6},
      {"{\"a\":\"\xE0\x80\x80\"}", 7},    // overlong 3-byte form
      {"{\"a\":\"\xED\xA0\x80\"}", 7},    // a UTF-8 encoded surrogate
      {"{\"a\":\"\xF4\x90\x80\x80\"}", 7},// above U+10FFFF
      {"{\"a\":\"\xF5\"}", 6},
      {"{\"a\":\"\xFF\"}", 6},
      {"{\"a\":\"\x80\"}", 6},            // a continuation byte with no lead
      {"{\"a\":\"\xC3(\"}", 7},           // a lead byte with no continuation
      {"{\"a\":\"\xE4\xB8\"}", 8},
      {"{\"a\":[1}", 7},
      {"{\"a\":{\"b\":1]}", 11},
      {"{\"a\":1 \"b\":2}", 7},
      {"{\"a\"}", 4},
      {"{,}", 1},
      {"{1:2}", 1},
      {"{\"a\":[1,]}", 8},
      {"{\"a\":[,1]}", 6},
      {"{     \"a\":1}", 5},             // a 5th whitespace byte in a row
      {"     {}", 4},
      {"{\"a\":1   \n\t}", 10},
      {nested(64), 68},                  // the 65th container
      {"{\"a\":1e308}", 9},              // numbers must fit a double: below 1e308
      {"{\"a\":1e999}", 9},
      {"{\"a\":-10.5e+307}", 14},
      {"{\"a\":" + std::string(309, '9') + "}", 313},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(printable(c.text));
    ASSERT_LT(c.bad, c.text.size());
    JsonPrefix p;
    EXPECT_EQ(push_all(p, c.text.substr(0, c.bad)), c.bad);
    const std::string closing = p.closing();
    const size_t closing_length = p.closing_length();
    EXPECT_FALSE(p.push((unsigned char)c.text[c.bad]));
    // the state is unchanged: it still completes the same way
    EXPECT_EQ(p.closing(), closing);
    EXPECT_EQ(p.closing_length(), closing_length);
    EXPECT_TRUE(parses_as_object(c.text.substr(0, c.bad) + closing));
  }
  // the whitespace bound is a parameter
  JsonPrefix wide(8);
  EXPECT_EQ(push_all(wide, "{     \"a\":1       }"), 19u);
  EXPECT_TRUE(wide.complete());
  JsonPrefix none(0);
  EXPECT_EQ(push_all(none, "{\"a\":1, \"b\":2}"), 7u);
}

TEST(JsonConstraint, ClosingOfKnownPrefixes) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "{}"},
      {"  ", "{}"},
      {"{", "}"},
      {"{\"a\":", "0}"},
      {"{\"ab", "\":0}"},
      {"{\"a\":1", "}"},
      {"{\"a\":1.", "0}"},
      {"{\"a\":-", "0}"},
      {"{\"a\":1e-", "0}"},
      {"{\"a\":tru", "e}"},
      {"{\"a\":fa", "lse}"},
      {"{\"a\":[", "]}"},
      {"{\"a\":[1,", "0]}"},
      {"{\"a\":1,", "\"\":0}"},
      {"{\"a\":\"x\\", "\"\"}"},
      {"{\"a\":\"\\u12", "00\"}"},
      {"{\"a\":\"\\uD", "000\"}"},
      {"{\"a\":\"\\uD8", "00\\uDC00\"}"},
      {"{\"a\":\"\\uDBFF", "\\uDC00\"}"},
      {"{\"a\":\"\\uDBFF\\", "uDC00\"}"},
      {"{\"a\":\"\\uDBFF\\uD", "C00\"}"},
      {"{\"a\":\"\xE0", "\xA0\x80\"}"},
      {"{\"a\":\"\xF0\x9F", "\x80\x80\"}"},
      {"{\"a\":[{\"b\":[", "]}]}"},
  };
  for (const auto& [prefix, closing] : cases) {
    SCOPED_TRACE(printable(prefix));
    JsonPrefix p;
    ASSERT_EQ(push_all(p, prefix), prefix.size());
    EXPECT_EQ(printable(p.closing()), printable(closing));
    EXPECT_EQ(p.closing_length(), closing.size());
    EXPECT_TRUE(parses_as_object(prefix + closing));
  }
}

// Random JSON objects that exercise every part of the grammar (and of the recogniser's states).
class RandomJson {
 public:
  explicit RandomJson(uint32_t seed) : rng_(seed) {}
  std::string object() {
    std::string s = ws();
    value(s, 0, /*force_object=*/true);
    return s;
  }

 private:
  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  std::string ws() {
    static const char kWs[] = {' ', '\t', '\n', '\r'};
    std::string s;
    if (pick(4) == 0)
      for (int i = 1 + pick(2); i > 0; i--) s += kWs[pick(4)];
    return s;
  }
  void string(std::string& s) {
    static const std::vector<std::string> kPieces = {
        "a", "Z", " ", "~", "\x7F", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u0041", "\\u00e9",
        "\\uD83D\\uDE00", "\\udbff\\udfff", "\xC3\xA9", "\xE4\xB8\x96", "\xF0\x9F\x98\x80", "\xED\x9F\xBF",
        "\xEE\x80\x80", "\xF4\x8F\xBF\xBF"};
    s += '"';
    for (int i = pick(4); i > 0; i--) s += kPieces[size_t(pick(int(kPieces.size())))];
    s += '"';
  }
  void number(std::string& s) {
    if (pick(3) == 0) s += '-';
    if (pick(3) == 0) {
      s += '0';
    } else {
      for (int i = 0, n = 1 + pick(3); i < n; i++) s += char(i == 0 ? '1' + pick(9) : '0' + pick(10));
    }
    if (pick(2) == 0) {
      s += '.';
      for (int i = 1 + pick(3); i > 0; i--) s += char('0' + pick(10));
    }
    if (pick(3) == 0) {
      s += "eE"[pick(2)];
      if (pick(2) == 0) s += "+-"[pick(2)];
      for (int i = 1 + pick(2); i > 0; i--) s += char('0' + pick(10));
    }
  }
  void value(std::string& s, int depth, bool force_object = false) {
    const int kind = force_object ? 0 : depth >= 5 ? 2 + pick(3) : pick(5);
    if (kind == 0 || kind == 1) {
      s += kind == 0 ? '{' : '[';
      s += ws();
      const int n = pick(4);
      for (int i = 0; i < n; i++) {
        if (i > 0) s += "," + ws();
        if (kind == 0) {
          string(s);
          s += ws() + ":" + ws();
        }
        value(s, depth + 1);
        s += ws();
      }
      s += kind == 0 ? '}' : ']';
    } else if (kind == 2) {
      string(s);
    } else if (kind == 3) {
      number(s);
    } else {
      static const char* kLiterals[] = {"true", "false", "null"};
      s += kLiterals[pick(3)];
    }
  }
  std::mt19937 rng_;
};

// No string over `alphabet` shorter than `limit` bytes completes p (a depth-first search over pushes that succeed).
bool completes_within(const JsonPrefix& p, const std::string& alphabet, size_t limit) {
  if (p.complete()) return true;
  if (limit == 0) return false;
  for (char c : alphabet) {
    JsonPrefix q = p;
    if (q.push((unsigned char)c) && completes_within(q, alphabet, limit - 1)) return true;
  }
  return false;
}

TEST(JsonConstraint, ClosingIsAShortestCompletion) {
  RandomJson gen(12345);
  // every byte a completion of the random documents could need (closing() uses no others)
  const std::string alphabet = std::string("{}[]\":,0123456789.-eE truefalsn\\uDC") + "\x80\x90\xA0\xBF";
  int checked = 0, brute_forced = 0;
  for (int doc_i = 0; doc_i < 300; doc_i++) {
    const std::string doc = gen.object();
    SCOPED_TRACE(printable(doc));
    ASSERT_TRUE(parses_as_object(doc));
    JsonPrefix p;
    for (size_t i = 0; i <= doc.size(); i++) {
      const std::string prefix = doc.substr(0, i);
      const std::string closing = p.closing();
      ASSERT_EQ(closing.size(), p.closing_length()) << printable(prefix);
      ASSERT_TRUE(parses_as_object(prefix + closing)) << printable(prefix) << " + " << printable(closing);
      // the closing is what the recogniser accepts too
      JsonPrefix q = p;
      ASSERT_EQ(push_all(q, closing), closing.size()) << printable(prefix);
      ASSERT_TRUE(q.complete());
      checked++;
      if (p.closing_length() >= 2 && p.closing_length() <= 4) {
        ASSERT_FALSE(completes_within(p, alphabet, p.closing_length() - 1)) << printable(prefix);
        brute_forced++;
      }
      if (i < doc.size()) {
        ASSERT_TRUE(p.push((unsigned char)doc[i])) << "refused byte " << i;
      }
    }
    ASSERT_TRUE(p.complete());
  }
  std::printf("checked %d prefixes, brute-forced %d\n", checked, brute_forced);
}

// A toy byte-level vocabulary: every single byte 0x20..0x7E, \t \n \r, the continuation bytes the closings need,
// some multi-byte tokens, special tokens (no bytes), tokens with bytes JSON never allows, and two end ids.
struct ToyVocab {
  std::shared_ptr<std::vector<std::string>> tokens = std::make_shared<std::vector<std::string>>();
  int32_t eos = -1, stop = -1, bos = -1;
  std::vector<int32_t> invalid;  // tokens holding a byte no JSON object text may hold (outside strings or at all)

  ToyVocab() {
    bos = add("");
    for (int c = 0x20; c < 0x7F; c++) add(std::string(1, char(c)));
    for (const char* s : {"\t", "\n", "\r", "\x80", "\x90", "\xA0", "\xA9", "\xC3", "\xF0\x9F", "\x98\x80"}) add(s);
    for (const char* s : {"{\"", "\":", "true", "false", "null", "}}", "\"}", "  ", "\n\n\n\n\n", "\":\"", "\",\"",
                          "[{", "]}", "\\u", "\\uD83D", "\\uDE00", "12", ".5", "e-", "\" ", "\xC3\xA9", "\xE4\xB8\x96",
                          "\xF0\x9F\x98\x80", "{\"a\":1}", "{}", ",\"", "\\n", "\\\""})
      add(s);
    for (const char* s : {"\x01", "a\x02", "\xFF", "\xC0\x80", "\x7F\x1F"}) invalid.push_back(add(s));
    stop = add("<|stop|>");  // an end id that also has bytes
    eos = add("");
  }
  int32_t add(std::string s) {
    tokens->push_back(std::move(s));
    return int32_t(tokens->size() - 1);
  }
  int64_t size() const { return int64_t(tokens->size()); }
};

TEST(JsonConstraint, MaskFollowsTheTextAndEndsOnlyWhenComplete) {
  ToyVocab toy;
  JsonConstraint jc(toy.tokens, {toy.eos, toy.stop});
  EXPECT_TRUE(jc.budget_guaranteed());
  auto allowed = [&](const JsonConstraint& c, int64_t remaining) {
    std::vector<float> logits(size_t(toy.size()), 0.0f);
    c.mask(logits.data(), toy.size(), remaining);
    std::vector<bool> ok(logits.size());
    for (size_t i = 0; i < logits.size(); i++) ok[i] = logits[i] == 0.0f;
    return ok;
  };
  auto id_of = [&](const std::string& s) {
    for (size_t i = 0; i < toy.tokens->size(); i++)
      if ((*toy.tokens)[i] == s && int32_t(i) != toy.stop) return int32_t(i);
    ADD_FAILURE() << "no token " << s;
    return int32_t(0);
  };
  auto ok = allowed(jc, 10);
  EXPECT_TRUE(ok[size_t(id_of("{"))]);
  EXPECT_TRUE(ok[size_t(id_of("{\""))]);
  EXPECT_TRUE(ok[size_t(id_of(" "))]);
  EXPECT_FALSE(ok[size_t(id_of("["))]);
  EXPECT_FALSE(ok[size_t(id_of("true"))]);
  EXPECT_FALSE(ok[size_t(toy.eos)]);
  EXPECT_FALSE(ok[size_t(toy.stop)]);
  EXPECT_FALSE(ok[size_t(toy.bos)]);
  // with 2 tokens left "{\"" cannot be closed any more ("\":0}" would need 4), "{" still can
  ok = allowed(jc, 2);
  EXPECT_TRUE(ok[size_t(id_of("{"))]);
  EXPECT_FALSE(ok[size_t(id_of("{\""))]);
  // with 1 left, only "{}" (or a whole object) fits
  ok = allowed(jc, 1);
  EXPECT_TRUE(ok[size_t(id_of("{}"))]);
  EXPECT_TRUE(ok[size_t(id_of("{\"a\":1}"))]);
  EXPECT_FALSE(ok[size_t(id_of("{"))]);

  for (const char* t : {"{\"", "a", "\":", "1"}) {
    jc.accept(id_of(t));
    EXPECT_FALSE(jc.complete());
    ok = allowed(jc, 10);
    EXPECT_FALSE(ok[size_t(toy.eos)]);
    EXPECT_FALSE(ok[size_t(toy.stop)]);
  }
  ok = allowed(jc, 10);
  EXPECT_TRUE(ok[size_t(id_of("}"))]);
  EXPECT_TRUE(ok[size_t(id_of("2"))]);
  EXPECT_TRUE(ok[size_t(id_of(".5"))]);
  EXPECT_FALSE(ok[size_t(id_of("]}"))]);
  EXPECT_FALSE(ok[size_t(id_of("}}"))]);
  ok = allowed(jc, 1);  // only the closing brace fits
  for (size_t i = 0; i < ok.size(); i++) EXPECT_EQ(ok[i], int32_t(i) == id_of("}")) << printable((*toy.tokens)[i]);

  // a token that cannot continue the text is an error and leaves the state as it was
  EXPECT_NE(test::error_of([&] { jc.accept(id_of("]}")); }), "");
  EXPECT_NE(test::error_of([&] { jc.accept(toy.bos); }), "");
  EXPECT_NE(test::error_of([&] { jc.accept(int32_t(toy.size()) + 5); }), "");
  JsonConstraint before = jc;  // copies are independent
  jc.accept(id_of("}"));
  EXPECT_TRUE(jc.complete());
  EXPECT_FALSE(before.complete());
  ok = allowed(jc, 10);
  for (size_t i = 0; i < ok.size(); i++)
    EXPECT_EQ(ok[i], int32_t(i) == toy.eos || int32_t(i) == toy.stop) << printable((*toy.tokens)[i]);
  jc.accept(toy.eos);  // ignored
  EXPECT_TRUE(jc.complete());

  // a model vocabulary larger than the tokenizer's: the extra ids are never allowed
  std::vector<float> logits(size_t(toy.size()) + 7, 0.0f);
  before.mask(logits.data(), int64_t(logits.size()), 10);
  for (size_t i = size_t(toy.size()); i < logits.size(); i++) EXPECT_TRUE(std::isinf(logits[i]));
}

TEST(JsonConstraint, NothingAllowedLeavesTheEndIds) {
  ToyVocab toy;
  JsonConstraint jc(toy.tokens, {toy.eos});
  std::vector<float> logits(size_t(toy.size()), 1.0f);
  jc.mask(logits.data(), toy.size(), 0);  // no budget: nothing fits
  for (size_t i = 0; i < logits.size(); i++) EXPECT_EQ(std::isinf(logits[i]), int32_t(i) != toy.eos) << i;
}

TEST(JsonConstraint, BudgetGuaranteeNeedsSingleByteTokens) {
  auto tokens = std::make_shared<std::vector<std::string>>(std::vector<std::string>{"{", "}", "\"", ":", "0", ""});
  EXPECT_FALSE(JsonConstraint(tokens, {5}).budget_guaranteed());
  // ... still masking correctly
  JsonConstraint jc(tokens, {5});
  std::vector<float> logits(6, 0.0f);
  jc.mask(logits.data(), 6, 10);
  EXPECT_EQ(logits[0], 0.0f);
  for (int i = 1; i < 6; i++) EXPECT_TRUE(std::isinf(logits[size_t(i)])) << i;
}

// Random sampling episodes over the toy vocabulary: whatever the budget, the text is a JSON object when the episode
// ends, by an end id or by running out of tokens. The mask is also compared with a direct check of every token.
TEST(JsonConstraint, RandomEpisodesAlwaysYieldAnObject) {
  ToyVocab toy;
  const JsonConstraint fresh(toy.tokens, {toy.eos, toy.stop});
  ASSERT_TRUE(fresh.budget_guaranteed());
  std::mt19937 rng(2024);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  const int64_t V = toy.size();
  std::vector<float> logits(static_cast<size_t>(V));
  int by_end = 0, by_budget = 0;
  size_t longest = 0;
  for (int episode = 0; episode < 3000; episode++) {
    const int64_t budget = 2 + episode % 39;  // 2..40
    JsonConstraint jc = fresh;
    std::string text;
    bool ended = false;
    for (int64_t t = 0; t < budget && !ended; t++) {
      const int64_t remaining = budget - t;
      for (float& l : logits) l = uniform(rng);
      jc.mask(logits.data(), V, remaining);
      // the mask against a direct check of each token
      bool any_non_end = false;
      for (int64_t id = 0; id < V; id++) {
        const bool allowed = std::isfinite(logits[size_t(id)]);
        const std::string& bytes = (*toy.tokens)[size_t(id)];
        bool expect;
        if (id == toy.eos || id == toy.stop) {
          expect = jc.complete();
        } else {
          JsonPrefix p = jc.state();
          expect = !jc.complete() && !bytes.empty() && push_all(p, bytes) == bytes.size() &&
                   int64_t(p.closing_length()) <= remaining - 1;
          any_non_end = any_non_end || allowed;
        }
        ASSERT_EQ(allowed, expect) << "token " << printable(bytes) << " after " << printable(text) << " with "
                                   << remaining << " left";
      }
      ASSERT_TRUE(jc.complete() || any_non_end) << printable(text);
      for (int32_t bad : toy.invalid) ASSERT_TRUE(std::isinf(logits[size_t(bad)]));
      ASSERT_TRUE(std::isinf(logits[size_t(toy.bos)]));
      const int32_t id = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
      ASSERT_TRUE(std::isfinite(logits[size_t(id)]));
      if (id == toy.eos || id == toy.stop) {
        ended = true;
        break;
      }
      jc.accept(id);
      text += (*toy.tokens)[size_t(id)];
    }
    ASSERT_TRUE(jc.complete()) << printable(text);
    ASSERT_TRUE(parses_as_object(text)) << printable(text);
    (ended ? by_end : by_budget)++;
    longest = std::max(longest, text.size());
  }
  std::printf("episodes ended by an end id: %d, by the budget: %d; longest text %zu bytes\n", by_end, by_budget,
              longest);
  EXPECT_GT(by_end, 0);
  EXPECT_GT(by_budget, 0);
}

// mask() over a 130k-token vocabulary (average 6 bytes) in a few typical states; prints the time, asserts nothing
// about it.
TEST(JsonConstraint, MaskTimeFor130kTokens) {
  std::mt19937 rng(7);
  const std::string common = " etaoinshrdlucmfwypvbgkqjxz";
  const std::string punct = "{}[]\":,.-0123456789\\_'()!?";
  auto tokens = std::make_shared<std::vector<std::string>>();
  for (int c = 0; c < 256; c++) tokens->push_back(std::string(1, char(c)));
  std::uniform_int_distribution<int> len(1, 11), kind(0, 9);
  size_t total = 0;
  while (tokens->size() < 130000) {
    std::string t;
    for (int i = len(rng); i > 0; i--) {
      const int k = kind(rng);
      if (k < 7) t += common[size_t(rng() % common.size())];
      else if (k < 9) t += punct[size_t(rng() % punct.size())];
      else t += "\xC3\xA9";
    }
    total += t.size();
    tokens->push_back(std::move(t));
  }
  const int32_t eos = int32_t(tokens->size());
  tokens->push_back("");
  const JsonConstraint fresh(tokens, {eos});
  const int64_t V = int64_t(tokens->size());
  std::printf("vocabulary: %lld tokens, %.2f bytes on average\n", (long long)V, double(total) / double(V));
  std::vector<float> logits(static_cast<size_t>(V));
  for (const char* prefix : {"", "{\"", "{\"key", "{\"a\":", "{\"a\":\"some text", "{\"a\":12", "{\"a\":[1,"}) {
    JsonConstraint jc = fresh;
    for (const char* p = prefix; *p; p++) jc.accept(int32_t((unsigned char)*p));
    const int reps = 20;
    double best = std::numeric_limits<double>::infinity(), sum = 0;
    int64_t n_allowed = 0;
    for (int r = 0; r < reps; r++) {
      std::fill(logits.begin(), logits.end(), 0.0f);
      const auto t0 = std::chrono::steady_clock::now();
      jc.mask(logits.data(), V, 1000);
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      best = std::min(best, ms);
      sum += ms;
      if (r == 0) n_allowed = std::count_if(logits.begin(), logits.end(), [](float l) { return std::isfinite(l); });
    }
    std::printf("mask() after %-20s %8lld allowed: %.3f ms best, %.3f ms mean\n",
                ("'" + std::string(prefix) + "'").c_str(), (long long)n_allowed, best, sum / reps);
  }
}

}  // namespace
}  // namespace dseek
