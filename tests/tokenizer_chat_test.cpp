// Chat format: assistant masks, the R1 template, reasoning split, refusal of unknown templates.
#include "core/error.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

namespace dseek::test {
namespace {

using nlohmann::json;

const Tokenizer& deepseek() {
  static Tokenizer t = Tokenizer::load(deepseek_v3_dir());
  return t;
}

// The text of the tokens whose mask is `m`, concatenated.
std::string masked_text(const Tokenizer& tok, const ChatEncoding& e, uint8_t m) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < e.ids.size(); ++i)
    if (e.assistant_mask[i] == m) ids.push_back(e.ids[i]);
  return tok.decode(ids);
}

TEST(TokenizerChat, AssistantMaskCoversRepliesToolCallsAndTheirEnd) {
  DSEEK_REQUIRE_NODE_MODULES();
  json messages = json::parse(R"([
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": null, "tool_calls": [
      {"type": "function", "function": {"name": "weather", "arguments": "{\"city\": \"Paris\"}"}}]},
    {"role": "tool", "content": "18C"},
    {"role": "assistant", "content": "It is 18C."},
    {"role": "user", "content": "Thanks"},
    {"role": "assistant", "content": "You're welcome."}])");
  const Tokenizer& tok = deepseek();
  ChatEncoding e = tok.encode_chat(messages, false);
  EXPECT_EQ(e.ids, tok.encode(tok.render_chat(messages, false)));
  EXPECT_EQ(masked_text(tok, e, 1),
            "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>weather\n```json\n{\"city\": \"Paris\"}\n```"
            "<｜tool▁call▁end｜>It is 18C.<｜end▁of▁sentence｜>You're welcome.<｜end▁of▁sentence｜>");
  EXPECT_EQ(masked_text(tok, e, 0),
            "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Weather in Paris?<｜Assistant｜><｜tool▁outputs▁begin｜>"
            "<｜tool▁output▁begin｜>18C<｜tool▁output▁end｜><｜tool▁outputs▁end｜><｜User｜>Thanks<｜Assistant｜>");
  // Every chat vector: the masked tokens are the assistant spans of the rendering. A token belongs to the
  // span its pre-tokenizer piece starts in: after the template's bare "\n" before a second-round tool call
  // (no <｜Assistant｜> there), that newline joins the prompt's last piece.
  for (const json& r : read_jsonl(shared_dir() + "/tokenizer-vectors/chat-visible.jsonl")) {
    ChatEncoding c = tok.encode_chat(r["messages"], r["add_generation_prompt"]);
    std::string masked = masked_text(tok, c, 1);
    size_t total = 0;
    for (const ChatSpan& s : tok.chat_format().render_spans(r["messages"], r["add_generation_prompt"])) {
      if (!s.assistant) continue;
      total += s.text.size();
      std::string body = s.text[0] == '\n' ? s.text.substr(1) : s.text;
      EXPECT_NE(masked.find(body), std::string::npos) << r["id"] << ": " << body;
    }
    EXPECT_LE(masked.size(), total) << r["id"];
  }
}

ChatFormat format_of(const std::string& tmpl) {
  return ChatFormat::from_config(tmpl, "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "tokenizer_config.json");
}

std::string r1_template() {
  std::string t = kDeepSeekV3ChatTemplate;
  auto replace = [&](const std::string& from, const std::string& to) {
    size_t at = t.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    t.replace(at, from.size(), to);
  };
  replace("{{'<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}",
          "{% set content = message['content'] %}{% if '</think>' in content %}{% set content = "
          "content.split('</think>')[-1] %}{% endif %}{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}");
  replace("{{'<｜Assistant｜>'}}{% endif %}", "{{'<｜Assistant｜><think>\n'}}{% endif %}");
  return t;
}

TEST(TokenizerChat, R1TemplateDropsEarlierReasoningAndOpensThinking) {
  ChatFormat f = format_of(r1_template());
  ASSERT_EQ(f.kind(), ChatFormat::Kind::DeepSeekR1);
  EXPECT_TRUE(f.prompt_opens_reasoning());
  json messages = json::parse(R"([{"role":"user","content":"2+2?"},
    {"role":"assistant","content":"<think>\nadd them\n</think>\n\n4"},{"role":"user","content":"3+3?"}])");
  EXPECT_EQ(f.render(messages, true),
            "<｜begin▁of▁sentence｜><｜User｜>2+2?<｜Assistant｜>\n\n4<｜end▁of▁sentence｜><｜User｜>3+3?<｜Assistant｜><think>\n");
}

TEST(TokenizerChat, TemplatesWithEscapedNewlinesAreRecognised) {
  std::string escaped;
  for (char c : r1_template()) escaped += c == '\n' ? std::string("\\n") : std::string(1, c);
  EXPECT_EQ(format_of(escaped).kind(), ChatFormat::Kind::DeepSeekR1);
  escaped.clear();
  for (char c : std::string(kDeepSeekV3ChatTemplate)) escaped += c == '\n' ? std::string("\\n") : std::string(1, c);
  EXPECT_EQ(format_of(escaped).kind(), ChatFormat::Kind::DeepSeekV3);
}

TEST(TokenizerChat, UnknownTemplatesAndBadMessagesFailClearly) {
  ChatFormat unknown = format_of("{% for m in messages %}{{ m['content'] }}{% endfor %}");
  EXPECT_EQ(unknown.kind(), ChatFormat::Kind::Unknown);
  try {
    unknown.render(json::array(), true);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unsupported chat_template"), std::string::npos) << e.what();
  }
  ChatFormat v3 = format_of(kDeepSeekV3ChatTemplate);
  try {
    v3.render(json::parse(R"([{"role":"user","content":"a"},{"role":"user","content":null}])"), true);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "messages[1].content: expected a string, got null");
  }
  EXPECT_THROW(v3.render(json::parse(R"([{"role":"assistant","content":null,"tool_calls":[{"type":"function",
      "function":{"name":"f","arguments":{"a":1}}}]}])"), true), Error);
  EXPECT_THROW(ChatFormat().render(json::array(), true), Error);
}

TEST(TokenizerChat, SplitReasoning) {
  auto s = split_reasoning("<think>\nLet me think.\n</think>\n\nThe answer is 4.");
  EXPECT_EQ(s.reasoning, "Let me think.");
  EXPECT_EQ(s.answer, "The answer is 4.");
  s = split_reasoning("step one\n</think>\n\n4", true);
  EXPECT_EQ(s.reasoning, "step one");
  EXPECT_EQ(s.answer, "4");
  s = split_reasoning("still thinking", true);
  EXPECT_EQ(s.reasoning, "still thinking");
  EXPECT_EQ(s.answer, "");
  s = split_reasoning("plain answer");
  EXPECT_EQ(s.reasoning, "");
  EXPECT_EQ(s.answer, "plain answer");
}

}  // namespace
}  // namespace dseek::test

#include "tokenizer/text_stream.h"

namespace dseek::test {
namespace {

// Feeds `text` in pieces of `step` bytes.
template <class Stream>
std::vector<std::pair<bool, std::string>> feed(Stream& s, const std::string& text, size_t step) {
  std::vector<std::pair<bool, std::string>> out;
  auto add = [&](const std::vector<ReasoningStream::Part>& parts) {
    for (auto& p : parts) {
      if (!out.empty() && out.back().first == p.reasoning) {
        out.back().second += p.text;
      } else {
        out.push_back({p.reasoning, p.text});
      }
    }
  };
  for (size_t i = 0; i < text.size(); i += step) add(s.push(text.substr(i, step)));
  add(s.flush());
  return out;
}

TEST(TokenizerTextStream, ReasoningIsSeparatedWhateverTheChunking) {
  for (size_t step : {1, 2, 3, 5, 100}) {
    ReasoningStream opened(true);
    auto parts = feed(opened, "weigh it\n</think>\n\nIt is 4.", step);
    ASSERT_EQ(parts.size(), 2u) << step;
    EXPECT_EQ(parts[0], std::make_pair(true, std::string("weigh it\n")));
    EXPECT_EQ(parts[1], std::make_pair(false, std::string("\n\nIt is 4.")));
    ReasoningStream closed(false);
    parts = feed(closed, "\n<think>hm</think>Yes. <think> stays", step);
    ASSERT_EQ(parts.size(), 2u) << step;
    EXPECT_EQ(parts[0], std::make_pair(true, std::string("hm")));
    EXPECT_EQ(parts[1], std::make_pair(false, std::string("Yes. <think> stays")));
    ReasoningStream plain(false);
    parts = feed(plain, "  <thin air", step);
    ASSERT_EQ(parts.size(), 1u) << step;
    EXPECT_EQ(parts[0], std::make_pair(false, std::string("  <thin air")));
  }
}

TEST(TokenizerTextStream, StopStringsHoldBackOnlyWhatMightStartOne) {
  StopStrings s({"\nUser:", "END"});
  std::string shown = s.push("Hello\nUs");
  EXPECT_EQ(shown, "Hello");
  shown += s.push("ed to it. E");
  EXPECT_EQ(shown, "Hello\nUsed to it. ");
  shown += s.push("ND and more");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(shown, "Hello\nUsed to it. ");
  EXPECT_EQ(s.push("x"), "");
  StopStrings none({"zzz"});
  std::string a = none.push("caf\xC3");
  EXPECT_EQ(a, "caf");
  a += none.push("\xA9 z");
  a += none.flush();
  EXPECT_EQ(a, "café z");
}

}  // namespace
}  // namespace dseek::test
