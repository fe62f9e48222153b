#include "train/svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace dseek {

namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else o += c;
  }
  return o;
}

// "nice" tick step for a range
double tick_step(double span, int target) {
  const double raw = span / target, p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * p) return m * p;
  return 10 * p;
}

}  // namespace

std::string svg_line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                           const std::vector<Series>& series) {
  // the legend sits right of the plot, so it never covers a line
  size_t longest = 0;
  for (const auto& s : series) longest = std::max(longest, s.name.size());
  const double legend_w = 30 + 7.0 * double(longest);
  const double plot_w = 620, W = 70 + plot_w + 20 + legend_w, H = 420, l = 70, r = 20 + legend_w, t = 40, b = 60;
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  bool integer_x = true;  // steps: ticks only at whole numbers
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size(); i++) {
      if (!std::isfinite(s.y[i])) continue;
      x0 = std::min(x0, s.x[i]);
      x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]);
      y1 = std::max(y1, s.y[i]);
      integer_x = integer_x && s.x[i] == std::floor(s.x[i]);
    }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  const double pad = 0.05 * (y1 - y0);
  y0 -= pad;
  y1 += pad;
  auto X = [&](double v) { return l + (v - x0) / (x1 - x0) * (W - l - r); };
  auto Y = [&](double v) { return H - b - (v - y0) / (y1 - y0) * (H - t - b); };
  std::string o = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
      W, H, (l + W - r) / 2, esc(title));
  double xs = tick_step(x1 - x0, 8);
  if (integer_x) xs = std::max(1.0, xs);
  const double ys = tick_step(y1 - y0, 6);
  // a tick within a millionth of a step of zero is zero (no "-0" from rounding)
  auto tick_value = [](double v, double step) { return std::abs(v) < 1e-6 * step ? 0.0 : v; };
  for (double v = std::ceil(x0 / xs) * xs; v <= x1 + 1e-9; v += xs)
    o += fmt::format("<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#eee\"/>"
                     "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4:g}</text>\n",
                     X(v), t, H - b, H - b + 16, tick_value(v, xs));
  for (double v = std::ceil(y0 / ys) * ys; v <= y1 + 1e-9; v += ys)
    o += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" stroke=\"#eee\"/>"
                     "<text x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\">{5:g}</text>\n",
                     l, W - r, Y(v), l - 6, Y(v) + 4, tick_value(v, ys));
  o += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>\n", l, t, W - l - r, H - t - b);
  o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", (W + l - r) / 2, H - 20, esc(x_label));
  o += fmt::format("<text x=\"16\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {0})\">{1}</text>\n",
                   (H - b + t) / 2, esc(y_label));
  for (size_t si = 0; si < series.size(); si++) {
    const Series& s = series[si];
    std::string pts;
    for (size_t i = 0; i < s.x.size(); i++)
      if (std::isfinite(s.y[i])) pts += fmt::format("{:.1f},{:.1f} ", X(s.x[i]), Y(s.y[i]));
    if (s.x.size() == 1) pts += pts;  // a single point still draws
    o += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\" points=\"{}\"/>\n", s.color, pts);
    o += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"3\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
                     W - r + 12, t + 12 + 16 * si, s.color, W - r + 32, t + 17 + 16 * si, esc(s.name));
  }
  return o + "</svg>\n";
}

std::string svg_heatmap(const std::string& title, const std::string& row_axis, const std::vector<std::string>& row_labels,
                        const std::string& col_label, const std::string& value_label,
                        const std::vector<std::vector<double>>& values) {
  size_t cols = 0;
  double mx = 0;
  for (const auto& r : values) {
    cols = std::max(cols, r.size());
    for (double v : r) mx = std::max(mx, v);
  }
  const double cell = std::clamp(640.0 / double(std::max<size_t>(cols, 1)), 6.0, 28.0), l = 130, t = 40;
  const double grid_w = cell * double(cols), grid_h = cell * double(values.size());
  const double scale_x = l + grid_w + 30, W = scale_x + 110, H = std::max(t + grid_h + 60, t + 200);
  auto shade = [&](double v) { return int(255 - 200 * (mx > 0 ? v / mx : 0)); };
  std::string o = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{:.0f}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
      W, H, W / 2, esc(title));
  for (size_t r = 0; r < values.size(); r++) {
    const std::string name = r < row_labels.size() ? row_labels[r] : "";
    o += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", l - 6, t + cell * (double(r) + 0.7), esc(name));
    for (size_t c = 0; c < values[r].size(); c++)
      o += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"rgb({},{},255)\">"
                       "<title>{} expert {}: {:.3g}</title></rect>\n",
                       l + cell * double(c), t + cell * double(r), cell - 1, cell - 1, shade(values[r][c]), shade(values[r][c]),
                       esc(name), c, values[r][c]);
  }
  // expert numbers under the columns (every k-th when cells are narrow), the axis names
  const size_t every = cell >= 20 ? 1 : cell >= 10 ? 2 : cell >= 7 ? 4 : 8;
  for (size_t c = 0; c < cols; c += every)
    o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"10\">{}</text>\n",
                     l + cell * (double(c) + 0.5), t + grid_h + 14, c);
  o += fmt::format("<text x=\"{:.0f}\" y=\"{:.0f}\" text-anchor=\"middle\">{}</text>\n", l + grid_w / 2, t + grid_h + 34,
                   esc(col_label));
  o += fmt::format("<text x=\"14\" y=\"{0:.0f}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {0:.0f})\">{1}</text>\n",
                   t + grid_h / 2, esc(row_axis));
  // colour scale: 0 at the bottom, the maximum at the top
  const double bar_h = 150, steps = 10;
  for (int i = 0; i < int(steps); i++) {
    const double v = mx * (double(i) + 0.5) / steps;
    o += fmt::format("<rect x=\"{:.0f}\" y=\"{:.1f}\" width=\"16\" height=\"{:.1f}\" fill=\"rgb({},{},255)\"/>\n", scale_x,
                     t + bar_h - bar_h * double(i + 1) / steps, bar_h / steps + 0.5, shade(v), shade(v));
  }
  o += fmt::format("<rect x=\"{:.0f}\" y=\"{}\" width=\"16\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>\n", scale_x, t, bar_h);
  o += fmt::format("<text x=\"{:.0f}\" y=\"{:.0f}\">{:.3g}</text>\n", scale_x + 22, t + 10, mx);
  o += fmt::format("<text x=\"{:.0f}\" y=\"{:.0f}\">0</text>\n", scale_x + 22, t + bar_h);
  o += fmt::format("<text x=\"{:.0f}\" y=\"{:.0f}\" font-size=\"11\">{}</text>\n", scale_x - 4, t + bar_h + 18, esc(value_label));
  return o + "</svg>\n";
}

}  // namespace dseek
