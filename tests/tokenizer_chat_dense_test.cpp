// Chat templates of the dense models (R1-Distill, Qwen2.5, Llama 3.1): byte-exact renderings against jinja2's
// (tests/data/chat/*.jsonl, made by tools/chat_vectors/make_dense_chat_vectors.py from the template files in
// ../shared/chat-templates-dense), recognition of the template files, assistant spans, --chat-template.
#include <functional>

#include "core/error.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

namespace dseek::test {
namespace {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

const char* const kTemplateFiles[] = {
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
    "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja",
    "Qwen-Qwen2.5-7B-Instruct.jinja",
    "meta-llama-Llama-3.1-8B-Instruct.jinja",
};

std::string template_text(const std::string& file) {
  std::string path = shared_dir() + "/chat-templates-dense/" + file;
  std::string text = read_file_or_empty(path);
  EXPECT_FALSE(text.empty()) << "missing " << path;
  return text;
}

std::string token_or_empty(const ojson& v) { return v.is_string() ? v.get<std::string>() : std::string(); }

// How every assistant span of a format ends, and the assistant header the prompt before it ends with (none
// for DeepSeek's: a later tool round's calls follow the user turn directly).
struct SpanRules {
  std::vector<std::string> ends;
  std::string header;
};
SpanRules span_rules(const std::string& format) {
  if (format == "qwen2.5") return {{"<|im_end|>"}, "<|im_start|>assistant\n"};
  if (format == "llama-3.1") return {{"<|eot_id|>"}, "<|start_header_id|>assistant<|end_header_id|>\n\n"};
  return {{"<｜end▁of▁sentence｜>", "<｜tool▁call▁end｜>"}, ""};
}

bool ends_with(const std::string& s, const std::string& end) {
  return s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
}

TEST(TokenizerChatDense, RendersExactlyAsJinja2) {
  size_t files = 0;
  for (const char* file : kTemplateFiles) {
    std::string name(file);
    name.resize(name.size() - 6);  // .jinja
    auto records = read_ordered_jsonl(source_dir() + "/tests/data/chat/" + name + ".jsonl");
    EXPECT_GE(records.size(), 20u) << name;
    const std::string text = template_text(file);
    size_t rendered = 0;
    for (const ojson& r : records) {
      std::string id = r["id"].get<std::string>();
      SCOPED_TRACE(id);
      std::string bos = token_or_empty(r["bos_token"]), eos = token_or_empty(r["eos_token"]);
      ChatFormat by_text = ChatFormat::from_config(text, bos, eos, "tokenizer_config.json");
      ChatFormat by_name = ChatFormat::from_name(r["format"].get<std::string>(), bos, eos);
      EXPECT_EQ(by_text.name(), r["format"].get<std::string>());
      bool gen = r["add_generation_prompt"].get<bool>();
      if (r.contains("error")) {
        // Where jinja2 raises, so do we; raise_exception's message is kept.
        std::string expected = r["error"].get<std::string>();
        try {
          by_text.render(r["messages"], gen, r["tools"]);
          ADD_FAILURE() << "no error; jinja2 raised " << expected;
        } catch (const Error& e) {
          const std::string prefix = "TemplateError: ";
          if (expected.rfind(prefix, 0) == 0)
            EXPECT_NE(std::string(e.what()).find(expected.substr(prefix.size())), std::string::npos) << e.what();
        }
        continue;
      }
      const std::string want = r["rendered"].get<std::string>();
      EXPECT_EQ(by_text.render(r["messages"], gen, r["tools"]), want);
      EXPECT_EQ(by_name.render(r["messages"], gen, r["tools"]), want);
      // Spans: they join to the rendering; assistant ones follow the assistant header and end with the
      // end-of-turn token.
      SpanRules rules = span_rules(r["format"].get<std::string>());
      std::string joined;
      for (const ChatSpan& s : by_text.render_spans(r["messages"], gen, r["tools"])) {
        if (s.assistant) {
          bool ends = false;
          for (const std::string& e : rules.ends) ends |= ends_with(s.text, e);
          EXPECT_TRUE(ends) << json(s.text).dump();
          EXPECT_TRUE(ends_with(joined, rules.header)) << json(s.text).dump();
        }
        joined += s.text;
      }
      EXPECT_EQ(joined, want);
      ++rendered;
    }
    EXPECT_GE(rendered, 18u) << name;
    ++files;
  }
  EXPECT_EQ(files, 4u);
}

TEST(TokenizerChatDense, TemplateFilesAreRecognised) {
  auto kind = [](const std::string& file) {
    return ChatFormat::from_config(template_text(file), "", "", file).kind();
  };
  EXPECT_EQ(kind(kTemplateFiles[0]), ChatFormat::Kind::DeepSeekR1Distill);
  EXPECT_EQ(kind(kTemplateFiles[1]), ChatFormat::Kind::DeepSeekR1Distill);
  EXPECT_EQ(kind(kTemplateFiles[2]), ChatFormat::Kind::Qwen25);
  EXPECT_EQ(kind(kTemplateFiles[3]), ChatFormat::Kind::Llama31);
  // Without the final newline (jinja2 drops it anyway).
  std::string qwen = template_text(kTemplateFiles[2]);
  qwen.pop_back();
  EXPECT_EQ(ChatFormat::from_config(qwen, "", "", "x").kind(), ChatFormat::Kind::Qwen25);
  // One byte more is another template.
  EXPECT_EQ(ChatFormat::from_config(qwen + " ", "", "", "x").kind(), ChatFormat::Kind::Unknown);
  ChatFormat distill = ChatFormat::from_name("deepseek-r1-distill", "<s>", "</s>");
  EXPECT_TRUE(distill.prompt_opens_reasoning());
  EXPECT_FALSE(ChatFormat::from_name("qwen2.5", "", "").prompt_opens_reasoning());
  EXPECT_FALSE(ChatFormat::from_name("llama-3.1", "", "").prompt_opens_reasoning());
  // The distill template keeps the last system message only; R1 joins them.
  ojson two = ojson::parse(R"([{"role":"system","content":"A"},{"role":"system","content":"B"},
                               {"role":"user","content":"q"}])");
  EXPECT_EQ(distill.render(two, true), "<s>B<｜User｜>q<｜Assistant｜><think>\n");
  EXPECT_EQ(ChatFormat::from_name("deepseek-r1", "<s>", "</s>").render(two, true),
            "<s>A\n\nB<｜User｜>q<｜Assistant｜><think>\n");
}

void expect_error_naming_the_flag(const std::function<void()>& f) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("--chat-template"), std::string::npos) << msg;
    EXPECT_NE(msg.find(ChatFormat::names()), std::string::npos) << msg;
  }
}

TEST(TokenizerChatDense, UnknownTemplatesAndNamesNameTheFlag) {
  EXPECT_EQ(ChatFormat::names(),
            "deepseek-v3, deepseek-r1, deepseek-r1-distill, deepseek-r1-no-think-prompt, qwen2.5, llama-3.1, qwen3, "
            "llama-3");
  expect_error_naming_the_flag([] { ChatFormat::from_name("chatml", "", ""); });
  ChatFormat unknown = ChatFormat::from_config("{{ messages }}", "", "", "tokenizer_config.json");
  expect_error_naming_the_flag([&] { unknown.render(json::array(), true); });
  expect_error_naming_the_flag([] { ChatFormat().render(json::array(), true); });
  for (const char* name :
       {"deepseek-v3", "deepseek-r1", "deepseek-r1-distill", "qwen2.5", "llama-3.1", "qwen3", "llama-3"})
    EXPECT_EQ(ChatFormat::from_name(name, "", "").name(), name);
}

// The text of the tokens whose mask is `m`, concatenated.
std::string masked_text(const Tokenizer& tok, const ChatEncoding& e, uint8_t m) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < e.ids.size(); ++i)
    if (e.assistant_mask[i] == m) ids.push_back(e.ids[i]);
  return tok.decode(ids);
}

const ojson& tool_conversation() {
  static const ojson m = ojson::parse(R"([
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [
      {"type": "function", "function": {"name": "weather", "arguments": {"city": "Paris", "at": "noon"}}}]},
    {"role": "tool", "content": "18C"},
    {"role": "assistant", "content": "It is 18C."},
    {"role": "user", "content": "Thanks"},
    {"role": "assistant", "content": "You're welcome."}])");
  return m;
}

// Encodes `messages` with the tokenizer in `dir` and the built-in format `format`; checks the ids are those of
// the rendering and returns the text of the assistant-masked tokens and of the others.
std::pair<std::string, std::string> masked_parts(const std::string& dir, const char* format, const ojson& messages,
                                                 bool gen) {
  Tokenizer tok = Tokenizer::load(dir, {.chat_template = format});
  ChatEncoding e = tok.encode_chat(messages, gen);
  EXPECT_EQ(e.ids, tok.encode(tok.render_chat(messages, gen)));
  return {masked_text(tok, e, 1), masked_text(tok, e, 0)};
}

TEST(TokenizerChatDense, AssistantMaskOfQwen25) {
  DSEEK_REQUIRE_TOKENIZER(qwen3_dir());
  auto [generated, prompt] = masked_parts(qwen3_dir(), "qwen2.5", tool_conversation(), false);
  EXPECT_EQ(generated,
            "<tool_call>\n{\"name\": \"weather\", \"arguments\": {\"city\": \"Paris\", \"at\": \"noon\"}}\n"
            "</tool_call><|im_end|>It is 18C.<|im_end|>You're welcome.<|im_end|>");
  EXPECT_EQ(prompt,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWeather in Paris?<|im_end|>\n"
            "<|im_start|>assistant\n\n<|im_start|>user\n<tool_response>\n18C\n</tool_response><|im_end|>\n"
            "<|im_start|>assistant\n\n<|im_start|>user\nThanks<|im_end|>\n<|im_start|>assistant\n\n");
  // Text that Qwen's NFC changes keeps its span: the composed reply is the assistant's.
  auto [nfc_generated, nfc_prompt] = masked_parts(
      qwen3_dir(), "qwen2.5",
      ojson::parse(R"([{"role":"user","content":"Cafe\u0301?"},{"role":"assistant","content":"Cafe\u0301!"}])"), false);
  EXPECT_EQ(nfc_generated, "Caf\u00e9!<|im_end|>");
  EXPECT_NE(nfc_prompt.find("Caf\u00e9?"), std::string::npos) << nfc_prompt;
}

TEST(TokenizerChatDense, AssistantMaskOfLlama31) {
  DSEEK_REQUIRE_TOKENIZER(llama3_dir());
  auto [generated, prompt] = masked_parts(llama3_dir(), "llama-3.1", tool_conversation(), true);
  EXPECT_EQ(generated,
            "{\"name\": \"weather\", \"parameters\": {\"city\": \"Paris\", \"at\": \"noon\"}}<|eot_id|>"
            "It is 18C.<|eot_id|>You're welcome.<|eot_id|>");
  EXPECT_EQ(prompt.rfind("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n", 0), 0u) << prompt;
  EXPECT_NE(prompt.find("<|start_header_id|>ipython<|end_header_id|>\n\n\"18C\"<|eot_id|>"), std::string::npos);
  EXPECT_EQ(prompt.substr(prompt.size() - 47), "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

// dseek chat-template on folders holding a Qwen / Llama tokenizer.json and a tokenizer_config.json whose
// chat_template is one of the dense templates, and --chat-template on one whose template is unknown.
TEST(TokenizerChatDense, ChatTemplateCommand) {
  DSEEK_REQUIRE_TOKENIZER(qwen3_dir());
  DSEEK_REQUIRE_TOKENIZER(llama3_dir());
  DSEEK_REQUIRE_NODE_MODULES();
  struct Case {
    const char* tokenizer_dir_name;
    std::string tokenizer_dir;
    const char* template_file;
    ojson bos, eos;
  };
  const Case cases[] = {
      {"qwen", qwen3_dir(), kTemplateFiles[2], nullptr, "<|im_end|>"},
      {"llama", llama3_dir(), kTemplateFiles[3], "<|begin_of_text|>", "<|eot_id|>"},
      {"distill", deepseek_v3_dir(), kTemplateFiles[0], "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"},
  };
  TempDir dir;
  const std::string messages =
      R"([{"role":"system","content":"S"},{"role":"user","content":"Hi"},{"role":"assistant","content":"Yo"},)"
      R"({"role":"user","content":"Bye"}])";
  {
    std::ofstream(dir / "in.jsonl") << messages << "\n"
                                    << R"({"messages": [{"role":"user","content":"Hi"}], "tools": [{"b": 1, "a": 2}]})"
                                    << "\n";
  }
  for (const Case& c : cases) {
    std::filesystem::path folder = dir.path / c.tokenizer_dir_name;
    std::filesystem::create_directories(folder);
    std::filesystem::create_symlink(c.tokenizer_dir + "/tokenizer.json", folder / "tokenizer.json");
    ojson config = {{"bos_token", c.bos}, {"eos_token", c.eos}, {"chat_template", template_text(c.template_file)}};
    std::ofstream(folder / "tokenizer_config.json") << config.dump(2);
    ChatFormat f = ChatFormat::from_config(config["chat_template"].get<std::string>(), token_or_empty(c.bos),
                                           token_or_empty(c.eos), "x");
    for (bool gen : {false, true}) {
      CommandResult out = run_dseek("chat-template --tokenizer '" + folder.string() + "'" +
                                    (gen ? " --add-generation-prompt" : "") + " < '" + (dir / "in.jsonl") + "'");
      ASSERT_EQ(out.status, 0) << out.out;
      std::stringstream ss(out.out);
      std::string line;
      ASSERT_TRUE(std::getline(ss, line));
      EXPECT_EQ(json::parse(line), f.render(ojson::parse(messages), gen)) << c.tokenizer_dir_name;
      ASSERT_TRUE(std::getline(ss, line));
      EXPECT_EQ(json::parse(line), f.render(ojson::parse(R"([{"role":"user","content":"Hi"}])"), gen,
                                            ojson::parse(R"([{"b": 1, "a": 2}])")))
          << c.tokenizer_dir_name;
    }
  }
  // A template that is not built in is refused, naming the flag; the flag then picks one.
  std::filesystem::path other = dir.path / "other";
  std::filesystem::create_directories(other);
  std::filesystem::create_symlink(llama3_dir() + "/tokenizer.json", other / "tokenizer.json");
  std::ofstream(other / "tokenizer_config.json")
      << R"({"bos_token": "<|begin_of_text|>", "chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"})";
  CommandResult refused = run_dseek("chat-template --tokenizer '" + other.string() + "' < '" + (dir / "in.jsonl") + "'");
  EXPECT_NE(refused.status, 0);
  EXPECT_NE(refused.out.find("--chat-template"), std::string::npos) << refused.out;
  CommandResult picked = run_dseek("chat-template --tokenizer '" + other.string() + "' --chat-template llama-3.1 < '" +
                                   (dir / "in.jsonl") + "'");
  ASSERT_EQ(picked.status, 0) << picked.out;
  EXPECT_EQ(picked.out.rfind("\"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\\n\\nCutting", 0), 0u)
      << picked.out;
  CommandResult bad = run_dseek("chat-template --tokenizer '" + other.string() + "' --chat-template llama-9 < '" +
                                (dir / "in.jsonl") + "'");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.out.find("--chat-template llama-9"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find(ChatFormat::names()), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace dseek::test
