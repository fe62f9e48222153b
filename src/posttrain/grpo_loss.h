// GRPO (DeepSeekMath / DeepSeek-R1): group-normalised advantages and the per-token clipped surrogate with a
// k3 KL penalty to a frozen reference policy. Loss to minimise, for token t of sequence i with weight w_t:
//   L_t = -w_t [ min(rho A_i, clip(rho, 1 - eps_low, 1 + eps_high) A_i) - beta k3 ],
//   rho = exp(lp - lp_old),  k3 = exp(lp_ref - lp) - (lp_ref - lp) - 1   (unbiased estimator of KL(pi || pi_ref)),
//   w_t = 1 / (tokens in the batch) (token-level) or 1 / (|o_i| * sequences) (sequence-level).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dseek {

struct GrpoLossConfig {
  double eps_low = 0.2, eps_high = 0.2;  // eps_high > eps_low: DAPO's "clip higher"
  double beta = 0.04;                    // KL coefficient (0: no reference model)
  bool scale_std = true;                 // divide advantages by the group's standard deviation
  double adv_eps = 1e-4;
  bool token_level = true;               // false: sequence-level normalisation
};

// A_i = (r_i - mean_group) / (std_group + eps) for consecutive groups of G rewards (std with N-1, as TRL);
// without std scaling A_i = r_i - mean_group.
std::vector<double> group_advantages(const std::vector<double>& rewards, int64_t G, const GrpoLossConfig& c);

struct TokenLoss {
  double loss = 0;     // L_t
  double dlogp = 0;    // dL_t / d lp
  double kl = 0;       // k3
  bool clipped = false;  // the clipped branch is the minimum (no gradient through rho)
};
TokenLoss grpo_token_loss(double lp, double lp_old, double lp_ref, double advantage, double weight,
                          const GrpoLossConfig& c);

// k3 and its derivative wrt lp: d k3 / d lp = 1 - exp(lp_ref - lp).
double k3_kl(double lp, double lp_ref);
double k3_kl_grad(double lp, double lp_ref);

}  // namespace dseek
