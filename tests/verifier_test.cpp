// Rule-based reward pieces: answer extraction, format check, integer parsing, countdown check.
#include <gtest/gtest.h>

#include <climits>

#include "posttrain/verifier.h"

namespace dseek {
namespace {

using std::nullopt;
using std::optional;
using std::string;

TEST(ExtractAnswer, TakesTheTrimmedContentOfTheAnswerTags) {
  EXPECT_EQ(extract_answer("<think>7 + 5 = 12</think>\n<answer> 12 \n</answer>"), "12");
  EXPECT_EQ(extract_answer("no tags, just 12"), nullopt);
  EXPECT_EQ(extract_answer(""), nullopt);
}

TEST(ExtractAnswer, LastCompleteAnswerWins) {
  EXPECT_EQ(extract_answer("<answer>1</answer> wait, <answer>2</answer>"), "2");
  EXPECT_EQ(extract_answer("<answer>1</answer> then <answer>2"), "1");    // the last one is unclosed
  EXPECT_EQ(extract_answer("<answer>5</answer></answer>"), "5");          // stray closer
  EXPECT_EQ(extract_answer("<answer>1 <answer>2</answer>"), "2");         // nested opener
  EXPECT_EQ(extract_answer("</answer>3<answer>"), nullopt);              // swapped tags
  EXPECT_EQ(extract_answer("<answer>  </answer>"), nullopt);              // empty
  EXPECT_EQ(extract_answer("<answer>4</answer> <answer></answer>"), nullopt);
}

TEST(ExtractAnswer, FallsBackToTheLastBalancedBoxed) {
  EXPECT_EQ(extract_answer("so \\boxed{\\frac{1}{2}}."), "\\frac{1}{2}");
  EXPECT_EQ(extract_answer("\\boxed{1} no, \\boxed{ {2} }"), "{2}");
  EXPECT_EQ(extract_answer("\\boxed{1} and \\boxed{2"), "1");  // the last one never closes
  EXPECT_EQ(extract_answer("\\boxed{}"), nullopt);
  EXPECT_EQ(extract_answer("\\boxed{"), nullopt);
  EXPECT_EQ(extract_answer("<answer>3</answer> \\boxed{4}"), "3");  // tags win
  EXPECT_EQ(extract_answer("<answer>\\boxed{7}</answer>"), "7");
  EXPECT_EQ(extract_answer("<answer>\\boxed{7} + \\boxed{8}</answer>"), "\\boxed{7} + \\boxed{8}");
}

TEST(FormatOk, AcceptsThinkThenAnswerWithOptionalWhitespace) {
  EXPECT_TRUE(format_ok("<think>a</think><answer>1</answer>"));
  EXPECT_TRUE(format_ok(" \n<think>\nlet me see\n</think>\n\n<answer>42</answer>\n"));
  EXPECT_TRUE(format_ok("<think></think>\n<answer>42</answer>"));  // empty reasoning is allowed
  EXPECT_TRUE(format_ok("\u3000<think>x</think>\u00a0<answer>y</answer>"));  // Unicode spaces
}

TEST(FormatOk, RejectsMalformedTags) {
  for (const char* s : {
           "",
           "<answer>1</answer>",                                    // no think
           "<think>a</think>",                                      // no answer
           "<think>a<answer>1</answer>",                            // think unclosed
           "<think>a</think><answer>1",                             // answer unclosed
           "<answer>1</answer><think>a</think>",                    // swapped order
           "</think>a<think><answer>1</answer>",                    // swapped tags
           "<think>a<think>b</think></think><answer>1</answer>",   // nested think
           "<think>a</think><answer>1<answer>2</answer></answer>",  // nested answer
           "<think>a</think><think>b</think><answer>1</answer>",    // duplicated think
           "<think>a</think><answer>1</answer><answer>2</answer>",  // duplicated answer
           "<think>a</think><answer>1</answer></answer>",           // stray closer
           "<think>a <answer>0</answer></think><answer>1</answer>",  // answer inside think
           "<think>a</think><answer><think>b</think>1</answer>",    // think inside answer
           "<think>a</think><answer>  </answer>",                   // empty answer
           "<think>a</think><answer></answer>",
           "So: <think>a</think><answer>1</answer>",                // text before
           "<think>a</think> so <answer>1</answer>",                // text between
           "<think>a</think><answer>1</answer> done",               // text after
           "<think>a</think><answer>1</answer><|EOS|>",
           "<Think>a</Think><Answer>1</Answer>",                    // tags are case-sensitive
           "<think >a</think><answer>1</answer>",
       })
    EXPECT_FALSE(format_ok(s)) << s;
}

TEST(ParseInteger, PlainSignedAndSpaced) {
  EXPECT_EQ(parse_integer("432"), 432);
  EXPECT_EQ(parse_integer("0"), 0);
  EXPECT_EQ(parse_integer("007"), 7);
  EXPECT_EQ(parse_integer("  -17\n"), -17);
  EXPECT_EQ(parse_integer("+5"), 5);
  EXPECT_EQ(parse_integer("\u221212"), -12);  // minus sign
  EXPECT_EQ(parse_integer("\u00a042\u3000"), 42);
  EXPECT_EQ(parse_integer("9223372036854775807"), LLONG_MAX);
  EXPECT_EQ(parse_integer("-9223372036854775808"), LLONG_MIN);
  EXPECT_EQ(parse_integer("9223372036854775808"), nullopt);
  EXPECT_EQ(parse_integer("123456789012345678901234"), nullopt);
}

TEST(ParseInteger, ThousandsSeparators) {
  EXPECT_EQ(parse_integer("1,234"), 1234);
  EXPECT_EQ(parse_integer("-12,345,678"), -12345678);
  EXPECT_EQ(parse_integer("999,000"), 999000);
  EXPECT_EQ(parse_integer("\uff11\uff0c\uff12\uff13\uff14"), 1234);  // fullwidth digits and comma
  for (const char* s : {"1,23", "1234,567", ",123", "1,,234", "1,", "12,34,567", "1,2345", "1 234", "1.234"})
    EXPECT_EQ(parse_integer(s), nullopt) << s;
}

TEST(ParseInteger, UnicodeDecimalDigits) {
  EXPECT_EQ(parse_integer("\uff14\uff13\uff12"), 432);        // fullwidth ４３２
  EXPECT_EQ(parse_integer("\u0664\u0663\u0662"), 432);        // Arabic-Indic ٤٣٢
  EXPECT_EQ(parse_integer("\u06f4\u06f3\u06f2"), 432);        // Extended Arabic-Indic ۴۳۲
  EXPECT_EQ(parse_integer("\u096a\u0968"), 42);               // Devanagari ४२
  EXPECT_EQ(parse_integer("-\uff15"), -5);
  EXPECT_EQ(parse_integer("\U0001D7D7\U0001D7CE"), 90);       // mathematical bold 𝟗𝟎
  EXPECT_EQ(parse_integer("\U0001D7F7\U0001D7FF"), 19);       // mathematical monospace 𝟷𝟿 (5th set in a run)
  EXPECT_EQ(unicode_digit_value(U'7'), 7);
  EXPECT_EQ(unicode_digit_value(U'\u0669'), 9);
  EXPECT_EQ(unicode_digit_value(U'a'), -1);
}

TEST(ParseInteger, RejectsLookalikesAndOtherText) {
  for (const char* s : {
           "",       " ",      "-",        "+-1",      "- 1",     "1-",      "4.0",     "4.",    "1e3",
           "0x10",   "12a",    "twelve",   "O",        "l2",      "$12",     "12%",     "(12)",  "1 2",
           "\u00b2",                    // superscript two (No)
           "\u2460",                    // circled digit one (No)
           "\u2163",                    // Roman numeral four (Nl)
           "\u0664\u066b\u0665",        // Arabic decimal separator
           "\u00bd",                    // vulgar fraction one half
           "\u4e09",                    // CJK three (Lo)
       })
    EXPECT_EQ(parse_integer(s), nullopt) << s;
}

TEST(CountdownCheck, CorrectExpressions) {
  const std::vector<long long> n{25, 4, 3};
  EXPECT_EQ(countdown_check("(25 - 4) * 3", n, 63), true);
  EXPECT_EQ(countdown_check("3*(25-4)", n, 63), true);
  EXPECT_EQ(countdown_check(" ( 25 \u2212 4 ) \u00d7 3 ", n, 63), true);  // − and ×
  EXPECT_EQ(countdown_check("(\uff12\uff15 - 4) * 3", n, 63), true);     // fullwidth 25
  EXPECT_EQ(countdown_check("(25 - 4) * 3 = 63", n, 63), true);
  EXPECT_EQ(countdown_check("((25 - 4)) * 3", n, 63), true);
  EXPECT_EQ(countdown_check("4 + 4", {4, 4}, 8), true);  // a number given twice may be used twice
}

TEST(CountdownCheck, WrongUseOfTheNumbersOrWrongValueIsFalse) {
  const std::vector<long long> n{25, 4, 3};
  EXPECT_EQ(countdown_check("25 - 4 * 3", n, 63), false);          // 13
  EXPECT_EQ(countdown_check("(25 - 4) * 3 + 3", n, 66), false);    // 3 used twice
  EXPECT_EQ(countdown_check("25 * 3", n, 75), false);              // 4 missing
  EXPECT_EQ(countdown_check("(25 - 4) * 3 * 1", n, 63), false);    // 1 not given
  EXPECT_EQ(countdown_check("4 + 4", {4, 5}, 8), false);
  EXPECT_EQ(countdown_check("(25 - 4) * 3 = 64", n, 63), false);  // states a wrong target
  EXPECT_EQ(countdown_check("(25 - 4) * 3", n, 64), false);
  EXPECT_EQ(countdown_check("25 / 4 + 3", n, 9), false);           // 9.25: no rounding
}

TEST(CountdownCheck, ExactRationalArithmetic) {
  EXPECT_EQ(countdown_check("6 / (2 / 3)", {6, 2, 3}, 9), true);       // 2/3 is not a float here
  EXPECT_EQ(countdown_check("7 / 2 * 2", {7, 2, 2}, 7), true);
  EXPECT_EQ(countdown_check("(1 / 3 + 1 / 6) * 4", {1, 3, 1, 6, 4}, 2), true);
  EXPECT_EQ(countdown_check("1 / 3 * 3", {1, 3, 3}, 1), true);
  EXPECT_EQ(countdown_check("1 / 3 * 3", {1, 3}, 1), false);          // 3 used once more than given
  EXPECT_EQ(countdown_check("10 / 3 * 3", {10, 3, 3}, 10), true);     // 3.333... * 3 exactly 10
  EXPECT_EQ(countdown_check("7 / 2", {7, 2}, 3), false);               // 3.5, not truncated
  EXPECT_EQ(countdown_check("(13 - 10) / (10 - 7) * 13", {13, 10, 10, 7, 13}, 13), true);
}

TEST(CountdownCheck, InvalidExpressionsAreNullopt) {
  const std::vector<long long> n{25, 4, 3};
  EXPECT_EQ(countdown_check("25 / (4 - 4) + 3", {25, 4, 4, 3}, 3), nullopt);  // division by zero
  EXPECT_EQ(countdown_check("0 / 0", {0, 0}, 0), nullopt);
  for (const char* s : {"", "   ", "25 - 4) * 3", "(25 - 4 * 3", "25 $ 4 + 3", "x + 25 - 4 - 3", "-25 + 4 + 3",
                        "25 + -4 + 3", "25 4 3", "25 -- 4 * 3", "2^3 + 25", "25 + 4 + 3 =", "25 + 4 + 3 = x",
                        "25 + 4 = 29 = 29", "(25 - 4) * 3 ; rm", "25.0 - 4 * 3", "()", "25 + (4) + 3)",
                        "25 + 4 + 3 = 32 + 0", "\u00b2 + 25"})
    EXPECT_EQ(countdown_check(s, n, 63), nullopt) << s;
  std::string deep(500, '(');
  EXPECT_EQ(countdown_check(deep + "25" + std::string(500, ')'), {25}, 25), nullopt);  // nesting limit
  EXPECT_EQ(countdown_check("99999999999 * 99999999999 * 99999999999", {99999999999, 99999999999, 99999999999}, 1),
            nullopt);  // overflow
}

}  // namespace
}  // namespace dseek
