// Weight products y = x W^T for every weight dtype, row counts 1..12 (GEMV and GEMM paths), widths that are not
// multiples of the vector length, and FP8 blocks cut at an offset, against a double-precision sum over MatRef::at.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/matmul.h"

namespace dseek {
namespace {

struct Weights {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  MatRef ref;
};

// Random [N, K] weights in dtype dt; FP8 with block x block scale blocks.
Weights random_weights(DType dt, int64_t N, int64_t K, uint32_t seed, int64_t block = 16) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  Weights w;
  w.bytes.resize(size_t(N * K) * dtype_size(dt));
  for (int64_t i = 0; i < N * K; i++) {
    const float v = g(rng);
    switch (dt) {
      case DType::F32: reinterpret_cast<float*>(w.bytes.data())[i] = v; break;
      case DType::BF16: reinterpret_cast<uint16_t*>(w.bytes.data())[i] = f32_to_bf16(v); break;
      case DType::F16: reinterpret_cast<uint16_t*>(w.bytes.data())[i] = f32_to_f16(v); break;
      case DType::F8_E4M3: w.bytes[size_t(i)] = f32_to_fp8e4m3(v * 100.0f); break;
      default: ADD_FAILURE() << "dtype";
    }
  }
  w.ref.dtype = dt;
  w.ref.data = w.bytes.data();
  w.ref.rows = N;
  w.ref.cols = K;
  w.ref.ld = K;
  if (dt == DType::F8_E4M3) {
    w.ref.block_rows = w.ref.block_cols = block;
    w.ref.scale_ld = (K + block - 1) / block;
    w.scales.resize(size_t((N + block - 1) / block * w.ref.scale_ld));
    std::uniform_real_distribution<float> u(0.002f, 0.02f);
    for (float& s : w.scales) s = u(rng);
    w.ref.scale_inv = w.scales.data();
  }
  return w;
}

void expect_product(const MatRef& w, int64_t M, uint32_t seed) {
  const int64_t N = w.rows, K = w.cols, ldx = K + 3, ldy = N + 5;
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(size_t(M * ldx)), y(size_t(M * ldy), 7.0f);
  for (float& v : x) v = g(rng);
  for (const bool accumulate : {false, true}) {
    std::vector<float> y0 = y;
    matmul(Matmul{M, x.data(), ldx, w, y.data(), ldy, accumulate});
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = 0; n < N; n++) {
        double want = accumulate ? y0[size_t(m * ldy + n)] : 0.0, mag = 0;
        for (int64_t k = 0; k < K; k++) {
          const double p = double(x[size_t(m * ldx + k)]) * double(w.at(n, k));
          want += p;
          mag += std::fabs(p);
        }
        // F32 accumulation; BF16 products (GEMM path, M > 8) round x to 8 bits of mantissa
        const double tol = (w.dtype == DType::BF16 && M > kGemvMaxRows ? 1e-2 : 2e-5) * (mag + 1.0);
        ASSERT_NEAR(y[size_t(m * ldy + n)], want, tol)
            << dtype_name(w.dtype) << " M=" << M << " K=" << K << " m=" << m << " n=" << n << " acc=" << accumulate;
      }
    for (int64_t m = 0; m < M; m++)  // padding between rows untouched
      for (int64_t n = N; n < ldy; n++) ASSERT_EQ(y[size_t(m * ldy + n)], y0[size_t(m * ldy + n)]);
  }
}

TEST(Kernels, WeightProductsMatchElementwiseReference) {
  for (DType dt : {DType::F32, DType::BF16, DType::F16, DType::F8_E4M3})
    for (int64_t K : {8, 37, 64, 200}) {
      const Weights w = random_weights(dt, 21, K, uint32_t(K));
      for (int64_t M : {1, 2, 3, 4, 5, 7, 8, 9, 12}) expect_product(w.ref, M, uint32_t(M * 100 + K));
    }
}

TEST(Kernels, Fp8DecodeWithDeepSeekBlocksMatchesElementwiseReference) {
  // 128 x 128 blocks as DeepSeek-V3 ships them: batch-1 products take the BF16 dot-product path on CPUs with
  // AVX512-BF16 (whole and partial blocks, rows in fours and a remainder, slices starting on a block)
  Weights w = random_weights(DType::F8_E4M3, 261, 300, 11, 128);
  for (int c = 0; c < 256; c++)  // every E4M3 code but NaN (0x7f, 0xff) somewhere, subnormals included
    w.bytes[size_t(c % 8) * 300 + size_t(c / 8) * 9] = uint8_t((c & 0x7f) == 0x7f ? 0 : c);
  for (int64_t M : {1, 2}) expect_product(w.ref, M, uint32_t(M));
  expect_product(w.ref.row_slice(130, 101).col_slice(128, 172), 1, 5);
  expect_product(w.ref.col_slice(0, 200), 1, 6);
}

TEST(Kernels, Fp8DecodeReadsEveryE4M3CodeExactly) {
  // row c holds only code c (at a column that moves with c), scales 1 and x all ones: y[c] is the code's value,
  // decoded here by hand (sign, 4 exponent bits with bias 7, 3 mantissa bits; subnormals m * 2^-9)
  const int64_t N = 256, K = 160;
  Weights w = random_weights(DType::F8_E4M3, N, K, 1, 128);
  std::fill(w.bytes.begin(), w.bytes.end(), uint8_t(0));
  std::fill(w.scales.begin(), w.scales.end(), 1.0f);
  for (int64_t c = 0; c < N; c++) w.bytes[size_t(c * K + (c * 37) % K)] = (c & 0x7f) == 0x7f ? 0 : uint8_t(c);
  std::vector<float> x(size_t(K), 1.0f), y(size_t(N), -1.0f);
  matmul(Matmul{1, x.data(), K, w.ref, y.data(), N, false});
  for (int64_t c = 0; c < N; c++) {
    if ((c & 0x7f) == 0x7f) continue;
    const int e = int(c >> 3) & 15, m = int(c) & 7;
    const double v = (e == 0 ? m / 8.0 * std::ldexp(1.0, -6) : (1 + m / 8.0) * std::ldexp(1.0, e - 7)) * (c & 0x80 ? -1 : 1);
    EXPECT_EQ(double(y[size_t(c)]), v) << "code " << c;
  }
}

TEST(Kernels, Fp8SlicesKeepTheirBlockScales) {
  // Column and row slices that start inside a scale block (offset 8, and 5: not vector aligned).
  const Weights w = random_weights(DType::F8_E4M3, 40, 72, 3);
  for (int64_t c0 : {8, 5, 16})
    for (int64_t M : {1, 4, 8, 9}) {
      const MatRef s = w.ref.row_slice(3, 30).col_slice(c0, 72 - c0 - 3);
      expect_product(s, M, uint32_t(c0 * 10 + M));
    }
}

}  // namespace
}  // namespace dseek
