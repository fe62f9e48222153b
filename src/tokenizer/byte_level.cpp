#include "tokenizer/byte_level.h"

#include "tokenizer/unicode.h"

namespace dseek::tok {

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) unicode::append_utf8(out, kByteLevel.to_char[b]);
  return out;
}

bool byte_level_decode(std::string_view mapped, std::string& out) {
  for (size_t i = 0; i < mapped.size();) {
    char32_t cp;
    size_t n = unicode::decode_utf8(mapped.data(), mapped.size(), i, cp);
    if (cp >= kByteLevel.to_byte.size() || kByteLevel.to_byte[cp] < 0) return false;
    out += char(kByteLevel.to_byte[cp]);
    i += n;
  }
  return true;
}

}  // namespace dseek::tok
