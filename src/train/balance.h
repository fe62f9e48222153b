// Auxiliary-loss-free load balancing (DeepSeek-V3): after each optimizer step, for every MoE layer,
// b_i += gamma * sign(mean load - load_i). The bias only changes which experts are selected.
#pragma once
#include <cstdint>
#include <vector>

#include "model/weights.h"

namespace dseek {

// The routing-bias tensors of the MoE layers in run order: main layers, then MTP blocks.
std::vector<Tensor*> routing_biases(ModelWeights& w);

// load[l][e]: selections of expert e in MoE layer l over the whole step (LossBreakdown::load order).
void update_routing_bias(ModelWeights& w, const std::vector<std::vector<int64_t>>& load, double gamma);

}  // namespace dseek
