#include "kernels/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/convert.h"
#include "kernels/vmath.h"

namespace dseek {

namespace {

constexpr int64_t kBlockQ = 64;

struct Block {
  int64_t h, i0, i1;  // head, query rows [i0, i1)
  int64_t k0, k1;     // keys that any row of the block may see
};

std::vector<Block> make_blocks(const AttentionDims& a) {
  std::vector<Block> blocks;
  for (int64_t h = 0; h < a.heads; h++)
    for (int64_t i0 = 0; i0 < a.Tq; i0 += kBlockQ) {
      const int64_t i1 = std::min(a.Tq, i0 + kBlockQ);
      int64_t k0 = 0;
      if (a.key_begin) {
        k0 = a.key_begin[i0];
        for (int64_t i = i0; i < i1; i++) k0 = std::min<int64_t>(k0, a.key_begin[i]);
      }
      const int64_t k1 = std::min(a.Tk, a.q_pos0 + i1);
      blocks.push_back({h, i0, i1, k0, k1});
    }
  // Largest blocks first for dynamic scheduling.
  std::stable_sort(blocks.begin(), blocks.end(),
                   [](const Block& x, const Block& y) { return (x.k1 - x.k0) > (y.k1 - y.k0); });
  return blocks;
}

inline int64_t kv_heads(const AttentionDims& a) { return a.kv_heads > 0 ? a.kv_heads : a.heads; }
// key/value head read by query head h
inline int64_t kv_head(const AttentionDims& a, int64_t h) { return h / (a.heads / kv_heads(a)); }

inline int64_t row_key_begin(const AttentionDims& a, int64_t i) { return a.key_begin ? a.key_begin[i] : 0; }

// S[r, j] for keys j in [k0, k1): visible iff key_begin(i) <= j <= q_pos0 + i.
void mask_row(const AttentionDims& a, const Block& b, int64_t i, float* s) {
  const int64_t lo = row_key_begin(a, i) - b.k0, hi = a.q_pos0 + i - b.k0;  // inclusive
  const int64_t n = b.k1 - b.k0;
  const float ninf = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < std::min(lo, n); j++) s[j] = ninf;
  for (int64_t j = std::max<int64_t>(hi + 1, 0); j < n; j++) s[j] = ninf;
}

// Products on F32 operands or on their BF16 copies.
struct Operands {
  Precision p;
  const float* f32;
  std::vector<uint16_t> bf16;
  Operands(Precision prec, const float* x, size_t n) : p(prec), f32(x) {
    if (p == Precision::BF16) {
      bf16.resize(n);
      f32_to_bf16_rows(x, 1, int64_t(n), int64_t(n), bf16.data(), int64_t(n));
    }
  }
};

// C = alpha op(A) op(B) + beta C where A, B are offsets into Operands.
void product(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const Operands& A, size_t aoff,
             int64_t lda, const Operands& B, size_t boff, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (A.p == Precision::BF16)
    gemm_bf16(ta, tb, M, N, K, alpha, A.bf16.data() + aoff, lda, B.bf16.data() + boff, ldb, beta, C, ldc);
  else
    gemm(ta, tb, M, N, K, alpha, A.f32 + aoff, lda, B.f32 + boff, ldb, beta, C, ldc, Precision::F32);
}

// Local (per block) BF16 or F32 copy of a small matrix for use as a product operand.
struct LocalOperand {
  Operands op;
  LocalOperand(Precision p, const float* x, size_t n) : op(p, x, n) {}
};

}  // namespace

void attention_forward(const AttentionDims& a, const float* Q, const float* K, const float* V, float* O, int64_t ldo,
                       float* lse, Precision p) {
  if (a.Tq == 0) return;
  const Operands q(p, Q, size_t(a.heads * a.Tq * a.dqk)), k(p, K, size_t(kv_heads(a) * a.Tk * a.dqk)),
      v(p, V, size_t(kv_heads(a) * a.Tk * a.dv));
  const std::vector<Block> blocks = make_blocks(a);
#pragma omp parallel
  {
    std::vector<float> S;
#pragma omp for schedule(dynamic, 1)
    for (size_t bi = 0; bi < blocks.size(); bi++) {
      const Block& b = blocks[bi];
      const int64_t nq = b.i1 - b.i0, nk = b.k1 - b.k0;
      float* out = O + b.i0 * ldo + b.h * a.dv;
      if (nk <= 0) {
        for (int64_t i = 0; i < nq; i++) std::fill(out + i * ldo, out + i * ldo + a.dv, 0.0f);
        continue;
      }
      S.resize(size_t(nq * nk));
      const int64_t kh = kv_head(a, b.h);
      product(false, true, nq, nk, a.dqk, a.scale, q, size_t((b.h * a.Tq + b.i0) * a.dqk), a.dqk, k,
              size_t((kh * a.Tk + b.k0) * a.dqk), a.dqk, 0.0f, S.data(), nk);
      for (int64_t r = 0; r < nq; r++) {
        float* s = S.data() + r * nk;
        mask_row(a, b, b.i0 + r, s);
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < nk; j++) mx = std::max(mx, s[j]);
        float sum = 0;
        if (mx == -std::numeric_limits<float>::infinity()) {  // no visible key
          std::fill(s, s + nk, 0.0f);
        } else {
#pragma omp simd reduction(+ : sum)
          for (int64_t j = 0; j < nk; j++) {
            s[j] = exp_approx(s[j] - mx);
            sum += s[j];
          }
          const float inv = 1.0f / sum;
          for (int64_t j = 0; j < nk; j++) s[j] *= inv;
        }
        if (lse) lse[b.h * a.Tq + b.i0 + r] = sum > 0 ? mx + std::log(sum) : -std::numeric_limits<float>::infinity();
      }
      const LocalOperand P(p, S.data(), S.size());
      product(false, false, nq, a.dv, nk, 1.0f, P.op, 0, nk, v, size_t((kh * a.Tk + b.k0) * a.dv), a.dv, 0.0f, out,
              ldo);
    }
  }
}

void attention_backward(const AttentionDims& a, const float* Q, const float* K, const float* V, const float* O,
                        int64_t ldo, const float* dO, int64_t lddo, const float* lse, float* dQ, float* dK, float* dV,
                        Precision p) {
  std::fill(dQ, dQ + a.heads * a.Tq * a.dqk, 0.0f);
  const int64_t KVH = kv_heads(a);
  std::fill(dK, dK + KVH * a.Tk * a.dqk, 0.0f);
  std::fill(dV, dV + KVH * a.Tk * a.dv, 0.0f);
  if (a.Tq == 0) return;
  const Operands q(p, Q, size_t(a.heads * a.Tq * a.dqk)), k(p, K, size_t(KVH * a.Tk * a.dqk)),
      v(p, V, size_t(KVH * a.Tk * a.dv));
  // dO per head, contiguous: [heads][Tq][dv]
  std::vector<float> dOh(size_t(a.heads * a.Tq * a.dv));
  std::vector<float> Dsum(size_t(a.heads * a.Tq));
  for (int64_t h = 0; h < a.heads; h++)
    for (int64_t i = 0; i < a.Tq; i++) {
      const float* g = dO + i * lddo + h * a.dv;
      const float* o = O + i * ldo + h * a.dv;
      float* dst = dOh.data() + (h * a.Tq + i) * a.dv;
      float d = 0;
      for (int64_t c = 0; c < a.dv; c++) {
        dst[c] = g[c];
        d += g[c] * o[c];
      }
      Dsum[size_t(h * a.Tq + i)] = d;
    }
  const Operands dO_op(p, dOh.data(), dOh.size());
  const std::vector<Block> blocks = make_blocks(a);
  // dK and dV receive contributions from every query block of the query heads that read them: each key/value
  // head (with its group of query heads) is owned by one thread.
#pragma omp parallel
  {
    std::vector<float> S, dP;
#pragma omp for schedule(dynamic, 1)
    for (int64_t kh = 0; kh < KVH; kh++) {
      for (const Block& b : blocks) {
        if (kv_head(a, b.h) != kh) continue;
        const int64_t h = b.h;
        const int64_t nq = b.i1 - b.i0, nk = b.k1 - b.k0;
        if (nk <= 0) continue;
        S.resize(size_t(nq * nk));
        dP.resize(size_t(nq * nk));
        const size_t qoff = size_t((h * a.Tq + b.i0) * a.dqk), koff = size_t((kh * a.Tk + b.k0) * a.dqk);
        const size_t voff = size_t((kh * a.Tk + b.k0) * a.dv), ooff = size_t((h * a.Tq + b.i0) * a.dv);
        product(false, true, nq, nk, a.dqk, a.scale, q, qoff, a.dqk, k, koff, a.dqk, 0.0f, S.data(), nk);
        // dP = dO V^T
        product(false, true, nq, nk, a.dv, 1.0f, dO_op, ooff, a.dv, v, voff, a.dv, 0.0f, dP.data(), nk);
        for (int64_t r = 0; r < nq; r++) {
          float* s = S.data() + r * nk;
          float* dp = dP.data() + r * nk;
          mask_row(a, b, b.i0 + r, s);
          const float l = lse[h * a.Tq + b.i0 + r];
          const float D = Dsum[size_t(h * a.Tq + b.i0 + r)];
          const float lv = std::isinf(l) ? std::numeric_limits<float>::infinity() : l;  // no visible key: P = 0
#pragma omp simd
          for (int64_t j = 0; j < nk; j++) {
            const float pj = exp_approx(s[j] - lv);
            s[j] = pj;                    // P
            dp[j] = pj * (dp[j] - D);     // dS (before the scale)
          }
        }
        const LocalOperand P(p, S.data(), S.size()), dS(p, dP.data(), dP.size());
        // dV += P^T dO ; dK += scale dS^T Q ; dQ += scale dS K
        product(true, false, nk, a.dv, nq, 1.0f, P.op, 0, nk, dO_op, ooff, a.dv, 1.0f, dV + voff, a.dv);
        product(true, false, nk, a.dqk, nq, a.scale, dS.op, 0, nk, q, qoff, a.dqk, 1.0f, dK + koff, a.dqk);
        product(false, false, nq, a.dqk, nk, a.scale, dS.op, 0, nk, k, koff, a.dqk, 1.0f, dQ + qoff, a.dqk);
      }
    }
  }
}

}  // namespace dseek
