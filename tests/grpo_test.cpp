// GRPO on a hand-computed example (group of 4, known rewards and log-probs), advantage normalisation, the k3
// KL estimator and its gradient; finite-difference checks of the policy-loss and soft-target heads.
#include <gtest/gtest.h>

#include <cmath>

#include "core/rng.h"
#include "posttrain/grpo_loss.h"
#include "model/layers/head.h"

namespace dseek {
namespace {

TEST(Grpo, AdvantagesAreGroupNormalised) {
  GrpoLossConfig c;
  // group 1: rewards 1, 0, 0, 1 -> mean 0.5, sample std sqrt(1/3); group 2: all equal -> 0
  auto a = group_advantages({1, 0, 0, 1, 0.3, 0.3, 0.3, 0.3}, 4, c);
  const double sd = std::sqrt(1.0 / 3.0);
  EXPECT_NEAR(a[0], 0.5 / (sd + 1e-4), 1e-12);
  EXPECT_NEAR(a[1], -0.5 / (sd + 1e-4), 1e-12);
  for (int i = 4; i < 8; i++) EXPECT_EQ(a[size_t(i)], 0.0);
  c.scale_std = false;
  auto b = group_advantages({1, 0, 0, 1}, 4, c);
  EXPECT_DOUBLE_EQ(b[0], 0.5);
  EXPECT_DOUBLE_EQ(b[2], -0.5);
  EXPECT_ANY_THROW(group_advantages({1, 0, 1}, 4, c));
}

TEST(Grpo, K3EstimatorAndGradient) {
  // k3 = exp(ref - lp) - (ref - lp) - 1 >= 0, zero iff lp == ref
  EXPECT_NEAR(k3_kl(-1.2, -1.5), std::exp(-0.3) + 0.3 - 1.0, 1e-15);
  EXPECT_NEAR(k3_kl(-1.2, -1.5), 0.0408182207, 1e-9);
  EXPECT_EQ(k3_kl(-0.7, -0.7), 0.0);
  EXPECT_NEAR(k3_kl_grad(-1.2, -1.5), 1.0 - std::exp(-0.3), 1e-15);
  const double h = 1e-6;
  EXPECT_NEAR(k3_kl_grad(-0.4, 0.3), (k3_kl(-0.4 + h, 0.3) - k3_kl(-0.4 - h, 0.3)) / (2 * h), 1e-8);
}

// Group of 4 completions with rewards 1, 0, 0, 1 and one token each; eps 0.2, beta 0.1, token-level weights 1/4.
TEST(Grpo, HandComputedGroupOfFour) {
  GrpoLossConfig c;
  c.eps_low = c.eps_high = 0.2;
  c.beta = 0.1;
  c.adv_eps = 0;
  const auto A = group_advantages({1, 0, 0, 1}, 4, c);  // +-0.8660254
  const double k = 0.8660254037844386;
  ASSERT_NEAR(A[0], k, 1e-12);
  struct Tok { double lp, old, ref; };
  const Tok t[4] = {{-0.5, -1.0, -0.5},   // rho = e^0.5 = 1.6487 > 1.2, A > 0: clipped, no surrogate gradient
                    {-0.5, -1.0, -0.5},   // same ratio, A < 0: min picks rho A (unclipped)
                    {-1.2, -1.0, -1.5},   // rho = e^-0.2 = 0.8187 inside the range
                    {-2.0, -1.0, -1.5}};  // rho = e^-1 = 0.3679 < 0.8, A > 0: unclipped (min is rho A)
  const double w = 0.25;
  const double rho[4] = {std::exp(0.5), std::exp(0.5), std::exp(-0.2), std::exp(-1.0)};
  // expected L = -w (surrogate - beta k3), dL/dlp = -w (d surrogate - beta (1 - e^(ref - lp)))
  const double k3[4] = {0.0, 0.0, std::exp(-0.3) + 0.3 - 1, std::exp(0.5) - 0.5 - 1};
  const double surr[4] = {1.2 * k, rho[1] * -k, rho[2] * -k, rho[3] * k};
  const double dsurr[4] = {0.0, rho[1] * -k, rho[2] * -k, rho[3] * k};
  const double dk3[4] = {0.0, 0.0, 1 - std::exp(-0.3), 1 - std::exp(0.5)};
  const bool clip[4] = {true, false, false, false};
  double total = 0;
  for (int i = 0; i < 4; i++) {
    TokenLoss tl = grpo_token_loss(t[i].lp, t[i].old, t[i].ref, A[size_t(i)], w, c);
    EXPECT_NEAR(tl.loss, -w * (surr[i] - 0.1 * k3[i]), 1e-12) << i;
    EXPECT_NEAR(tl.dlogp, -w * (dsurr[i] - 0.1 * dk3[i]), 1e-12) << i;
    EXPECT_NEAR(tl.kl, k3[i], 1e-12) << i;
    EXPECT_EQ(tl.clipped, clip[i]) << i;
    // the analytic gradient agrees with a finite difference of the loss
    const double h = 1e-6;
    const double fd = (grpo_token_loss(t[i].lp + h, t[i].old, t[i].ref, A[size_t(i)], w, c).loss -
                       grpo_token_loss(t[i].lp - h, t[i].old, t[i].ref, A[size_t(i)], w, c).loss) / (2 * h);
    EXPECT_NEAR(tl.dlogp, fd, 1e-7) << i;
    total += tl.loss;
  }
  // numbers written out: the batch loss of this example
  EXPECT_NEAR(total, -0.25 * (1.2 * k - std::exp(0.5) * k - std::exp(-0.2) * k + std::exp(-1.0) * k -
                              0.1 * (k3[2] + k3[3])), 1e-12);
  EXPECT_NEAR(total, 0.1995017, 1e-6);  // 0.25 * (0.7790557 + 0.1 * 0.1895395)
  // clip higher (DAPO): with eps_high 0.7 the first token is no longer clipped
  c.eps_high = 0.7;
  EXPECT_FALSE(grpo_token_loss(-0.5, -1.0, -0.5, k, w, c).clipped);
}

// lm_head_loss with a policy callback and with soft targets: gradients wrt the hidden state and the head.
TEST(Grpo, PolicyAndSoftTargetHeadsMatchFiniteDifferences) {
  const int64_t R = 5, D = 12, V = 29;
  Linear head{Tensor::empty(DType::F32, {V, D}), Tensor{}, 128, 128};
  std::vector<float> h(size_t(R * D));
  for (int64_t i = 0; i < V * D; i++) head.weight.f32()[i] = float(normal_at(1, 0, uint64_t(i))) * 0.4f;
  for (auto& v : h) v = float(normal_at(2, 0, uint64_t(&v - h.data())));
  std::vector<int32_t> tgt{3, -1, 7, 28, 0};
  std::vector<std::vector<std::pair<int32_t, float>>> soft(static_cast<size_t>(R));
  soft[1] = {{4, 0.7f}, {9, 0.3f}};
  soft[2] = {{7, 0.5f}, {1, 0.25f}, {2, 0.25f}};
  GrpoLossConfig gc;
  gc.beta = 0.2;
  const double adv[5] = {0.9, 0, -1.3, 0.4, -0.2}, old[5] = {-3.0, 0, -3.5, -2.8, -3.2}, ref[5] = {-3.1, 0, -3.3, -3.0, -3.4};
  HeadLoss spec;
  spec.targets = tgt.data();
  spec.policy = [&](int64_t r, float lp) {
    TokenLoss t = grpo_token_loss(lp, old[r], ref[r], adv[r], 0.25, gc);
    return std::pair<double, double>{t.loss, t.dlogp};
  };
  spec.soft = &soft;
  spec.soft_weight = 0.6f;
  auto loss = [&] { return lm_head_loss(R, h.data(), head, spec, nullptr, nullptr, Precision::F32).loss_sum; };
  std::vector<float> dh(size_t(R * D), 0.0f);
  Tensor dW = Tensor::zeros(DType::F32, {V, D});
  lm_head_loss(R, h.data(), head, spec, dh.data(), &dW, Precision::F32);
  const float eps = 4e-3f;  // float logits: round-off in (lp - lm) / 2eps shrinks with eps, truncation error grows as eps^2
  for (int64_t i = 0; i < R * D; i += 3) {
    const float keep = h[size_t(i)];
    h[size_t(i)] = keep + eps;
    const double lp = loss();
    h[size_t(i)] = keep - eps;
    const double lm = loss();
    h[size_t(i)] = keep;
    EXPECT_NEAR(dh[size_t(i)], (lp - lm) / (2 * eps), 2e-4) << "dh " << i;
  }
  for (int64_t i = 0; i < V * D; i += 7) {
    float& wv = head.weight.f32()[i];
    const float keep = wv;
    wv = keep + eps;
    const double lp = loss();
    wv = keep - eps;
    const double lm = loss();
    wv = keep;
    EXPECT_NEAR(dW.f32()[i], (lp - lm) / (2 * eps), 2e-4) << "dW " << i;
  }
}

}  // namespace
}  // namespace dseek
