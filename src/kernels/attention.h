// Causal multi-head attention over one sequence, computed in blocks of query rows so that no [T, T] score
// matrix is ever held (memory O(block x T) per thread). Scores use oneDNN products per block.
#pragma once
#include <cstdint>

#include "kernels/matmul.h"

namespace dseek {

struct AttentionDims {
  int64_t heads = 0, Tq = 0, Tk = 0, dqk = 0, dv = 0;
  int64_t kv_heads = 0;  // grouped-query attention: query head h reads key/value head h / (heads / kv_heads); 0: heads
  int64_t q_pos0 = 0;  // query row i sits at key index q_pos0 + i and sees keys [key_begin[i], q_pos0 + i]
  float scale = 1.0f;
  const int32_t* key_begin = nullptr;  // per query row (packed documents, windows); null: 0
};

// Q [heads][Tq][dqk], K [kv_heads][Tk][dqk], V [kv_heads][Tk][dv] (each head contiguous).
// O[i * ldo + h * dv + d]; lse [heads][Tq] = log sum_j exp(scale q.k_j) if non-null.
void attention_forward(const AttentionDims& a, const float* Q, const float* K, const float* V, float* O, int64_t ldo,
                       float* lse, Precision p = Precision::F32);

// Given dO (same layout as O), O and lse from the forward pass: dQ, dK, dV (same layouts as Q, K, V; overwritten).
// P is recomputed block by block: P = exp(scale QK^T - lse), D_i = dO_i . O_i, dS = P (dO V^T - D),
// dQ = scale dS K, dK = scale dS^T Q, dV = P^T dO.
void attention_backward(const AttentionDims& a, const float* Q, const float* K, const float* V, const float* O,
                        int64_t ldo, const float* dO, int64_t lddo, const float* lse, float* dQ, float* dK, float* dV,
                        Precision p = Precision::F32);

}  // namespace dseek
