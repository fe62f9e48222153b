// Rule-based reward pieces, R1-Zero style: answer extraction, the <think>/<answer> format check, strict
// integer parsing and the countdown expression check. Pure functions of text; no model involved.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dseek {

// The answer a completion gives: the content of the LAST complete <answer>...</answer>, else of the last
// \boxed{...} with balanced braces; trimmed. An answer that is exactly "\boxed{X}" gives X. Nothing (or an
// empty answer) gives nullopt.
std::optional<std::string> extract_answer(const std::string& completion);

// The completion is exactly: optional whitespace, <think>...</think>, optional whitespace,
// <answer>...</answer>, optional whitespace. Neither part holds another of the four tags; the answer is not
// empty (the reasoning may be).
bool format_ok(const std::string& completion);

// A whole integer: surrounding whitespace, an optional sign (+, -, or U+2212 minus), decimal digits of any
// script (Unicode Nd: fullwidth, Arabic-Indic, ...), optionally grouped in threes by ',' ("1,234,567").
// Anything else, or a value outside long long, is nullopt.
std::optional<long long> parse_integer(std::string_view s);

// Countdown: `expression` uses + - * / (also the glyphs × ÷ and U+2212 minus), parentheses, and each of
// `numbers` exactly once (as a multiset); it may end with "= N" where N equals `target`. Evaluated with exact
// rational arithmetic. nullopt: not an expression (garbage, unary signs, unbalanced parentheses, division by
// zero, overflow); false: a valid expression that misuses the numbers or misses the target; true: correct.
std::optional<bool> countdown_check(const std::string& expression, const std::vector<long long>& numbers,
                                    long long target);

// Decimal value 0-9 of a Unicode Nd code point, or -1 for any other character.
int unicode_digit_value(char32_t cp);

}  // namespace dseek
