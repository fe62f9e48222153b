// GPT-2's byte-to-unicode map used by ByteLevel pre-tokenizers and decoders: bytes 0x21-0x7E, 0xA1-0xAC and
// 0xAE-0xFF map to the same code point; the other 68 bytes map, in increasing order, to U+0100 upwards.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace dseek::tok {

struct ByteLevelMap {
  std::array<char32_t, 256> to_char{};
  std::array<int16_t, 324> to_byte{};  // code point (< 324) -> byte, or -1
  constexpr ByteLevelMap() {
    for (auto& b : to_byte) b = -1;
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      bool same = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_char[b] = same ? char32_t(b) : char32_t(next++);
      to_byte[to_char[b]] = int16_t(b);
    }
  }
};
inline constexpr ByteLevelMap kByteLevel{};

// The byte-level form of raw bytes (each byte becomes one mapped character, UTF-8 encoded).
std::string byte_level_encode(std::string_view bytes);
// Inverse of byte_level_encode; false (and `out` unspecified) when a character is not in the map.
bool byte_level_decode(std::string_view mapped, std::string& out);

}  // namespace dseek::tok
