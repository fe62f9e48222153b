#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace dseek::cli {

using nlohmann::json;

// dseek tokenize: JSON Lines in, JSON Lines out. Each input line is a JSON string (or, with --decode, a JSON
// array of ids); each output line is a JSON array of ids (or a JSON string).
void add_tokenize(CLI::App& app) {
  struct Opts {
    std::string tokenizer;
    bool add_special = false, decode = false, skip_special = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand(
      "tokenize", "Encode JSON-string lines from stdin to id arrays (or decode id arrays with --decode)");
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer.json or a folder holding it")->required();
  sub->add_flag("--add-special", o->add_special, "Add the post-processor's tokens (BOS for DeepSeek-V3)");
  sub->add_flag("--decode", o->decode, "Decode: each line is a JSON array of ids, output a JSON string");
  sub->add_flag("--skip-special", o->skip_special, "With --decode, drop special tokens");
  sub->callback([o] {
    Tokenizer tok = Tokenizer::load(o->tokenizer);
    std::string line;
    for (size_t n = 1; std::getline(std::cin, line); ++n) {
      if (line.empty() || line == "\r") continue;
      json in;
      try {
        in = json::parse(line);
      } catch (const json::exception& e) {
        fail("stdin line {}: invalid JSON: {}", n, e.what());
      }
      std::string out;
      if (o->decode) {
        if (!in.is_array()) fail("stdin line {}: expected a JSON array of token ids", n);
        std::vector<int32_t> ids;
        for (const json& v : in) {
          if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
            fail("stdin line {}: {} is not a token id", n, v.dump());
          ids.push_back(v.get<int32_t>());
        }
        out = json(tok.decode(ids, o->skip_special)).dump(-1, ' ', false, json::error_handler_t::replace);
      } else {
        if (!in.is_string()) fail("stdin line {}: expected a JSON string", n);
        out = json(tok.encode(in.get<std::string>(), o->add_special)).dump();
      }
      out += '\n';
      std::fwrite(out.data(), 1, out.size(), stdout);
      std::fflush(stdout);
    }
  });
}

}  // namespace dseek::cli
