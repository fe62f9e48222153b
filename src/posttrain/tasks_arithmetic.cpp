// Arithmetic: "What is a op b?" over multi-digit integers; + - * and exact division.
#include <string>

#include "core/error.h"
#include "posttrain/task_util.h"
#include "posttrain/verifier.h"

namespace dseek {

namespace {

long long pow10(int d) {
  long long p = 1;
  while (d-- > 0) p *= 10;
  return p;
}

// Uniform in [lo, hi].
long long uniform_int(Rng& rng, long long lo, long long hi) { return lo + (long long)rng.below(uint64_t(hi - lo + 1)); }

// Column addition of non-negative a + b, one line per column from the ones up.
std::string column_addition(long long a, long long b) {
  std::string out, da = std::to_string(a), db = std::to_string(b);
  const size_t cols = std::max(da.size(), db.size());
  int carry = 0;
  for (size_t k = 0; k < cols; k++) {
    std::vector<int> terms;
    if (k < da.size()) terms.push_back(da[da.size() - 1 - k] - '0');
    if (k < db.size()) terms.push_back(db[db.size() - 1 - k] - '0');
    if (carry) terms.push_back(carry);
    int sum = 0;
    for (int t : terms) sum += t;
    std::string line = fmt::format("{}", fmt::join(terms, " + "));
    if (terms.size() > 1) line += fmt::format(" = {}", sum);
    if (k + 1 == cols) {
      out += fmt::format("{}, write {}\n", line, sum);
    } else {
      carry = sum / 10;
      out += fmt::format("{}, write {}{}\n", line, sum % 10, carry ? fmt::format(" carry {}", carry) : "");
    }
  }
  return out;
}

// a * b by the non-zero digits of b: "47 * 385 = 47 * 300 + 47 * 80 + 47 * 5\n= 14100 + 3760 + 235\n".
std::string partial_products(long long a, long long b) {
  std::vector<long long> parts;
  std::string db = std::to_string(b);
  for (size_t k = 0; k < db.size(); k++)
    if (db[k] != '0') parts.push_back((db[k] - '0') * pow10(int(db.size() - 1 - k)));
  if (parts.size() < 2) return "";
  std::vector<std::string> terms, values;
  for (long long p : parts) {
    terms.push_back(fmt::format("{} * {}", a, p));
    values.push_back(std::to_string(a * p));
  }
  return fmt::format("{} * {} = {}\n= {}\n", a, b, fmt::join(terms, " + "), fmt::join(values, " + "));
}

class ArithmeticTask : public Task {
 public:
  explicit ArithmeticTask(const TaskOptions& o) : o_(o) {
    if (o.min_digits < 1 || o.max_digits > 9 || o.min_digits > o.max_digits)
      fail("task arithmetic: digits {}..{}: need 1 <= min_digits <= max_digits <= 9", o.min_digits, o.max_digits);
    if (o.ops.empty() || o.ops.find_first_not_of("+-*/") != std::string::npos)
      fail("task arithmetic: ops '{}': use one or more of + - * /", o.ops);
  }
  std::string name() const override { return "arithmetic"; }

  TaskExample example(const std::string& split, uint64_t index) const override {
    return draw_example(name(), o_.seed, split, index, [&](Rng& rng) {
      const char op = o_.ops[rng.below(o_.ops.size())];
      long long a = operand(rng), b = operand(rng), result = 0;
      switch (op) {
        case '+': result = a + b; break;
        case '-': result = a - b; break;
        case '*': result = a * b; break;
        default:  // exact division: a = b * q with divisor and quotient of the configured sizes
          b = std::max(1LL, b);
          result = std::max(1LL, a);
          a = b * result;
      }
      TaskExample ex;
      ex.prompt = fmt::format("What is {} {} {}? Show your thinking in <think></think> and the final answer in "
                              "<answer></answer>.", a, op, b);
      ex.answer = std::to_string(result);
      ex.meta = {{"a", a}, {"op", std::string(1, op)}, {"b", b}, {"result", result}};
      return std::pair{fmt::format("{}{}{}", a, op, b), ex};
    });
  }

  std::string solution(const TaskExample& ex) const override {
    const long long a = field(ex, "a"), b = field(ex, "b"), r = field(ex, "result");
    const std::string op = ex.meta.value("op", "");
    std::string think;
    if (op == "+") {
      think = column_addition(a, b);
    } else if (op == "-" && a < b) {
      think = fmt::format("{} - {} = {}, so the result is negative\n", b, a, b - a);
    } else if (op == "*") {
      think = partial_products(a, b);
    } else if (op == "/") {
      think = fmt::format("{} * {} = {}\n", b, r, a);
    }
    return fmt::format("<think>\n{}{} {} {} = {}\n</think>\n<answer>{}</answer>", think, a, op, b, r, r);
  }

  Reward score(const TaskExample& ex, const std::string& completion) const override {
    Reward r;
    r.format = format_ok(completion) ? 1 : 0;
    auto expected = parse_integer(ex.answer);
    if (!expected) fail("task arithmetic: example answer '{}' is not an integer", ex.answer);
    auto answer = extract_answer(completion);
    r.accuracy = answer && parse_integer(*answer) == expected ? 1 : 0;
    return r;
  }

 private:
  // A number with a uniform digit count in [min_digits, max_digits] (1 digit: 0-9).
  long long operand(Rng& rng) const {
    const int d = int(uniform_int(rng, o_.min_digits, o_.max_digits));
    return uniform_int(rng, d == 1 ? 0 : pow10(d - 1), pow10(d) - 1);
  }
  static long long field(const TaskExample& ex, const char* key) {
    if (!ex.meta.contains(key) || !ex.meta[key].is_number_integer())
      fail("task arithmetic: example meta has no integer '{}'", key);
    return ex.meta[key].get<long long>();
  }

  TaskOptions o_;
};

}  // namespace

std::unique_ptr<Task> make_arithmetic_task(const TaskOptions& o) { return std::make_unique<ArithmeticTask>(o); }

}  // namespace dseek
