#include "model/router.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace dseek {

namespace {

// Top-k indices of v (descending; ties to the lower index, as a stable sort).
void topk(const float* v, int64_t n, int64_t k, int32_t* out, std::vector<int32_t>& order) {
  order.resize(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
    return v[a] > v[b] || (v[a] == v[b] && a < b);
  });
  std::copy(order.begin(), order.begin() + k, out);
}

bool normalises(const ModelConfig& c) { return c.norm_topk_prob && c.num_experts_per_tok > 1; }
// DeepSeek-V2 (Hugging Face) scales only unnormalised weights; V3 always scales.
double weight_scale(const ModelConfig& c) {
  if (c.arch == Architecture::DeepseekV2 && normalises(c)) return 1.0;
  return c.routed_scaling_factor;
}

}  // namespace

void route(const ModelConfig& c, const float* logits, const float* bias, int64_t rows, Routing& out) {
  const int64_t E = c.n_routed_experts, K = c.num_experts_per_tok;
  out.rows = rows;
  out.k = K;
  out.experts = E;
  out.idx.resize(size_t(rows * K));
  out.weight.resize(size_t(rows * K));
  out.scores.resize(size_t(rows * E));
  const bool grouped = c.topk_method != TopkMethod::Greedy && c.n_group > 1;
  const int64_t G = c.n_group, per = grouped ? E / G : E;
  const double scale = weight_scale(c);
#pragma omp parallel if (rows > 64)
  {
    std::vector<float> sel(static_cast<size_t>(E)), gscore(static_cast<size_t>(G));
    std::vector<int32_t> order, gsel(static_cast<size_t>(G));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      const float* z = logits + r * E;
      float* s = out.scores.data() + r * E;
      if (c.scoring_func == ScoringFunc::Sigmoid) {
        for (int64_t e = 0; e < E; e++) s[e] = 1.0f / (1.0f + std::exp(-z[e]));
      } else {
        float mx = *std::max_element(z, z + E), sum = 0;
        for (int64_t e = 0; e < E; e++) sum += (s[e] = std::exp(z[e] - mx));
        for (int64_t e = 0; e < E; e++) s[e] /= sum;
      }
      for (int64_t e = 0; e < E; e++) sel[size_t(e)] = s[e] + ((bias && c.uses_score_bias()) ? bias[e] : 0.0f);
      if (grouped) {
        for (int64_t g = 0; g < G; g++) {
          const float* v = sel.data() + g * per;
          if (c.topk_method == TopkMethod::NoauxTc) {
            float a = -std::numeric_limits<float>::infinity(), b = a;  // top-2 sum
            for (int64_t i = 0; i < per; i++) {
              if (v[i] > a) {
                b = a;
                a = v[i];
              } else if (v[i] > b) {
                b = v[i];
              }
            }
            gscore[size_t(g)] = per >= 2 ? a + b : a;
          } else {
            gscore[size_t(g)] = *std::max_element(v, v + per);
          }
        }
        topk(gscore.data(), G, c.topk_group, gsel.data(), order);
        std::vector<bool> keep(size_t(G), false);
        for (int64_t i = 0; i < c.topk_group; i++) keep[size_t(gsel[size_t(i)])] = true;
        for (int64_t g = 0; g < G; g++)
          if (!keep[size_t(g)])
            for (int64_t i = 0; i < per; i++) sel[size_t(g * per + i)] = -std::numeric_limits<float>::infinity();
      }
      int32_t* idx = out.idx.data() + r * K;
      float* w = out.weight.data() + r * K;
      topk(sel.data(), E, K, idx, order);
      float sum = 0;
      for (int64_t i = 0; i < K; i++) sum += (w[i] = s[idx[i]]);
      const float norm = normalises(c) ? 1.0f / (sum + 1e-20f) : 1.0f;
      for (int64_t i = 0; i < K; i++) w[i] = float(double(w[i] * norm) * scale);
    }
  }
}

void route_backward(const ModelConfig& c, const Routing& r, const float* dweight, const float* dscores,
                    float* dlogits) {
  const int64_t E = r.experts, K = r.k;
  const double scale = weight_scale(c);
  const bool norm = normalises(c);
#pragma omp parallel for schedule(static) if (r.rows > 64)
  for (int64_t row = 0; row < r.rows; row++) {
    const float* s = r.scores.data() + row * E;
    const int32_t* idx = r.idx.data() + row * K;
    const float* dw = dweight + row * K;
    float* dz = dlogits + row * E;
    // w_i = scale * s_i / S (S = sum of selected s, or 1 without normalisation)
    std::vector<float> ds(size_t(E), 0.0f);
    float S = 0;
    for (int64_t i = 0; i < K; i++) S += s[idx[i]];
    if (norm) {
      S += 1e-20f;
      float dot = 0;  // sum_i dw_i s_i
      for (int64_t i = 0; i < K; i++) dot += dw[i] * s[idx[i]];
      for (int64_t i = 0; i < K; i++) ds[size_t(idx[i])] += float(scale) * (dw[i] / S - dot / (S * S));
    } else {
      for (int64_t i = 0; i < K; i++) ds[size_t(idx[i])] += float(scale) * dw[i];
    }
    if (dscores)
      for (int64_t e = 0; e < E; e++) ds[size_t(e)] += dscores[row * E + e];
    if (c.scoring_func == ScoringFunc::Sigmoid) {
      for (int64_t e = 0; e < E; e++) dz[e] += ds[size_t(e)] * s[e] * (1.0f - s[e]);
    } else {
      float dot = 0;
      for (int64_t e = 0; e < E; e++) dot += ds[size_t(e)] * s[e];
      for (int64_t e = 0; e < E; e++) dz[e] += s[e] * (ds[size_t(e)] - dot);
    }
  }
}

}  // namespace dseek

namespace dseek {

double sequence_balance_loss(const Routing& r, int64_t seqs, int64_t T, double alpha, float* dscores) {
  const int64_t E = r.experts, K = r.k;
  double total = 0;
  std::vector<double> f(static_cast<size_t>(E)), P(static_cast<size_t>(E));
  for (int64_t b = 0; b < seqs; b++) {
    std::fill(f.begin(), f.end(), 0.0);
    std::fill(P.begin(), P.end(), 0.0);
    for (int64_t t = 0; t < T; t++) {
      const int64_t row = b * T + t;
      for (int64_t k = 0; k < K; k++) f[size_t(r.idx[size_t(row * K + k)])] += 1.0;
      const float* s = r.scores.data() + row * E;
      double S = 0;
      for (int64_t e = 0; e < E; e++) S += s[e];
      for (int64_t e = 0; e < E; e++) P[size_t(e)] += s[e] / S / double(T);
    }
    for (auto& v : f) v *= double(E) / double(K * T);
    double L = 0;
    for (int64_t e = 0; e < E; e++) L += f[size_t(e)] * P[size_t(e)];
    total += L;
    if (!dscores) continue;
    // dL/ds_jt = (f_j - sum_i f_i s'_it) / (T S_t), times alpha / seqs
    for (int64_t t = 0; t < T; t++) {
      const int64_t row = b * T + t;
      const float* s = r.scores.data() + row * E;
      double S = 0, fs = 0;
      for (int64_t e = 0; e < E; e++) S += s[e];
      for (int64_t e = 0; e < E; e++) fs += f[size_t(e)] * s[e] / S;
      const double c = alpha / double(seqs) / (double(T) * S);
      for (int64_t e = 0; e < E; e++) dscores[row * E + e] += float(c * (f[size_t(e)] - fs));
    }
  }
  return alpha * total / double(seqs);
}

}  // namespace dseek
