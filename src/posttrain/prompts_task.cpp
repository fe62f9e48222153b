#include "posttrain/prompts_task.h"

#include "core/error.h"
#include "core/json_util.h"
#include "posttrain/verifier.h"

namespace dseek {

using json = nlohmann::json;

namespace {

class PromptsTask : public Task {
 public:
  PromptsTask(std::string path, std::vector<TaskExample> ex) : path_(std::move(path)), ex_(std::move(ex)) {}
  std::string name() const override { return "prompts:" + path_; }
  TaskExample example(const std::string& split, uint64_t index) const override {
    if (split != "train" && split != "eval") fail("{}: unknown split '{}'", path_, split);
    return ex_[size_t(index % ex_.size())];
  }
  std::string solution(const TaskExample&) const override { fail("{}: prompts files have no worked solutions", path_); }
  Reward score(const TaskExample& ex, const std::string& completion) const override {
    Reward r;
    r.format = format_ok(completion) ? 1.0 : 0.0;
    auto got = extract_answer(completion);
    if (got) {
      auto a = parse_integer(*got), b = parse_integer(ex.answer);
      r.accuracy = (a && b) ? double(*a == *b) : double(*got == ex.answer);
    }
    return r;
  }

 private:
  std::string path_;
  std::vector<TaskExample> ex_;
};

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

}  // namespace

std::unique_ptr<Task> load_prompts_task(const std::string& path) {
  std::vector<TaskExample> ex;
  for_each_json_line(path, [&](const json& j, size_t line_no) {
    if (!j.contains("prompt") || !j["prompt"].is_string()) fail("{}:{}: expected {{\"prompt\": text, \"answer\": text}}", path, line_no);
    TaskExample e;
    e.prompt = j["prompt"].get<std::string>();
    if (j.contains("answer")) e.answer = j["answer"].is_string() ? trim(j["answer"].get<std::string>()) : j["answer"].dump();
    e.meta = j;
    ex.push_back(std::move(e));
  });
  if (ex.empty()) fail("{}: no prompts", path);
  return std::make_unique<PromptsTask>(path, std::move(ex));
}

}  // namespace dseek
