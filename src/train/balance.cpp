#include "train/balance.h"

namespace dseek {

std::vector<Tensor*> routing_biases(ModelWeights& w) {
  std::vector<Tensor*> out;
  for (auto& L : w.layers)
    if (L.is_moe && L.moe.score_bias.data) out.push_back(&L.moe.score_bias);
  for (auto& mt : w.mtp)
    if (mt.block.is_moe && mt.block.moe.score_bias.data) out.push_back(&mt.block.moe.score_bias);
  return out;
}

void update_routing_bias(ModelWeights& w, const std::vector<std::vector<int64_t>>& load, double gamma) {
  if (gamma <= 0) return;
  std::vector<Tensor*> biases = routing_biases(w);
  for (size_t l = 0; l < biases.size() && l < load.size(); l++) {
    double mean = 0;
    for (int64_t v : load[l]) mean += double(v);
    mean /= double(load[l].size());
    float* b = biases[l]->f32();
    for (size_t e = 0; e < load[l].size(); e++) {
      const double d = mean - double(load[l][e]);
      b[e] += float(gamma * double((d > 0) - (d < 0)));
    }
  }
}

}  // namespace dseek
