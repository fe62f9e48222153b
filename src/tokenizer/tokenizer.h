// Tokenizer: loads a Hugging Face tokenizer.json (+ tokenizer_config.json beside it) and encodes / decodes
// exactly as the Hugging Face tokenizers library does (byte-level BPE; see the component headers for what
// is supported). Also renders chat conversations with the built-in chat formats (chat_format.h).
//
//   Tokenizer tok = Tokenizer::load("model_dir");          // or ".../tokenizer.json"
//   std::vector<int32_t> ids = tok.encode("Hello", true);   // with BOS as tokenizer_config.json asks
//   std::string text = tok.decode(ids);
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/chat_format.h"

namespace dseek {

// A rendered conversation as token ids, with a parallel mask: 1 for tokens the assistant generates (their
// loss is trained in SFT), 0 for prompt tokens.
struct ChatEncoding {
  std::vector<int32_t> ids;
  std::vector<uint8_t> assistant_mask;
};

struct TokenizerOptions {
  // Use the hand-written pre-tokenizer for DeepSeek-V3's regexes (false: the generic Oniguruma path, which
  // the tests compare it with).
  bool fast_pre_tokenizer = true;
  // A built-in chat format by name (ChatFormat::from_name, what --chat-template takes) used instead of the
  // chat_template of tokenizer_config.json; empty: that chat_template.
  std::string chat_template;
};

class Tokenizer {
 public:
  // `path`: a tokenizer.json file, a folder holding one, or a training run (its latest checkpoint's tokenizer).
  // tokenizer_config.json next to it is read when present (bos/eos tokens, add_bos_token / add_eos_token,
  // chat_template).
  static Tokenizer load(const std::string& path, const TokenizerOptions& options = {});
  // The tokenizer.json file `path` means, as load() finds it; none when the folder holds none.
  static std::optional<std::string> find_file(const std::string& path);
  // A hash of what decides the ids of a text: the model's vocabulary and merges and the added tokens of tokenizer
  // `path`'s tokenizer.json. Two tokenizers of the same size with different vocabularies differ here.
  static uint64_t content_fingerprint(const std::string& path);
  // Copies tokenizer.json and (when present) tokenizer_config.json of tokenizer `path` into folder `dir`.
  static void copy_files(const std::string& path, const std::string& dir);
  // From parsed files; `config` may be null. `name` is used in error messages.
  static Tokenizer from_json(const nlohmann::json& tokenizer_json, const nlohmann::json& config,
                             const std::string& name, const TokenizerOptions& options = {});

  // Ids of `text` (UTF-8; invalid UTF-8 is an error). Added tokens are always recognised; `add_special` adds
  // the post-processor's tokens (BOS for DeepSeek-V3).
  std::vector<int32_t> encode(std::string_view text, bool add_special = false) const;
  // encode() of every text, spread over all threads; results in input order.
  std::vector<std::vector<int32_t>> encode_batch(const std::vector<std::string>& texts, bool add_special = false) const;
  // Text of `ids`; `skip_special` drops added tokens marked special. Invalid UTF-8 becomes U+FFFD.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;

  int32_t token_to_id(std::string_view token) const;  // -1 when unknown
  std::string id_to_token(int32_t id) const;          // "" when unknown
  bool is_special(int32_t id) const;                  // an added token marked special
  int32_t bos_id() const;                             // -1 when there is none
  int32_t eos_id() const;
  // Highest id + 1 over the model vocab and the added tokens (the embedding rows a model needs).
  size_t vocab_size() const;

  // Chat (the built-in formats of chat_format.h; an unknown template is an error). `tools`: null or the tool
  // schemas, as transformers' apply_chat_template takes them.
  const ChatFormat& chat_format() const;
  std::string render_chat(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                          const nlohmann::ordered_json& tools = nullptr) const;
  // Ids of render_chat(...) (equal to encode(render_chat(...))) and the assistant mask. A token counts as
  // assistant when the pre-tokenizer piece it comes from starts inside an assistant span.
  ChatEncoding encode_chat(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                           const nlohmann::ordered_json& tools = nullptr) const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// Incremental decoding for streamed generation: push() returns the text that the new id completes, only
// ever ending on a UTF-8 character boundary; the concatenation of all pushes and flush() equals decode(ids).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = false) : tok_(tok), skip_special_(skip_special) {}
  std::string push(int32_t id);
  std::string flush();  // whatever is still held back (incomplete characters become U+FFFD)

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  std::vector<int32_t> ids_;  // the window: the last emitted id (context) followed by pending ones
  std::string prefix_text_;   // decode of the context id alone
};

}  // namespace dseek
