#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace dseek::cli {

using nlohmann::json;

// dseek chat-template: each stdin line is a JSON array of messages (or {"messages": [...], "tools": [...]});
// each output line is the rendered conversation as a JSON string (or, with --ids, the ids of the rendering).
void add_chat_template(CLI::App& app) {
  struct Opts {
    std::string tokenizer, chat_template;
    bool add_generation_prompt = false, ids = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("chat-template", "Render JSON-array-of-messages lines from stdin with the chat template");
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer.json or a folder holding it (with tokenizer_config.json)")
      ->required();
  add_chat_template_flag(*sub, o->chat_template);
  sub->add_flag("--add-generation-prompt", o->add_generation_prompt, "End with the assistant prompt");
  sub->add_flag("--ids", o->ids, "Print {\"ids\": [...], \"assistant_mask\": [...]} instead of the text");
  sub->callback([o] {
    Tokenizer tok = Tokenizer::load(o->tokenizer, TokenizerOptions{.chat_template = o->chat_template});
    std::string line;
    for (size_t n = 1; std::getline(std::cin, line); ++n) {
      if (line.empty() || line == "\r") continue;
      // Ordered: tool schemas and arguments keep their key order, as they do in Python.
      nlohmann::ordered_json messages, tools;
      try {
        messages = nlohmann::ordered_json::parse(line);
      } catch (const json::exception& e) {
        fail("stdin line {}: invalid JSON: {}", n, e.what());
      }
      if (messages.is_object() && messages.contains("messages")) {
        if (messages.contains("tools")) tools = messages["tools"];
        messages = nlohmann::ordered_json(messages["messages"]);
      }
      if (!messages.is_array())
        fail("stdin line {}: expected a JSON array of messages or {{\"messages\": [...], \"tools\": [...]}}", n);
      std::string out;
      try {
        if (o->ids) {
          ChatEncoding enc = tok.encode_chat(messages, o->add_generation_prompt, tools);
          out = json{{"ids", enc.ids}, {"assistant_mask", enc.assistant_mask}}.dump();
        } else {
          out = json(tok.render_chat(messages, o->add_generation_prompt, tools)).dump(-1, ' ', false);
        }
      } catch (const Error& e) {
        fail("stdin line {}: {}", n, e.what());
      }
      out += '\n';
      std::fwrite(out.data(), 1, out.size(), stdout);
      std::fflush(stdout);
    }
  });
}

}  // namespace dseek::cli
