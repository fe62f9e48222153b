// dseek plot: curves from metrics.jsonl files of several runs in one SVG (compare runs, e.g. F32 vs BF16).
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fileio.h"
#include "train/svg.h"

namespace dseek::cli {

void add_plot(CLI::App& app) {
  struct Opts {
    std::vector<std::string> runs, keys{"loss"};
    std::string out, title = "Training curves";
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("plot", "Draw metrics of one or more runs into an SVG line chart");
  sub->add_option("--run", o->runs, "metrics.jsonl or a run folder, optionally LABEL=PATH (repeatable)")->required();
  sub->add_option("--key", o->keys, "Metric to draw, e.g. loss, val_loss, reward_mean (repeatable)");
  sub->add_option("--out", o->out, "SVG file to write")->required();
  sub->add_option("--title", o->title, "Chart title");
  sub->callback([o] {
    static const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"};
    std::vector<Series> series;
    for (const std::string& spec : o->runs) {
      std::string label = spec, path = spec;
      if (auto eq = spec.find('='); eq != std::string::npos) {
        label = spec.substr(0, eq);
        path = spec.substr(eq + 1);
      }
      if (is_directory(path)) path = path_join(path, "metrics.jsonl");
      if (!file_exists(path)) fail("--run: {}: no such file", path);
      for (const std::string& key : o->keys) {
        Series s{o->keys.size() > 1 ? label + " " + key : label, colors[series.size() % 6], {}, {}};
        std::ifstream f(path);
        std::string line;
        while (std::getline(f, line)) {
          auto j = nlohmann::json::parse(line, nullptr, false);
          if (j.is_discarded() || !j.contains(key) || !j[key].is_number()) continue;
          s.x.push_back(j.value("step", 0.0));
          s.y.push_back(j[key].get<double>());
        }
        if (s.x.empty()) fail("--key {}: not found in {}", key, path);
        series.push_back(std::move(s));
      }
    }
    write_file_atomic(o->out, svg_line_chart(o->title, "step", o->keys.size() == 1 ? o->keys[0] : "value", series));
    std::printf("wrote %s\n", o->out.c_str());
  });
}

}  // namespace dseek::cli
