#include "model/layers/head.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "kernels/rmsnorm.h"
#include "kernels/vmath.h"

namespace dseek {

void head_logits(const ModelConfig& c, const ModelWeights& w, const float* x, int64_t R, const std::vector<int64_t>* rows,
                 float* logits) {
  const int64_t D = c.hidden_size, V = c.vocab_size;
  const int64_t n = rows ? int64_t(rows->size()) : R;
  std::vector<float> hn(size_t(n * D));
  if (!rows) {
    rmsnorm_forward(x, D, w.norm.f32(), float(c.rms_norm_eps), R, D, hn.data(), D);
  } else {
    for (int64_t i = 0; i < n; i++)
      rmsnorm_forward(x + (*rows)[size_t(i)] * D, D, w.norm.f32(), float(c.rms_norm_eps), 1, D, hn.data() + i * D, D);
  }
  matmul(Matmul{n, hn.data(), D, MatRef::of(w.lm_head), logits, V});
}

HeadLossResult lm_head_loss(int64_t R, const float* h, const Linear& head, const HeadLoss& spec, float* dh, Tensor* dW,
                            Precision p) {
  const int64_t D = head.in(), V = head.out();
  constexpr int64_t kChunk = 256;
  HeadLossResult res;
  std::vector<float> logits(static_cast<size_t>(std::min(R, kChunk) * V));
  for (int64_t r0 = 0; r0 < R; r0 += kChunk) {
    const int64_t n = std::min(kChunk, R - r0);
    matmul(Matmul{n, h + r0 * D, D, MatRef::of(head), logits.data(), V});
    if (spec.logits_out) std::copy(logits.begin(), logits.begin() + n * V, spec.logits_out + r0 * V);
    double loss = 0, ce = 0, kl = 0;
    int64_t count = 0;
#pragma omp parallel for schedule(static) reduction(+ : loss, ce, kl, count)
    for (int64_t i = 0; i < n; i++) {
      const int64_t r = r0 + i;
      float* z = logits.data() + i * V;
      const int32_t tgt = spec.targets[r];
      const auto* soft = spec.soft && !(*spec.soft)[size_t(r)].empty() ? &(*spec.soft)[size_t(r)] : nullptr;
      if (tgt < 0 && !soft) {
        if (spec.logp_out) spec.logp_out[r] = 0.0f;
        std::fill(z, z + V, 0.0f);
        continue;
      }
      const float mx = *std::max_element(z, z + V);
      float sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t v = 0; v < V; v++) sum += exp_approx(z[v] - mx);
      const float lse = float(double(mx) + std::log(double(sum)));
      if (spec.topk_out && tgt >= 0) {  // teacher distribution for distillation
        auto& top = (*spec.topk_out)[size_t(r)];
        std::vector<int32_t> idx(static_cast<size_t>(V));
        std::iota(idx.begin(), idx.end(), 0);
        const int64_t k = std::min<int64_t>(spec.topk, V);
        std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); });
        double norm = 0;
        top.clear();
        for (int64_t i = 0; i < k; i++) norm += double(exp_approx(z[idx[size_t(i)]] - lse));
        for (int64_t i = 0; i < k; i++) top.emplace_back(idx[size_t(i)], float(double(exp_approx(z[idx[size_t(i)]] - lse)) / norm));
      }
      double c = 0;  // d loss / d lp
      if (tgt >= 0) {
        const float lp = z[tgt] - lse;
        if (spec.logp_out) spec.logp_out[r] = lp;
        ce -= lp;
        count++;
        if (spec.policy) {
          auto [f, df] = spec.policy(r, lp);
          loss += f;
          c = df;
        } else {
          loss -= double(spec.ce_scale) * lp;
          c = -double(spec.ce_scale);
        }
      }
      double row_kl = 0;
      if (soft)
        for (auto [id, pk] : *soft)
          if (pk > 0) row_kl += double(pk) * (std::log(double(pk)) - double(z[id] - lse));
      kl += row_kl;
      loss += double(spec.soft_weight) * row_kl;
      if (dh) {
        const float gs = spec.grad_scale;
        const float sw = soft ? spec.soft_weight * gs : 0.0f, cc = float(-c) * gs + sw;  // q coefficient
#pragma omp simd
        for (int64_t v = 0; v < V; v++) z[v] = exp_approx(z[v] - lse) * cc;
        if (tgt >= 0) z[tgt] += float(c) * gs;
        if (soft)
          for (auto [id, pk] : *soft) z[id] -= sw * pk;
      }
    }
    res.loss_sum += loss;
    res.ce_sum += ce;
    res.kl_sum += kl;
    res.count += count;
    if (dh) {
      Matmul back{n, logits.data(), V, MatRef::of(head), dh + r0 * D, D};
      back.w_plain = true;
      matmul(back);
      gemm(true, false, V, D, n, 1.0f, logits.data(), V, h + r0 * D, D, 1.0f, dW->f32(), D, p);
    }
  }
  return res;
}

CrossEntropyResult lm_head_cross_entropy(int64_t R, const float* h, const Linear& head, const int32_t* targets,
                                         float scale, float* dh, Tensor* dW, Precision p) {
  HeadLoss spec;
  spec.targets = targets;
  spec.ce_scale = scale;
  HeadLossResult r = lm_head_loss(R, h, head, spec, dh, dW, p);
  return {r.ce_sum, r.count};
}

}  // namespace dseek
