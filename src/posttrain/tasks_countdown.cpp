// Countdown (TinyZero-style): reach a target from given numbers with + - * /, each number used once. Targets
// are reachable by construction: a random expression tree over the numbers with positive integer
// intermediate results.
#include <algorithm>
#include <string>

#include "core/error.h"
#include "posttrain/task_util.h"
#include "posttrain/verifier.h"

namespace dseek {

namespace {

// A sub-expression: its value, text, and precedence (3 number, 2 * /, 1 + -) for minimal parentheses.
struct Node {
  long long value;
  std::string text;
  int prec = 3;
};

Node combine(const Node& l, char op, const Node& r, long long value) {
  const int p = (op == '+' || op == '-') ? 1 : 2;
  // left-associative: the right operand also needs parentheses at equal precedence after - or /
  const bool paren_l = l.prec < p, paren_r = r.prec < p || (r.prec == p && (op == '-' || op == '/'));
  std::string lt = paren_l ? "(" + l.text + ")" : l.text, rt = paren_r ? "(" + r.text + ")" : r.text;
  return {value, fmt::format("{} {} {}", lt, op, rt), p};
}

class CountdownTask : public Task {
 public:
  explicit CountdownTask(const TaskOptions& o) : o_(o) {
    if (o.numbers < 2 || o.numbers > 6) fail("task countdown: numbers {}: must be between 2 and 6", o.numbers);
    if (o.max_number < 2 || o.max_number > 1000)
      fail("task countdown: max_number {}: must be between 2 and 1000", o.max_number);
    if (o.max_target < 1) fail("task countdown: max_target {}: must be at least 1", o.max_target);
  }
  std::string name() const override { return "countdown"; }

  TaskExample example(const std::string& split, uint64_t index) const override {
    return draw_example(name(), o_.seed, split, index, [&](Rng& rng) {
      std::vector<long long> numbers;
      std::vector<std::string> steps;
      Node root{0, ""};
      for (int tries = 0; root.value < 1 || root.value > o_.max_target; tries++) {
        if (tries == 10000) fail("task countdown: no target within 1..{} in 10000 draws", o_.max_target);
        numbers.clear();
        steps.clear();
        root = build(rng, numbers, steps);
      }
      TaskExample ex;
      ex.prompt = fmt::format("Using the numbers [{}], create an equation that equals {}. You can use + - * / and "
                              "each number exactly once. Show your thinking in <think></think> and the equation in "
                              "<answer></answer>.", fmt::join(numbers, ", "), root.value);
      ex.answer = std::to_string(root.value);
      ex.meta = {{"numbers", numbers}, {"target", root.value}, {"expression", root.text}, {"steps", steps}};
      std::vector<long long> sorted = numbers;
      std::sort(sorted.begin(), sorted.end());
      return std::pair{fmt::format("{}={}", fmt::join(sorted, ","), root.value), ex};
    });
  }

  std::string solution(const TaskExample& ex) const override {
    if (!ex.meta.contains("expression") || !ex.meta.contains("steps"))
      fail("task countdown: example meta has no 'expression' and 'steps'");
    std::string think;
    for (const auto& s : ex.meta["steps"]) think += s.get<std::string>() + "\n";
    return fmt::format("<think>\n{}</think>\n<answer>{}</answer>", think, ex.meta["expression"].get<std::string>());
  }

  Reward score(const TaskExample& ex, const std::string& completion) const override {
    if (!ex.meta.contains("numbers") || !ex.meta.contains("target"))
      fail("task countdown: example meta has no 'numbers' and 'target'");
    Reward r;
    r.format = format_ok(completion) ? 1 : 0;
    auto answer = extract_answer(completion);
    r.accuracy = answer && countdown_check(*answer, ex.meta["numbers"].get<std::vector<long long>>(),
                                           ex.meta["target"].get<long long>()) == true
                     ? 1
                     : 0;
    return r;
  }

 private:
  // Draws the numbers, then combines random pairs until one node is left; steps are "a op b = c".
  Node build(Rng& rng, std::vector<long long>& numbers, std::vector<std::string>& steps) const {
    std::vector<Node> pool;
    for (int i = 0; i < o_.numbers; i++) {
      numbers.push_back(1 + (long long)rng.below(uint64_t(o_.max_number)));
      pool.push_back({numbers.back(), std::to_string(numbers.back())});
    }
    while (pool.size() > 1) {
      size_t i = rng.below(pool.size()), j = rng.below(pool.size() - 1);
      if (j >= i) j++;
      Node a = pool[i], b = pool[j];
      if (a.value < b.value) std::swap(a, b);  // larger first: differences stay positive
      // operations whose result is a positive integer
      std::string ops = "+*";
      if (a.value > b.value) ops += '-';
      if (b.value > 1 && a.value % b.value == 0) ops += '/';
      const char op = ops[rng.below(ops.size())];
      const long long v = op == '+' ? a.value + b.value : op == '-' ? a.value - b.value
                        : op == '*' ? a.value * b.value : a.value / b.value;
      steps.push_back(fmt::format("{} {} {} = {}", a.value, op, b.value, v));
      pool.erase(pool.begin() + std::max(i, j));
      pool.erase(pool.begin() + std::min(i, j));
      pool.push_back(combine(a, op, b, v));
    }
    return pool[0];
  }

  TaskOptions o_;
};

}  // namespace

std::unique_ptr<Task> make_countdown_task(const TaskOptions& o) { return std::make_unique<CountdownTask>(o); }

}  // namespace dseek
