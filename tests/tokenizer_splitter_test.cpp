// The hand-written DeepSeek-V3 pre-tokenizer against the generic Oniguruma path: random Unicode strings
// built from the characters the three patterns care about, plus random code points from every plane.
#include <random>
#include <unordered_map>

#include "tokenizer/deepseek_splitter.h"
#include "tokenizer/pre_tokenizers.h"
#include "tokenizer/regex.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer_test_util.h"

namespace dseek::test {
namespace {

using tok::Regex;

// Oniguruma here (the system library) may use older Unicode tables than ours (16.0): characters whose
// classes differ are left out of random strings; how many there are is printed.
struct OnigClasses {
  Regex l{"\\A\\p{L}\\z", "test"}, m{"\\A\\p{M}\\z", "test"}, n{"\\A\\p{N}\\z", "test"},
      ps{"\\A[\\p{P}\\p{S}]\\z", "test"}, s{"\\A\\s\\z", "test"};
  bool agrees(char32_t cp) const {
    std::string c;
    unicode::append_utf8(c, cp);
    auto has = [&](const Regex& r) { return !r.find_all(c).empty(); };
    return has(l) == unicode::in(cp, unicode::kLetter) && has(m) == unicode::in(cp, unicode::kMark) &&
           has(n) == unicode::in(cp, unicode::kNumber) &&
           has(ps) == unicode::in(cp, unicode::kPunct | unicode::kSymbol) && has(s) == unicode::is_white_space(cp);
  }
};

class RandomText {
 public:
  explicit RandomText(uint32_t seed) : rng_(seed) {}
  std::string next(int max_chars) {
    std::string s;
    int n = std::uniform_int_distribution<int>(0, max_chars)(rng_);
    for (int i = 0; i < n; ++i) unicode::append_utf8(s, pick());
    return s;
  }

 private:
  char32_t pick() {
    static const std::u32string pool =
        U"aZqé ß  \t\n\r\r\n.,;:!?'\"-_()[]{}<>@#$%^&*+=/\\|~`0123456789½Ⅻ①²٣〇\u00a0\u0085\u2028\u2029\u3000"
        U"\ufeff\u200d\u200b\u0301\u0308\u093f\u0e31你好龥\u9fa6\u9fff々ぁゟ゠カーヿ・\u3099\u309b\uff76한글"
        U"مرحبا😀👍🏽\U0001F1FA\U0001F1F8\u20ac\u2192\u2500\u0001\u007f\u00ad\U00020000\U000E0041";
    std::uniform_int_distribution<int> kind(0, 9);
    int k = kind(rng_);
    if (k < 7) return pool[std::uniform_int_distribution<size_t>(0, pool.size() - 1)(rng_)];
    for (;;) {  // any code point (mostly the BMP) whose classes Oniguruma sees as we do
      char32_t cp = k < 9 ? std::uniform_int_distribution<char32_t>(0x20, 0xFFFF)(rng_)
                          : std::uniform_int_distribution<char32_t>(0x10000, 0x10FFFF)(rng_);
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      auto it = agree_.find(cp);
      if (it == agree_.end()) it = agree_.emplace(cp, onig_.agrees(cp)).first;
      if (it->second) return cp;
    }
  }
  std::mt19937 rng_;
  OnigClasses onig_;
  std::unordered_map<char32_t, bool> agree_;
};

std::vector<std::string> fast_pieces(const std::string& text) {
  std::vector<std::pair<uint32_t, uint32_t>> spans;
  tok::deepseek_v3_split(text, spans);
  std::vector<std::string> out;
  for (auto [b, e] : spans) out.push_back(text.substr(b, e - b));
  return out;
}

std::vector<std::string> onig_pieces(const tok::PreTokenizerPipeline& p, const std::string& text) {
  std::vector<tok::Piece> pieces{{text, true}};
  p.apply(pieces);
  std::vector<std::string> out;
  for (auto& piece : pieces) out.push_back(piece.text);
  return out;
}

TEST(TokenizerSplitter, RecognisesDeepSeekV3sPreTokenizer) {
  auto p = tok::pre_tokenizer_from_json(tok::deepseek_v3_pre_tokenizer_json(), "test");
  EXPECT_TRUE(p.deepseek_v3);
  EXPECT_TRUE(p.model_maps_bytes);
  nlohmann::json other = tok::deepseek_v3_pre_tokenizer_json();
  other["pretokenizers"][0]["behavior"] = "Removed";
  EXPECT_FALSE(tok::pre_tokenizer_from_json(other, "test").deepseek_v3);
}

TEST(TokenizerSplitter, EqualsOnigurumaOnRandomUnicodeStrings) {
  auto onig = tok::pre_tokenizer_from_json(tok::deepseek_v3_pre_tokenizer_json(), "test");
  RandomText gen(1234);
  int failures = 0;
  for (int i = 0; i < 30000; ++i) {
    std::string text = gen.next(i % 10 == 0 ? 200 : 24);
    auto fast = fast_pieces(text), slow = onig_pieces(onig, text);
    if (fast != slow && ++failures <= 5) {
      std::string dump;
      for (auto& s : slow) dump += nlohmann::json(s).dump() + " ";
      ADD_FAILURE() << "text " << nlohmann::json(text).dump() << "\nonig: " << dump;
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(TokenizerSplitter, FastAndGenericTokenizersGiveTheSameIds) {
  DSEEK_REQUIRE_NODE_MODULES();
  Tokenizer fast = Tokenizer::load(deepseek_v3_dir());
  Tokenizer slow = Tokenizer::load(deepseek_v3_dir(), TokenizerOptions{.fast_pre_tokenizer = false});
  RandomText gen(99);
  for (int i = 0; i < 3000; ++i) {
    std::string text = gen.next(60);
    if (i % 7 == 0) text += "<｜User｜>" + gen.next(10) + "<｜end▁of▁sentence｜>";
    ASSERT_EQ(fast.encode(text), slow.encode(text)) << nlohmann::json(text).dump();
  }
}

TEST(TokenizerSplitter, CodePointsWhoseClassesDifferFromTheSystemOniguruma) {
  OnigClasses onig;
  int differ = 0;
  for (char32_t cp = 0; cp < 0x110000; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    if (!onig.agrees(cp)) ++differ;
  }
  // Characters assigned after the system library's Unicode version; informational.
  std::printf("code points classified differently by the system Oniguruma: %d\n", differ);
  EXPECT_LT(differ, 20000);
}

}  // namespace
}  // namespace dseek::test
