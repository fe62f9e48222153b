// Command-line mistakes explained the way a user typed them: an unknown command or flag is named in the order
// given, with the closest known spelling ("did you mean --steps?") and the --help to read.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace dseek::cli {

// Prints the explanation of `e` (raised while parsing `app`) to stderr and returns the exit code.
int report_parse_error(const CLI::App& app, const CLI::ParseError& e);

// The candidate closest to `word` by edit distance (insertions, deletions, substitutions, swaps of neighbours),
// or "" when none is close enough to be a plausible typo.
std::string closest_spelling(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace dseek::cli
