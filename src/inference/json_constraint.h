// Constrained decoding for response_format {"type": "json_object"}: the generated text is always a JSON object
// that parses, whether generation ends by an end token or by running out of its token budget.
//
// JsonPrefix recognises, byte by byte, the prefixes of RFC 8259 JSON texts whose top-level value is an object, and
// knows the shortest bytes that would complete the current prefix. JsonConstraint masks, before each sampling step,
// every token whose bytes cannot continue the text, and every token after which the text could no longer be closed
// within the tokens left; end tokens are only allowed once the object is complete.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dseek {

// Incremental pushdown recogniser of one JSON object (RFC 8259), optionally preceded by whitespace and followed by
// nothing. The state is a small copyable value (24 bytes, no allocation).
//
// Beyond the grammar it also enforces what strict parsers (nlohmann::json) check: strings are well-formed UTF-8
// (no overlong forms, no surrogates, nothing above U+10FFFF), \u escapes of surrogates come in high-low pairs, and
// numbers fit a double (a conservative bound: integer digits + exponent <= 308, so magnitudes stay below 1e308).
// It adds two limits of its own: nesting depth (kMaxDepth containers) and runs of whitespace outside strings (at
// most max_whitespace consecutive bytes, so that a small model cannot loop on whitespace).
class JsonPrefix {
 public:
  static constexpr int kMaxDepth = 64;

  explicit JsonPrefix(int max_whitespace = 4);

  // Appends byte c; false (and the state unchanged) if no valid JSON object text starts with the bytes so far + c.
  bool push(unsigned char c);
  // The bytes so far are a whole object (nothing may follow it).
  bool complete() const { return mode_ == Mode::kDone; }
  // Length of the shortest byte string that completes the bytes so far into a whole object, and one such string.
  // It holds no whitespace; its bytes are ASCII except the UTF-8 continuation bytes 0x80, 0x90 or 0xA0 that finish
  // a multi-byte character cut in the middle.
  size_t closing_length() const;
  std::string closing() const;
  // Inside a string, outside any escape or multi-byte character: a byte 0x20..0x7E other than '"' and '\' keeps
  // the state as it is.
  bool in_plain_string() const { return mode_ == Mode::kString; }

 private:
  enum class Mode : uint8_t {
    kStart,        // before the top-level '{'
    kKeyOrClose,   // after '{': a key or '}'
    kKey,          // after ',' in an object: a key
    kColon,        // after a key
    kValue,        // after ':' or after ',' in an array
    kValueOrClose, // after '[': a value or ']'
    kAfterValue,   // after a value inside a container: ',' or the container's closing bracket
    kString,       // in a string (key_ tells which kind)
    kEscape,       // after '\' in a string
    kHex,          // in \uXXXX, n_ digits read into code_
    kLowBackslash, // after a high-surrogate escape: '\' of the low one must follow
    kLowU,         // ... then 'u'
    kLowHex,       // ... then DC00..DFFF, n_ digits read
    kUtf8,         // in a multi-byte character: n_ continuation bytes left, the next one in [lo_, hi_]
    kLiteral,      // in true / false / null: literal lit_, n_ bytes read
    kMinus,        // number: after '-'
    kZero,         // number: integer part "0"
    kInt,          // number: integer part [1-9][0-9]*
    kDot,          // number: after '.'
    kFrac,         // number: fraction digits
    kExp,          // number: after 'e' / 'E'
    kExpSign,      // number: after the exponent's sign
    kExpDigits,    // number: exponent digits
    kDone,         // the top-level object is closed
  };

  bool step(unsigned char c);  // push() without the rollback: may leave the state garbled when it fails
  bool begin_value(unsigned char c);
  bool open(bool array);
  bool close(unsigned char c);
  void end_value() { mode_ = depth_ == 0 ? Mode::kDone : Mode::kAfterValue; }

  uint64_t arrays_ = 0;       // bit d: the container at depth d (0: the top-level object) is an array
  uint16_t code_ = 0;         // kHex: value of the digits read so far
  uint16_t int_digits_ = 0;   // number: digits of its integer part
  uint16_t exp_ = 0;          // number: its exponent read so far (when positive)
  Mode mode_ = Mode::kStart;
  uint8_t depth_ = 0;         // open containers
  uint8_t n_ = 0;             // mode-dependent count (see Mode)
  uint8_t lo_ = 0, hi_ = 0;   // kUtf8: the range of the next continuation byte
  uint8_t lit_ = 0;           // kLiteral: 0 true, 1 false, 2 null
  uint8_t ws_ = 0;            // whitespace bytes in a row
  uint8_t max_ws_;
  bool key_ = false;          // the string being read is an object key
  bool exp_negative_ = false; // number: its exponent has a '-'

  friend class JsonConstraint;
};

// Masks logits so that sampling can only produce a JSON object. token_bytes[id] holds the raw bytes of token id
// (empty for special tokens, which are never allowed; ids beyond it are never allowed either); end_ids are the EOS /
// stop tokens, allowed only (and then exclusively) once the object is complete.
//
// Budget: a token is only allowed if the text after it can still be closed by the tokens left, assuming that every
// byte closing() may need exists as a single-byte token, which byte-level BPE vocabularies guarantee (all 256
// bytes are tokens). budget_guaranteed() tells whether this vocabulary has them; without them masking is still
// correct (every allowed token continues a valid prefix) but a budget may end with the object unfinished.
//
// Construct once per vocabulary and copy per request: copies share the vocabulary's tables and start from the
// state the original had.
class JsonConstraint {
 public:
  JsonConstraint(std::shared_ptr<const std::vector<std::string>> token_bytes, std::vector<int32_t> end_ids);

  // Sets logits[id] to -infinity for every id in [0, vocab) that is not allowed. remaining: tokens the request may
  // still generate, this one included. Should nothing be allowed, the end ids are left allowed.
  void mask(float* logits, int64_t vocab, int64_t remaining) const;
  // Advances the state by a sampled token (end ids are ignored); a token that cannot continue the text is an error
  // and leaves the state unchanged.
  void accept(int32_t token);
  bool complete() const { return state_.complete(); }
  const JsonPrefix& state() const { return state_; }
  bool budget_guaranteed() const;

 private:
  struct Vocab;
  std::shared_ptr<const Vocab> vocab_;
  JsonPrefix state_;
};

}  // namespace dseek
