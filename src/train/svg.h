// Small SVG charts for run folders: line charts (loss curves) and heat maps (expert load per layer).
#pragma once
#include <string>
#include <vector>

namespace dseek {

struct Series {
  std::string name, color;
  std::vector<double> x, y;
};

std::string svg_line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                           const std::vector<Series>& series);

// values[row][col]; colour from 0 (white) to max (dark); each cell labelled on hover.
std::string svg_heatmap(const std::string& title, const std::vector<std::string>& row_labels,
                        const std::string& col_label, const std::vector<std::vector<double>>& values);

}  // namespace dseek
