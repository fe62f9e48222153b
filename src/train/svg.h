// Small SVG charts for run folders: line charts (loss curves) and heat maps (expert load per layer).
#pragma once
#include <string>
#include <vector>

namespace dseek {

struct Series {
  std::string name, color;
  std::vector<double> x, y;
};

// Lines over x; ticks only at whole numbers when every x is whole (steps); the legend right of the plot.
std::string svg_line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                           const std::vector<Series>& series);

// values[row][col]; colour from 0 (white) to the maximum (dark) with a colour scale labelled `value_label`; rows
// named by `row_labels` along `row_axis`, columns numbered along `col_label`; each cell labelled on hover.
std::string svg_heatmap(const std::string& title, const std::string& row_axis, const std::vector<std::string>& row_labels,
                        const std::string& col_label, const std::string& value_label,
                        const std::vector<std::vector<double>>& values);

}  // namespace dseek
