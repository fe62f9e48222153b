#include "model/layers/linear_lowp.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "core/error.h"
#include "kernels/fp8_gemm.h"
#include "kernels/lowp.h"

namespace dseek {

namespace {

int64_t blocks(int64_t n, int64_t b) { return (n + b - 1) / b; }

// An uninitialised array (operands are written in full before they are read; no memset per product).
template <class T>
struct Buffer {
  std::unique_ptr<T[]> p;
  explicit Buffer(int64_t n) : p(new T[size_t(n)]) {}
  T* data() const { return p.get(); }
};

// ---- FP8 with tile scales: quantised operands and fp8_gemm

// X [R, C] in 1 x tile groups: E4M3 values as BF16 [R, C] and scales [R, C/tile].
struct RowTiles {
  Buffer<uint16_t> q;
  Buffer<float> s;
  RowTiles(const float* x, int64_t R, int64_t C, int64_t ld, int64_t tile, LowpCounts* counts)
      : q(R * C), s(R * blocks(C, tile)) {
    fp8_quantize_bf16(x, R, C, ld, 1, tile, false, q.data(), C, s.data(), counts);
  }
  Fp8Operand op(int64_t C, int64_t tile) const { return {q.data(), C, false, s.data(), 1, blocks(C, tile), 1}; }
};

// The Wgrad operand: X's row-tiled FP8 values, re-quantised in tile x 1 groups (values [R, C], scales
// [R/tile, C]), as op = X^T [C, R].
struct ColTiles {
  Buffer<uint16_t> q;
  Buffer<float> s;
  ColTiles(const float* x, int64_t R, int64_t C, int64_t ld, int64_t tile, LowpCounts* counts = nullptr)
      : q(R * C), s(blocks(R, tile) * C) {
    Buffer<float> rows(R * C);
    fp8_round_rows(x, R, C, ld, rows.data(), C, tile, false, counts);
    fp8_quantize_bf16(rows.data(), R, C, C, tile, 1, false, q.data(), C, s.data());
  }
  Fp8Operand op(int64_t C) const { return {q.data(), C, true, s.data(), 1, 1, C}; }
};

// The weight's E4M3 codes as BF16 values, with its 128 x 128 block scales.
struct WeightBlocks {
  Buffer<uint16_t> q;
  const float* s;
  int64_t nbc;
  explicit WeightBlocks(const Linear& w) : q(w.weight.numel()), s(w.scale_inv.f32()), nbc(w.scale_inv.dim(1)) {
    fp8_codes_to_bf16(w.weight.as<uint8_t>(), w.weight.numel(), q.data());
  }
  // op = W [out, in] (Fprop: K = in) or W^T [in, out] (Dgrad: K = out)
  Fp8Operand op(const Linear& w) const { return {q.data(), w.in(), false, s, w.block_rows, nbc, 1}; }
  Fp8Operand op_t(const Linear& w) const { return {q.data(), w.in(), true, s, w.block_cols, 1, nbc}; }
};

bool uses_fp8_gemm(const Linear& w) {
  const LowPrecisionRecipe& rc = *w.recipe;
  if (rc.format != LowpFormat::FP8 || rc.tensor_scales || rc.pow2_scales) return false;
  DSEEK_CHECK(w.weight.dtype == DType::F8_E4M3 && w.block_rows == rc.tile && w.block_cols == rc.tile,
              "FP8 training needs {}x{} FP8 weight blocks, got {}", rc.tile, rc.tile, w.weight.desc());
  return true;
}

// ---- the other recipes: the dequantised (or F16-rounded) operands in F32 buffers

std::vector<float> round_rows(const LowPrecisionRecipe& rc, const float* x, int64_t R, int64_t C, int64_t ldx,
                              LowpCounts* counts) {
  std::vector<float> o(static_cast<size_t>(R * C));
  if (rc.format == LowpFormat::F16) f16_round(x, R, C, ldx, o.data(), C, counts);
  else if (rc.tensor_scales) fp8_round_tensor(x, R, C, ldx, o.data(), C, rc.pow2_scales, counts);
  else fp8_round_rows(x, R, C, ldx, o.data(), C, rc.tile, rc.pow2_scales, counts);
  return o;
}

// FP8 Wgrad operand with tile scales: re-quantised in tile x 1 groups (one scale per tensor: already on its grid).
void retile_cols(const LowPrecisionRecipe& rc, std::vector<float>& v, int64_t R, int64_t C) {
  if (rc.format == LowpFormat::FP8 && !rc.tensor_scales)
    fp8_round_cols(v.data(), R, C, C, v.data(), C, rc.tile, rc.pow2_scales);
}

// y (+)= f16(t) for a product t computed in F32 from F16 operands.
void add_f16_output(float* t, int64_t R, int64_t N, float* y, int64_t ldy, bool accumulate) {
  f16_round(t, R, N, N, t, N);
  for (int64_t r = 0; r < R; r++) {
    float* yr = y + r * ldy;
    const float* tr = t + r * N;
    if (accumulate)
      for (int64_t n = 0; n < N; n++) yr[n] += tr[n];
    else
      std::copy(tr, tr + N, yr);
  }
}

}  // namespace

void lowp_linear_forward(int64_t R, const float* x, int64_t ldx, const Linear& w, float* y, int64_t ldy,
                         bool accumulate) {
  const LowPrecisionRecipe& rc = *w.recipe;
  const int64_t K = w.in(), N = w.out();
  if (uses_fp8_gemm(w)) {
    const RowTiles xq(x, R, K, ldx, rc.tile, &rc.activations);
    const WeightBlocks wq(w);
    return fp8_gemm(R, N, K, rc.tile, xq.op(K, rc.tile), wq.op(w), y, ldy, accumulate);
  }
  const std::vector<float> xq = round_rows(rc, x, R, K, ldx, &rc.activations);
  if (rc.format == LowpFormat::FP8) return matmul(Matmul{R, xq.data(), K, MatRef::of(w), y, ldy, accumulate});
  std::vector<float> t(static_cast<size_t>(R * N));
  matmul(Matmul{R, xq.data(), K, MatRef::of(w), t.data(), N});
  add_f16_output(t.data(), R, N, y, ldy, accumulate);
}

void lowp_linear_backward(int64_t R, const float* dy, int64_t lddy, const float* x, int64_t ldx, const Linear& w,
                          float* dx, int64_t lddx, bool accumulate_dx, Linear& grad) {
  const LowPrecisionRecipe& rc = *w.recipe;
  const int64_t out = w.out(), in = w.in();
  if (w.has_bias()) {  // a sum, not a product: from the F32 gradient
    float* db = grad.bias.f32();
    for (int64_t r = 0; r < R; r++)
      for (int64_t n = 0; n < out; n++) db[n] += dy[r * lddy + n];
  }
  if (uses_fp8_gemm(w)) {
    if (dx) {
      const RowTiles dyq(dy, R, out, lddy, rc.tile, nullptr);
      const WeightBlocks wq(w);
      fp8_gemm(R, in, out, rc.tile, dyq.op(out, rc.tile), wq.op_t(w), dx, lddx, accumulate_dx);
    }
    // dY's 1 x tile quantisation is counted here, where it runs whether or not dX is wanted
    const ColTiles dyc(dy, R, out, lddy, rc.tile, &rc.gradients), xc(x, R, in, ldx, rc.tile);
    fp8_gemm(out, in, R, rc.tile, dyc.op(out), xc.op(in), grad.weight.f32(), in, true);
    return;
  }
  std::vector<float> dyq = round_rows(rc, dy, R, out, lddy, &rc.gradients);
  if (dx) {
    Matmul m{R, dyq.data(), out, MatRef::of(w), dx, lddx, accumulate_dx};
    m.w_plain = true;
    std::vector<float> t;
    if (rc.format == LowpFormat::F16) {
      t.resize(size_t(R * in));
      m.y = t.data(), m.ldy = in, m.accumulate = false;
    }
    matmul(m);
    if (rc.format == LowpFormat::F16) add_f16_output(t.data(), R, in, dx, lddx, accumulate_dx);
  }
  std::vector<float> xq = round_rows(rc, x, R, in, ldx, nullptr);
  if (rc.format == LowpFormat::FP8) {
    retile_cols(rc, dyq, R, out);
    retile_cols(rc, xq, R, in);
    // power-of-two scales keep every value exact in BF16: the BF16 product is the same sum, faster
    gemm(true, false, out, in, R, 1.0f, dyq.data(), out, xq.data(), in, 1.0f, grad.weight.f32(), in,
         rc.pow2_scales ? Precision::BF16 : Precision::F32);
    return;
  }
  std::vector<float> t(static_cast<size_t>(out * in));
  gemm(true, false, out, in, R, 1.0f, dyq.data(), out, xq.data(), in, 0.0f, t.data(), in, Precision::F32);
  add_f16_output(t.data(), out, in, grad.weight.f32(), in, true);
}

}  // namespace dseek
