// Built-in post-training tasks (generators, solutions, rewards), the user reward command and `dseek eval`.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>

#include "core/error.h"
#include "model/model.h"
#include "posttrain/eval.h"
#include "posttrain/reward_command.h"
#include "posttrain/task.h"
#include "posttrain/verifier.h"
#include "tokenizer_test_util.h"

namespace dseek {
namespace {

using test::CommandResult;
using test::error_of;
using test::run_dseek;
using test::TempDir;

// The problem an example poses, independent of how the prompt words it.
std::string problem_key(const std::string& task, const TaskExample& ex) {
  if (task == "arithmetic")
    return ex.meta["a"].dump() + ex.meta["op"].get<std::string>() + ex.meta["b"].dump();
  auto numbers = ex.meta["numbers"].get<std::vector<long long>>();
  std::sort(numbers.begin(), numbers.end());
  return nlohmann::json(numbers).dump() + "=" + ex.answer;
}

struct Setting {
  std::string task;
  TaskOptions opt;
};
std::vector<Setting> settings() {
  std::vector<Setting> s;
  s.push_back({"arithmetic", {}});
  s.push_back({"arithmetic", {.seed = 7, .min_digits = 1, .max_digits = 1, .ops = "+-*/"}});
  s.push_back({"arithmetic", {.seed = 3, .min_digits = 2, .max_digits = 5, .ops = "/"}});
  s.push_back({"countdown", {}});
  s.push_back({"countdown", {.seed = 11, .numbers = 2}});
  s.push_back({"countdown", {.seed = 5, .numbers = 5, .max_number = 20, .max_target = 100}});
  return s;
}

TEST(Tasks, NamesAndUnknownNames) {
  EXPECT_EQ(task_names(), (std::vector<std::string>{"arithmetic", "countdown"}));
  for (const auto& n : task_names()) EXPECT_EQ(make_task(n, {})->name(), n);
  EXPECT_EQ(error_of([] { make_task("sudoku", {}); }), "unknown task 'sudoku' (tasks: arithmetic, countdown)");
  auto t = make_task("arithmetic", {});
  EXPECT_EQ(error_of([&] { t->example("test", 0); }), "task arithmetic: unknown split 'test' (expected train or eval)");
}

TEST(Tasks, BadOptionsAreClearErrors) {
  EXPECT_NE(error_of([] { make_task("arithmetic", {.min_digits = 0}); }).find("min_digits"), std::string::npos);
  EXPECT_NE(error_of([] { make_task("arithmetic", {.min_digits = 4, .max_digits = 3}); }).find("digits 4..3"),
            std::string::npos);
  EXPECT_NE(error_of([] { make_task("arithmetic", {.ops = "+%"}); }).find("ops '+%'"), std::string::npos);
  EXPECT_NE(error_of([] { make_task("countdown", {.numbers = 1}); }).find("numbers 1"), std::string::npos);
  EXPECT_NE(error_of([] { make_task("countdown", {.numbers = 7}); }).find("numbers 7"), std::string::npos);
}

TEST(Tasks, ExamplesAreDeterministicInSeedSplitAndIndex) {
  for (const auto& s : settings()) {
    auto a = make_task(s.task, s.opt), b = make_task(s.task, s.opt);
    TaskOptions other = s.opt;
    other.seed += 1;
    auto c = make_task(s.task, other);
    int differ = 0;
    for (const std::string split : {"train", "eval"})
      for (uint64_t i = 0; i < 200; i++) {
        TaskExample x = a->example(split, i), y = b->example(split, i);
        ASSERT_EQ(x.prompt, y.prompt) << s.task << " " << split << " " << i;
        ASSERT_EQ(x.answer, y.answer);
        ASSERT_EQ(x.meta, y.meta);
        ASSERT_EQ(a->example(split, i).prompt, x.prompt);  // again, same instance
        differ += c->example(split, i).prompt != x.prompt;
      }
    EXPECT_GT(differ, 200) << s.task << ": another seed should give other problems";
  }
}

TEST(Tasks, TrainAndEvalSplitsNeverShareAProblem) {
  for (const auto& s : settings()) {
    auto t = make_task(s.task, s.opt);
    std::set<std::string> train, eval;
    for (uint64_t i = 0; i < 2000; i++) {
      train.insert(problem_key(s.task, t->example("train", i)));
      eval.insert(problem_key(s.task, t->example("eval", i)));
    }
    for (const auto& k : eval) ASSERT_FALSE(train.count(k)) << s.task << ": " << k << " is in both splits";
    EXPECT_GT(eval.size(), s.opt.max_digits == 1 ? 10u : 500u) << s.task;  // both splits are varied
    EXPECT_GT(train.size(), s.opt.max_digits == 1 ? 10u : 500u) << s.task;
  }
}

TEST(Tasks, SolutionsScoreFullRewardAndWrongAnswersDoNot) {
  for (const auto& s : settings()) {
    auto t = make_task(s.task, s.opt);
    for (const std::string split : {"train", "eval"})
      for (uint64_t i = 0; i < 500; i++) {
        TaskExample ex = t->example(split, i);
        std::string sol = t->solution(ex);
        Reward r = t->score(ex, sol);
        ASSERT_EQ(r.accuracy, 1) << s.task << " " << ex.prompt << "\n" << sol;
        ASSERT_EQ(r.format, 1) << sol;
        ASSERT_TRUE(sol.starts_with("<think>\n")) << sol;
        ASSERT_NE(sol.find("</think>\n<answer>"), std::string::npos) << sol;
        // the right answer in a bad format, and a wrong answer in the right format
        Reward bare = t->score(ex, "<answer>" + *extract_answer(sol) + "</answer>");
        EXPECT_EQ(bare.accuracy, 1);
        EXPECT_EQ(bare.format, 0);
        std::string wrong = s.task == "arithmetic" ? std::to_string(*parse_integer(ex.answer) + 1)
                                                   : ex.meta["expression"].get<std::string>() + " + 1";
        Reward w = t->score(ex, "<think>x</think><answer>" + wrong + "</answer>");
        EXPECT_EQ(w.accuracy, 0) << wrong;
        EXPECT_EQ(w.format, 1);
      }
  }
}

TEST(Tasks, ArithmeticOperandsFollowTheOptions) {
  TaskOptions o{.seed = 2, .min_digits = 2, .max_digits = 4, .ops = "+-*/"};
  auto t = make_task("arithmetic", o);
  std::set<std::string> ops;
  std::set<size_t> digits;
  for (uint64_t i = 0; i < 1000; i++) {
    TaskExample ex = t->example("train", i);
    long long a = ex.meta["a"], b = ex.meta["b"], r = ex.meta["result"];
    std::string op = ex.meta["op"];
    ops.insert(op);
    if (op == "/") {
      ASSERT_EQ(a % b, 0);
      ASSERT_EQ(a / b, r);
      a = r;  // the quotient has the configured size
    }
    if (op == "+") ASSERT_EQ(a + b, r);
    if (op == "-") ASSERT_EQ(a - b, r);
    if (op == "*") ASSERT_EQ(a * b, r);
    for (long long v : {a, b}) {
      digits.insert(std::to_string(v).size());
      ASSERT_GE(std::to_string(v).size(), 2u);
      ASSERT_LE(std::to_string(v).size(), 4u);
    }
    ASSERT_EQ(ex.answer, std::to_string(r));
    ASSERT_NE(ex.prompt.find(fmt::format("{} {} {}", ex.meta["a"].get<long long>(), op, ex.meta["b"].get<long long>())),
              std::string::npos);
    ASSERT_NE(ex.prompt.find("<answer></answer>"), std::string::npos);
  }
  EXPECT_EQ(ops, (std::set<std::string>{"+", "-", "*", "/"}));
  EXPECT_EQ(digits, (std::set<size_t>{2, 3, 4}));
}

TEST(Tasks, ArithmeticSolutionShowsTheWork) {
  auto t = make_task("arithmetic", {});
  TaskExample ex{"What is 47 + 385?", "432", {{"a", 47}, {"op", "+"}, {"b", 385}, {"result", 432}}};
  EXPECT_EQ(t->solution(ex),
            "<think>\n7 + 5 = 12, write 2 carry 1\n4 + 8 + 1 = 13, write 3 carry 1\n3 + 1 = 4, write 4\n"
            "47 + 385 = 432\n</think>\n<answer>432</answer>");
  TaskExample mul{"What is 47 * 385?", "18095", {{"a", 47}, {"op", "*"}, {"b", 385}, {"result", 18095}}};
  EXPECT_EQ(t->solution(mul),
            "<think>\n47 * 385 = 47 * 300 + 47 * 80 + 47 * 5\n= 14100 + 3760 + 235\n47 * 385 = 18095\n</think>\n"
            "<answer>18095</answer>");
  EXPECT_EQ(t->score(ex, "<think>hm</think> <answer>\uff14\uff13\uff12</answer>").accuracy, 1);
  EXPECT_EQ(t->score(ex, "<think>hm</think> <answer>432.0</answer>").accuracy, 0);
  EXPECT_EQ(t->score(ex, "the answer is \\boxed{432}").accuracy, 1);
}

TEST(Tasks, CountdownTargetsAreReachable) {
  for (int count = 2; count <= 6; count++) {
    TaskOptions o{.seed = uint64_t(count), .numbers = count};
    auto t = make_task("countdown", o);
    for (const std::string split : {"train", "eval"})
      for (uint64_t i = 0; i < 300; i++) {
        TaskExample ex = t->example(split, i);
        auto numbers = ex.meta["numbers"].get<std::vector<long long>>();
        long long target = ex.meta["target"];
        ASSERT_EQ(numbers.size(), size_t(count));
        for (long long n : numbers) ASSERT_TRUE(n >= 1 && n <= o.max_number) << n;
        ASSERT_TRUE(target >= 1 && target <= o.max_target) << target;
        ASSERT_EQ(ex.answer, std::to_string(target));
        ASSERT_EQ(countdown_check(ex.meta["expression"], numbers, target), true) << ex.meta.dump();
        ASSERT_NE(ex.prompt.find(fmt::format("[{}]", fmt::join(numbers, ", "))), std::string::npos) << ex.prompt;
        ASSERT_NE(ex.prompt.find(fmt::format("equals {}.", target)), std::string::npos) << ex.prompt;
      }
  }
}

TEST(Tasks, CountdownScoresAnyCorrectEquation) {
  auto t = make_task("countdown", {});
  TaskExample ex{"...", "63", {{"numbers", {25, 4, 3}}, {"target", 63}, {"expression", "(25 - 4) * 3"}, {"steps", {}}}};
  EXPECT_EQ(t->score(ex, "<think>a</think><answer>3 * (25 - 4)</answer>").accuracy, 1);
  EXPECT_EQ(t->score(ex, "<think>a</think><answer>3 * 25 - 4</answer>").accuracy, 0);
  EXPECT_EQ(t->score(ex, "<think>a</think><answer>63</answer>").accuracy, 0);
  EXPECT_EQ(t->score(ex, "<think>a</think><answer>(25 - 4) * 3 * 3 / 3</answer>").accuracy, 0);
}

// ---- reward command

std::vector<nlohmann::json> items(size_t n, const std::string& completion = "42") {
  std::vector<nlohmann::json> out;
  for (size_t i = 0; i < n; i++)
    out.push_back(reward_item({"What is " + std::to_string(i) + "?", std::to_string(i), {{"i", i}}}, completion));
  return out;
}

TEST(RewardCommand, AwkOneLinerScoresEachItem) {
  auto in = items(3);
  in[1]["completion"] = "<answer>1</answer>";
  // 1 when the completion holds the answer, else 0
  RewardCommand rc(R"(awk '{ if (index($0, "\"completion\":\"<answer>1</answer>\"")) print 1; else print 0 }')");
  EXPECT_EQ(rc.score(in), (std::vector<double>{0, 1, 0}));
  EXPECT_EQ(rc.score({}), std::vector<double>{});
  // JSON objects, blank lines, and the items as JSON on stdin
  RewardCommand obj(R"(awk '{ print "{\"reward\": " NR / 4 "}"; print "" }')");
  EXPECT_EQ(obj.score(items(2)), (std::vector<double>{0.25, 0.5}));
  TempDir d;
  RewardCommand tee("tee '" + (d / "in.jsonl") + "' | awk '{ print -1.5 }'");
  EXPECT_EQ(tee.score(items(2)), (std::vector<double>{-1.5, -1.5}));
  std::vector<nlohmann::json> seen = test::read_jsonl(d / "in.jsonl");
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1], (nlohmann::json{{"prompt", "What is 1?"}, {"completion", "42"}, {"answer", "1"}, {"meta", {{"i", 1}}}}));
}

TEST(RewardCommand, LargeBatchesDoNotDeadlock) {
  // 8 MB in, one line out per line in, written while input is still arriving
  auto in = items(2000, std::string(4000, 'x') + "\n\"quoted\"");
  RewardCommand rc("awk '{ print length($0) % 7 }'");
  std::vector<double> r = rc.score(in);
  ASSERT_EQ(r.size(), in.size());
  EXPECT_EQ(r[0], double(in[0].dump().size() % 7));
  // a command that never reads its input
  RewardCommand ignores("i=0; while [ $i -lt 2000 ]; do echo 1; i=$((i+1)); done");
  EXPECT_EQ(ignores.score(in).size(), 2000u);
}

TEST(RewardCommand, FailuresAreClearErrors) {
  EXPECT_EQ(error_of([] { RewardCommand("cat >/dev/null; exit 3").score(items(2)); }),
            "reward command 'cat >/dev/null; exit 3': exited with status 3");
  EXPECT_EQ(error_of([] { RewardCommand("echo 1").score(items(2)); }),
            "reward command 'echo 1': wrote 1 rewards for 2 completions (one line per input line expected)");
  EXPECT_EQ(error_of([] { RewardCommand("awk '{ print \"good\" }'").score(items(2)); }),
            "reward command 'awk '{ print \"good\" }'': output line 1 is not a number or {\"reward\": number}: 'good'");
  EXPECT_NE(error_of([] { RewardCommand("no_such_reward_cmd_xyz 2>/dev/null").score(items(1)); })
                .find("exited with status 127 (command not found?)"),
            std::string::npos);
  EXPECT_EQ(error_of([] { RewardCommand("kill -9 $$").score(items(1)); }), "reward command 'kill -9 $$': killed by signal 9");
  EXPECT_EQ(error_of([] { RewardCommand("sleep 10", 0.3).score(items(1)); }), "reward command 'sleep 10': no result within 0.3 s");
  EXPECT_EQ(error_of([] { RewardCommand(""); }), "reward command: empty");
}

TEST(RewardCommand, ParsesRewardLines) {
  EXPECT_EQ(parse_reward_line("0.5"), 0.5);
  EXPECT_EQ(parse_reward_line(" 1 \r"), 1.0);
  EXPECT_EQ(parse_reward_line("-1e-3"), -1e-3);
  EXPECT_EQ(parse_reward_line("{\"reward\": 2, \"why\": \"ok\"}"), 2.0);
  for (const char* s : {"", "nan", "inf", "1 2", "1,5", "abc", "{\"r\": 1}", "{\"reward\": \"1\"}", "[1]", "{"})
    EXPECT_EQ(parse_reward_line(s), std::nullopt) << s;
}

// ---- evaluation on a tiny random model

class Eval : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    std::string corpus = *dir_ / "corpus.txt";
    std::ofstream(corpus) << test::read_file_or_empty(test::source_dir() + "/data/tinyshakespeare.txt").substr(0, 100000)
                          << "What is 47 + 385? <think></think><answer>432</answer> 0123456789 + - * / [ ] ( )\n";
    model_ = *dir_ / "model";
    CommandResult r = run_dseek("init --config '" + test::source_dir() + "/configs/tiny.json' --out '" + model_ + "'");
    ASSERT_EQ(r.status, 0) << r.out;
    r = run_dseek("tokenizer train --vocab-size 512 --input '" + corpus + "' --out '" + model_ + "'");
    ASSERT_EQ(r.status, 0) << r.out;
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string last_line(const std::string& out) {
    std::string s = out;
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s.substr(s.rfind('\n') == std::string::npos ? 0 : s.rfind('\n') + 1);
  }
  static TempDir* dir_;
  static std::string model_;
};
TempDir* Eval::dir_ = nullptr;
std::string Eval::model_;

TEST_F(Eval, CliPrintsAccuracyAsTheLastLine) {
  for (const char* task : {"arithmetic", "countdown"}) {
    int status = 0;
    std::string out = test::run_command(test::dseek_binary() + " eval --model '" + model_ + "' --task " + task +
                                            " --n 5 --batch 2 --max-tokens 12 --show 2 --threads 1 2>&1",
                                        &status);
    ASSERT_EQ(status, 0) << out;
    EXPECT_TRUE(std::regex_match(last_line(out), std::regex("^accuracy [0-9.]+$"))) << out;
    EXPECT_NE(out.find("format_rate "), std::string::npos) << out;
    EXPECT_NE(out.find("example 0: "), std::string::npos) << out;
    EXPECT_NE(out.find("example 1: "), std::string::npos) << out;
    EXPECT_EQ(out.find("example 2: "), std::string::npos) << out;  // only --show 2
  }
}

TEST_F(Eval, CliErrors) {
  CommandResult r = run_dseek("eval --model '" + model_ + "' --task sudoku --n 2");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("dseek: error: unknown task 'sudoku' (tasks: arithmetic, countdown)"), std::string::npos) << r.out;
  TempDir d;
  std::string bare = d / "m";
  ASSERT_EQ(run_dseek("init --config '" + test::source_dir() + "/configs/tiny.json' --out '" + bare + "'").status, 0);
  r = run_dseek("eval --model '" + bare + "' --task arithmetic --n 2");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("dseek: error: --model " + bare + ": no tokenizer.json"), std::string::npos) << r.out;
}

TEST_F(Eval, LibraryScoresEveryCompletionWithTheTask) {
  Model m = Model::load(model_);
  Tokenizer tok = Tokenizer::load(model_);
  auto task = make_task("arithmetic", {.seed = 4});
  EvalOptions opt;
  opt.start = 3;
  opt.n = 5;
  opt.max_tokens = 6;
  opt.batch = 2;
  std::vector<size_t> progress;
  opt.progress = [&](size_t done, size_t total) {
    EXPECT_EQ(total, 5u);
    progress.push_back(done);
  };
  EvalResult r = evaluate_task(m, tok, *task, opt);
  EXPECT_EQ(progress, (std::vector<size_t>{2, 4, 5}));
  ASSERT_EQ(r.records.size(), 5u);
  size_t correct = 0, formatted = 0;
  for (size_t i = 0; i < 5; i++) {
    const EvalRecord& e = r.records[i];
    EXPECT_EQ(e.index, 3 + i);
    EXPECT_EQ(e.example.prompt, task->example("eval", 3 + i).prompt);
    EXPECT_GE(e.tokens, 1);
    EXPECT_LE(e.tokens, 6);
    Reward again = task->score(e.example, e.completion);
    EXPECT_EQ(again.accuracy, e.reward.accuracy);
    EXPECT_EQ(again.format, e.reward.format);
    correct += e.reward.accuracy > 0;
    formatted += e.reward.format > 0;
  }
  EXPECT_EQ(r.correct, correct);
  EXPECT_EQ(r.formatted, formatted);
  EXPECT_DOUBLE_EQ(r.accuracy, double(correct) / 5);
  // the prompt is the chat rendering of the user message
  std::vector<int32_t> ids = task_prompt_ids(tok, r.records[0].example, m.config);
  EXPECT_EQ(tok.decode(ids), tok.render_chat(nlohmann::json::array({{{"role", "user"}, {"content", r.records[0].example.prompt}}}), true));
}

}  // namespace
}  // namespace dseek
