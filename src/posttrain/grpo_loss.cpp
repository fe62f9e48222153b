#include "posttrain/grpo_loss.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace dseek {

std::vector<double> group_advantages(const std::vector<double>& r, int64_t G, const GrpoLossConfig& c) {
  DSEEK_CHECK(G > 0 && int64_t(r.size()) % G == 0, "{} rewards are not whole groups of {}", r.size(), G);
  std::vector<double> a(r.size());
  for (size_t g0 = 0; g0 < r.size(); g0 += size_t(G)) {
    double mean = 0;
    for (int64_t i = 0; i < G; i++) mean += r[g0 + size_t(i)];
    mean /= double(G);
    double var = 0;
    for (int64_t i = 0; i < G; i++) var += (r[g0 + size_t(i)] - mean) * (r[g0 + size_t(i)] - mean);
    const double sd = G > 1 ? std::sqrt(var / double(G - 1)) : 0.0;
    for (int64_t i = 0; i < G; i++) {
      const double d = r[g0 + size_t(i)] - mean;
      a[g0 + size_t(i)] = c.scale_std ? d / (sd + c.adv_eps) : d;
    }
  }
  return a;
}

double k3_kl(double lp, double lp_ref) { return std::exp(lp_ref - lp) - (lp_ref - lp) - 1.0; }
double k3_kl_grad(double lp, double lp_ref) { return 1.0 - std::exp(lp_ref - lp); }

TokenLoss grpo_token_loss(double lp, double lp_old, double lp_ref, double A, double w, const GrpoLossConfig& c) {
  TokenLoss t;
  const double rho = std::exp(lp - lp_old);
  const double rho_c = std::clamp(rho, 1.0 - c.eps_low, 1.0 + c.eps_high);
  const double unclipped = rho * A, clipped = rho_c * A;
  t.clipped = clipped < unclipped;
  const double surrogate = std::min(unclipped, clipped);
  const double d_surrogate = t.clipped ? 0.0 : rho * A;  // d(rho A)/d lp = rho A
  double obj = surrogate, d_obj = d_surrogate;
  if (c.beta > 0) {
    t.kl = k3_kl(lp, lp_ref);
    obj -= c.beta * t.kl;
    d_obj -= c.beta * k3_kl_grad(lp, lp_ref);
  }
  t.loss = -w * obj;
  t.dlogp = -w * d_obj;
  return t;
}

}  // namespace dseek
