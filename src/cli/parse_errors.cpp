#include "cli/parse_errors.h"

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace dseek::cli {

namespace {

// Optimal string alignment distance (Levenshtein plus swaps of neighbouring characters).
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); i++) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); j++) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); i++)
    for (size_t j = 1; j <= b.size(); j++) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

// The deepest subcommand the parser entered (the app itself when none).
const CLI::App& innermost(const CLI::App& app) {
  const CLI::App* at = &app;
  for (;;) {
    const auto subs = at->get_subcommands();
    if (subs.empty()) return *at;
    at = subs.back();
  }
}

// "dseek tokenizer train": the names from the top command down to `sub`.
std::string command_path(const CLI::App& sub) {
  std::string path = sub.get_name();
  for (const CLI::App* p = sub.get_parent(); p; p = p->get_parent()) path = p->get_name() + " " + path;
  return path;
}

std::vector<std::string> flag_names(const CLI::App& sub) {
  std::vector<std::string> names;
  for (const CLI::Option* opt : sub.get_options()) {
    for (const auto& l : opt->get_lnames()) names.push_back("--" + l);
    for (const auto& s : opt->get_snames()) names.push_back("-" + s);
  }
  return names;
}

std::vector<std::string> command_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) names.push_back(sub->get_name());
  return names;
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  const std::string best = closest_spelling(word, candidates);
  return best.empty() ? "" : " (did you mean " + best + "?)";
}

}  // namespace

std::string closest_spelling(const std::string& word, const std::vector<std::string>& candidates) {
  const size_t core = word.size() - std::min(word.find_first_not_of('-'), word.size());  // without the dashes
  // an unambiguous abbreviation, e.g. --temp for --temperature
  std::vector<std::string> longer;
  for (const auto& c : candidates)
    if (c.size() > word.size() && c.compare(0, word.size(), word) == 0) longer.push_back(c);
  if (core >= 3 && longer.size() == 1) return longer.front();
  // else the nearest spelling, if a typo could explain it (at most about a third of the word changed)
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  return best_d <= std::max<size_t>(1, core / 3) ? best : "";
}

int report_parse_error(const CLI::App& app, const CLI::ParseError& e) {
  if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
  const CLI::App& sub = innermost(app);
  const std::string where = command_path(sub);
  std::string message;
  const std::vector<std::string> extras = sub.remaining();  // what the parser could not place, in the order typed
  auto flag = std::find_if(extras.begin(), extras.end(), [](const std::string& s) { return s.size() > 1 && s[0] == '-'; });
  if (flag != extras.end()) {
    // an unknown flag comes first, whatever else failed: a misspelt required flag is then "missing" too
    const std::string name = flag->substr(0, flag->find('='));
    message = fmt::format("{}: unknown flag {}{}", where, name, did_you_mean(name, flag_names(sub)));
  } else if (dynamic_cast<const CLI::ExtrasError*>(&e)) {
    if (!extras.empty()) {
      message = fmt::format("{}: unexpected argument '{}' (values follow their flag, e.g. --steps 5)", where, extras.front());
    }
  } else if (dynamic_cast<const CLI::RequiredError*>(&e) && !command_names(sub).empty()) {
    // a command with subcommands got none it knows: the first word is a misspelt one, or there is none
    if (!extras.empty() && extras.front()[0] != '-')
      message = fmt::format("{}: unknown command '{}'{}", where, extras.front(), did_you_mean(extras.front(), command_names(sub)));
    else
      message = fmt::format("{}: give a command: {}", where, fmt::join(command_names(sub), ", "));
  }
  if (message.empty()) return app.exit(e);
  std::fprintf(stderr, "%s\nRun '%s --help' for the %s.\n", message.c_str(), where.c_str(),
               command_names(sub).empty() ? "flags" : "list of commands");
  return e.get_exit_code();
}

}  // namespace dseek::cli
