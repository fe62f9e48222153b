// Hand-written pre-tokenizer for DeepSeek-V3's tokenizer.json: the three Split (Isolated) regexes below,
// applied one after the other, then ByteLevel without regex. Equal to the Oniguruma path on every piece
// (tests/tokenizer_splitter_test.cpp checks it on the vectors and on random Unicode strings), and several
// times faster.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>
#include <vector>

namespace dseek::tok {

// The patterns exactly as DeepSeek-V3's tokenizer.json holds them.
inline constexpr const char* kDeepSeekV3Patterns[3] = {
    "\\p{N}{1,3}",
    "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
    "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
};

// DeepSeek-V3's "pre_tokenizer" object (also written by the BPE trainer).
nlohmann::json deepseek_v3_pre_tokenizer_json();

// True when `j` is DeepSeek-V3's pre-tokenizer (trim_offsets of ByteLevel may differ: it does not change ids).
bool is_deepseek_v3_pre_tokenizer(const nlohmann::json& j);

// Appends the pieces of `text` as byte ranges [begin, end), in order. `text` must be valid UTF-8.
void deepseek_v3_split(std::string_view text, std::vector<std::pair<uint32_t, uint32_t>>& pieces);

}  // namespace dseek::tok
