#include "serve/completion_stream.h"

#include <chrono>

#include "serve/api_error.h"
#include "tokenizer/byte_level.h"

namespace dseek::serve {

using json = nlohmann::json;

std::string token_bytes(const Tokenizer& tok, int32_t id) {
  const std::string piece = tok.id_to_token(id);
  std::string bytes;
  if (!tok.is_special(id) && tok::byte_level_decode(piece, bytes)) return bytes;
  return piece;
}

json usage_json(const EngineUsage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

CompletionStream::CompletionStream(const Tokenizer& tok, CompletionMeta meta) : tok_(tok), meta_(std::move(meta)) {
  for (int c = 0; c < meta_.n; c++) {
    choices_.emplace_back(tok_, meta_.stop, meta_.reasoning_opened);
    choices_.back().logprobs = meta_.chat ? json{{"content", json::array()}}
                                          : json{{"tokens", json::array()}, {"token_logprobs", json::array()},
                                                 {"top_logprobs", json::array()}, {"text_offset", json::array()}};
  }
  if (meta_.stream && meta_.chat) {
    std::lock_guard lock(mu_);
    for (int c = 0; c < meta_.n; c++) {
      json chunk = chunk_base();
      chunk["choices"] = json::array(
          {{{"index", c}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"logprobs", nullptr}, {"finish_reason", nullptr}}});
      send(chunk);
    }
  }
}

json CompletionStream::chunk_base() const {
  return {{"id", meta_.id},
          {"object", meta_.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", meta_.created},
          {"model", meta_.model},
          {"system_fingerprint", "dseek"}};
}

void CompletionStream::send(const json& chunk) {
  out_ += "data: ";
  out_ += chunk.dump(-1, ' ', false, json::error_handler_t::replace);
  out_ += "\n\n";
  cv_.notify_all();
}

json CompletionStream::logprob_entry(const EngineToken& t) const {
  auto entry = [&](int32_t id, float lp) {
    const std::string b = token_bytes(tok_, id);
    json bytes = json::array();
    for (unsigned char ch : b) bytes.push_back(int(ch));
    return json{{"token", tok_.decode({id})}, {"logprob", lp}, {"bytes", bytes}};
  };
  json e = entry(t.id, t.logprob);
  json top = json::array();
  for (const auto& tl : t.top) top.push_back(entry(tl.token, tl.logprob));
  e["top_logprobs"] = top;
  return e;
}

void CompletionStream::emit_text(int c, const std::string& visible, json lp) {
  std::vector<ReasoningStream::Part> parts;
  if (meta_.chat) {
    parts = choices_[size_t(c)].reasoning.push(visible);
  } else if (!visible.empty()) {
    parts.push_back({false, visible});
  }
  emit_parts(c, parts, std::move(lp));
}

void CompletionStream::emit_parts(int c, const std::vector<ReasoningStream::Part>& parts, json lp) {
  Choice& ch = choices_[size_t(c)];
  // a completions logprobs entry
  json clp;
  if (!lp.is_null() && !meta_.chat) {
    json top = json::object();
    for (const auto& e : lp["top_logprobs"]) top[e["token"].get<std::string>()] = e["logprob"];
    clp = {{"tokens", {lp["token"]}}, {"token_logprobs", {lp["logprob"]}}, {"top_logprobs", {top}},
           {"text_offset", {ch.text_offset}}};
    for (const char* k : {"tokens", "token_logprobs", "top_logprobs", "text_offset"}) ch.logprobs[k].push_back(clp[k][0]);
  } else if (!lp.is_null()) {
    ch.logprobs["content"].push_back(lp);
  }
  for (const auto& p : parts) (p.reasoning ? ch.reasoning_text : ch.content) += p.text;
  for (const auto& p : parts) ch.text_offset += p.text.size();
  if (!meta_.stream) return;
  if (meta_.chat) {
    bool first = true;
    for (const auto& p : parts) {
      if (p.text.empty()) continue;
      json chunk = chunk_base();
      json choice = {{"index", c}, {"delta", {{p.reasoning ? "reasoning_content" : "content", p.text}}},
                     {"logprobs", first && !lp.is_null() ? json{{"content", {lp}}} : json(nullptr)},
                     {"finish_reason", nullptr}};
      chunk["choices"] = json::array({choice});
      send(chunk);
      first = false;
    }
    if (first && !lp.is_null()) {  // a token without visible text yet: its logprobs alone
      json chunk = chunk_base();
      chunk["choices"] = json::array(
          {{{"index", c}, {"delta", json::object()}, {"logprobs", {{"content", {lp}}}}, {"finish_reason", nullptr}}});
      send(chunk);
    }
  } else {
    std::string text;
    for (const auto& p : parts) text += p.text;
    if (text.empty() && clp.is_null()) return;
    json chunk = chunk_base();
    chunk["choices"] = json::array({{{"index", c}, {"text", text}, {"logprobs", clp.is_null() ? json(nullptr) : clp},
                                     {"finish_reason", nullptr}}});
    send(chunk);
  }
}

bool CompletionStream::on_token(int c, const EngineToken& t) {
  std::lock_guard lock(mu_);
  if (gone_) return false;
  Choice& ch = choices_[size_t(c)];
  if (ch.stops.stopped()) return false;
  const std::string text = t.is_stop_id ? std::string() : ch.decoder->push(t.id);
  const std::string visible = ch.stops.push(text);
  emit_text(c, visible, meta_.logprobs >= 0 && !t.is_stop_id ? logprob_entry(t) : json());
  return !ch.stops.stopped();
}

void CompletionStream::on_finish(int c, const std::string& reason) {
  std::lock_guard lock(mu_);
  Choice& ch = choices_[size_t(c)];
  if (!ch.stops.stopped()) {
    const std::string rest = ch.stops.push(ch.decoder->flush());
    emit_text(c, rest + (ch.stops.stopped() ? "" : ch.stops.flush()), json());
  }
  if (meta_.chat) emit_parts(c, ch.reasoning.flush(), json());  // what the reasoning splitter still holds
  ch.finish_reason = reason == "length" ? "length" : "stop";
  if (meta_.stream) {
    json chunk = chunk_base();
    if (meta_.chat)
      chunk["choices"] = json::array(
          {{{"index", c}, {"delta", json::object()}, {"logprobs", nullptr}, {"finish_reason", ch.finish_reason}}});
    else
      chunk["choices"] = json::array({{{"index", c}, {"text", ""}, {"logprobs", nullptr}, {"finish_reason", ch.finish_reason}}});
    send(chunk);
  }
}

void CompletionStream::on_done(const EngineUsage& usage, const std::string& error) {
  std::lock_guard lock(mu_);
  if (meta_.stream) {
    if (!error.empty()) send(error_json("generation failed: " + error, "server_error", "", ""));
    if (meta_.include_usage) {
      json chunk = chunk_base();
      chunk["choices"] = json::array();
      chunk["usage"] = usage_json(usage);
      send(chunk);
    }
    out_ += "data: [DONE]\n\n";
  } else if (!error.empty()) {
    out_ = error_json("generation failed: " + error, "server_error", "", "").dump();
  } else {
    json r = chunk_base();
    r["object"] = meta_.chat ? "chat.completion" : "text_completion";
    json choices = json::array();
    for (int c = 0; c < meta_.n; c++) {
      const Choice& ch = choices_[size_t(c)];
      json choice = {{"index", c}, {"finish_reason", ch.finish_reason},
                     {"logprobs", meta_.logprobs >= 0 ? ch.logprobs : json(nullptr)}};
      if (meta_.chat) {
        json msg = {{"role", "assistant"}, {"content", ch.content}};
        if (!ch.reasoning_text.empty() || meta_.reasoning_opened) msg["reasoning_content"] = ch.reasoning_text;
        choice["message"] = msg;
      } else {
        choice["text"] = ch.content;
      }
      choices.push_back(choice);
    }
    r["choices"] = choices;
    r["usage"] = usage_json(usage);
    out_ = r.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  finished_ = true;
  cv_.notify_all();
}

std::string CompletionStream::take(int timeout_ms, bool& finished) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return !out_.empty() || finished_; });
  std::string s;
  s.swap(out_);
  finished = finished_;
  return s;
}

bool CompletionStream::is_finished() {
  std::lock_guard lock(mu_);
  return finished_;
}

}  // namespace dseek::serve
