// Low-precision operands (kernels/lowp.h, kernels/fp8_gemm.h, model/layers/linear_lowp.h): FP8 tiles and
// blocks bit-exact against the definition, evaluated here by enumerating the E4M3 grid with a hand decoder;
// the FP8 products against double-precision sums of the same quantised operands and, by DeepGEMM's criterion,
// against the F32 products; F16 against a hand rounding; the promotion of a narrow accumulator.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/dtype.h"
#include "kernels/fp8_gemm.h"
#include "kernels/lowp.h"
#include "model/layers/decoder_layer.h"
#include "model/layers/linear.h"
#include "model/model.h"
#include "train/graph.h"
#include "numeric_util.h"
#include "test_util.h"

namespace dseek {
namespace {

using test::e4m3;

// The nearest E4M3 value to y (ties: the even code), saturating at 448; NaN for inf and NaN.
double ref_e4m3(double y) {
  if (!std::isfinite(y)) return NAN;
  const double a = std::fabs(y);
  int best = 0;
  for (int c = 1; c <= 0x7e; c++) {
    const double d = std::fabs(a - e4m3(uint8_t(c))), db = std::fabs(a - e4m3(uint8_t(best)));
    if (d < db || (d == db && (c & 1) == 0)) best = c;
  }
  return std::copysign(e4m3(uint8_t(best)), y);
}

// The group scale by the definition: amax over finite values / 448 (1 for no non-zero values), at least FLT_MIN;
// pow2: the next power of two at or above.
float ref_scale(const std::vector<float>& group, bool pow2) {
  float amax = 0;
  for (float v : group)
    if (std::isfinite(v)) amax = std::max(amax, std::fabs(v));
  if (amax == 0) return 1.0f;
  float s = std::max(amax / 448.0f, FLT_MIN);
  if (pow2) s = float(std::exp2(std::ceil(std::log2(double(s)))));
  return s;
}

// Reference quantisation of X [R, C] in br x bc groups: values q (E4M3, as doubles) and the scale of each element.
struct RefQuant {
  std::vector<double> q;
  std::vector<float> s;
};
RefQuant ref_quant(const std::vector<float>& x, int64_t R, int64_t C, int64_t br, int64_t bc, bool pow2) {
  RefQuant o{std::vector<double>(x.size()), std::vector<float>(x.size())};
  for (int64_t r0 = 0; r0 < R; r0 += br)
    for (int64_t c0 = 0; c0 < C; c0 += bc) {
      std::vector<float> g;
      for (int64_t r = r0; r < std::min(R, r0 + br); r++)
        for (int64_t c = c0; c < std::min(C, c0 + bc); c++) g.push_back(x[size_t(r * C + c)]);
      const float s = ref_scale(g, pow2);
      for (int64_t r = r0; r < std::min(R, r0 + br); r++)
        for (int64_t c = c0; c < std::min(C, c0 + bc); c++) {
          o.q[size_t(r * C + c)] = ref_e4m3(double(x[size_t(r * C + c)] / s));
          o.s[size_t(r * C + c)] = s;
        }
    }
  return o;
}
std::vector<float> ref_dequant(const RefQuant& q) {
  std::vector<float> v(q.q.size());
  for (size_t i = 0; i < v.size(); i++) v[i] = float(q.q[i]) * q.s[i];
  return v;
}

// Values that exercise every case: a normal spread, tiny values (E4M3 subnormals after scaling), exact ties,
// a zero row, NaN and inf, a huge outlier.
std::vector<float> tricky_matrix(int64_t R, int64_t C, uint64_t seed) {
  std::vector<float> x = test::randn(size_t(R * C), seed);
  for (int64_t c = 0; c < C; c++) x[size_t(1 * C + c)] = 0.0f;                       // row 1: zeros
  for (int64_t c = 0; c < C; c++) x[size_t(2 * C + c)] *= (c % 7 == 0) ? 1.0f : 1e-4f;  // row 2: many underflow
  if (R > 3) {
    x[size_t(3 * C + 5)] = NAN;
    x[size_t(3 * C + 9)] = INFINITY;
    x[size_t(3 * C + 11)] = -INFINITY;
  }
  if (R > 4) x[size_t(4 * C + 3)] = 3e30f;
  // row 0: amax 448 (scale 1), so these land on E4M3 midpoints (ties) and subnormals
  x[0] = 448.0f;
  if (C > 4) x[1] = 1.0625f, x[2] = 1.1875f, x[3] = -0.00390625f * 1.5f, x[4] = 0.0009765625f * 1.5f;
  return x;
}

bool same(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }
double decode(uint8_t c) { return (c & 0x7f) == 0x7f ? NAN : e4m3(c); }

TEST(Lowp, E4M3RoundingMatchesTheGridEverywhere) {
  // every E4M3 value and the midpoints between neighbours (ties to even), both signs, and random values
  std::vector<double> probes;
  for (int c = 0; c <= 0x7e; c++) {
    probes.push_back(e4m3(uint8_t(c)));
    if (c < 0x7e) probes.push_back((e4m3(uint8_t(c)) + e4m3(uint8_t(c + 1))) / 2);
  }
  for (double v : {449.0, 463.99, 464.0, 464.01, 479.0, 480.0, 1e6, 1e-10, 0.0009765625, 0.00097656, 3e38})
    probes.push_back(v);
  for (float v : test::randn(4000, 3, 30.0f)) probes.push_back(v);
  for (float v : test::randn(2000, 4, 0.01f)) probes.push_back(v);
  for (double p : probes)
    for (double s : {1.0, -1.0}) {
      const float x = float(p * s);
      EXPECT_EQ(double(e4m3_round(x)), ref_e4m3(x)) << x;
      EXPECT_EQ(e4m3(f32_to_fp8e4m3(x)), ref_e4m3(x)) << x;  // the checkpoint converter agrees
    }
  EXPECT_TRUE(std::isnan(e4m3_round(NAN)));
  EXPECT_TRUE(std::isnan(e4m3_round(INFINITY)));
  EXPECT_EQ(e4m3_round(464.0f), 448.0f);  // the tie between 448 and 480 goes to 448 (even), not out of range
}

TEST(Lowp, ScalesFollowAmaxOrThePowerOfTwoAbove) {
  EXPECT_EQ(fp8_scale_of(448.0f, false), 1.0f);
  EXPECT_EQ(fp8_scale_of(896.0f, false), 2.0f);
  EXPECT_EQ(fp8_scale_of(0.0f, false), 1.0f);
  EXPECT_EQ(fp8_scale_of(1e-40f, false), FLT_MIN);
  EXPECT_EQ(fp8_scale_of(448.0f, true), 1.0f);    // exactly a power of two stays
  EXPECT_EQ(fp8_scale_of(449.0f, true), 2.0f);    // just above: the next power
  EXPECT_EQ(fp8_scale_of(100.0f, true), 0.25f);   // 100/448 = 0.223 -> 0.25
}

TEST(Lowp, TilesAndBlocksAreBitExactAgainstTheDefinition) {
  const int64_t R = 261, C = 300;  // edge tiles: 300 = 2 x 128 + 44, 261 = 2 x 128 + 5
  const std::vector<float> x = tricky_matrix(R, C, 9);
  struct Case { int64_t br, bc; bool pow2; };
  for (Case k : {Case{1, 128, false}, Case{128, 1, false}, Case{128, 128, false}, Case{1, 128, true}, Case{R, C, false}}) {
    SCOPED_TRACE(testing::Message() << k.br << "x" << k.bc << (k.pow2 ? " pow2" : ""));
    const RefQuant ref = ref_quant(x, R, C, k.br, k.bc, k.pow2);
    const int64_t nbc = (C + k.bc - 1) / k.bc;
    std::vector<uint8_t> codes(x.size());
    std::vector<float> scales(size_t(((R + k.br - 1) / k.br) * nbc));
    LowpCounts counts;
    fp8_quantize_blocks(x.data(), R, C, C, k.br, k.bc, k.pow2, codes.data(), scales.data(), &counts);
    std::vector<uint16_t> b16(x.size());
    std::vector<float> s16(scales.size());
    fp8_quantize_bf16(x.data(), R, C, C, k.br, k.bc, k.pow2, b16.data(), C, s16.data());
    int64_t bad = 0, underflow = 0;
    for (int64_t r = 0; r < R; r++)
      for (int64_t c = 0; c < C; c++) {
        const size_t i = size_t(r * C + c);
        const float s = scales[size_t((r / k.br) * nbc + c / k.bc)];
        bad += !same(decode(codes[i]), ref.q[i]) || s != ref.s[i] || s16[size_t((r / k.br) * nbc + c / k.bc)] != s;
        float v16;
        const uint32_t u = uint32_t(b16[i]) << 16;
        std::memcpy(&v16, &u, 4);
        bad += !same(v16, ref.q[i]);
        underflow += ref.q[i] == 0 && x[i] != 0 && std::isfinite(x[i]);
      }
    EXPECT_EQ(bad, 0);
    EXPECT_EQ(counts.values.load(), R * C);
    EXPECT_EQ(counts.underflow.load(), underflow);
    EXPECT_GT(underflow, 0);  // row 2's small values
    // the dequantising variants give q * s exactly
    std::vector<float> out(x.size());
    if (k.br == 1 && k.bc == 128) fp8_round_rows(x.data(), R, C, C, out.data(), C, 128, k.pow2);
    else if (k.br == 128 && k.bc == 1) fp8_round_cols(x.data(), R, C, C, out.data(), C, 128, k.pow2);
    else if (k.br == R) fp8_round_tensor(x.data(), R, C, C, out.data(), C, k.pow2);
    else continue;
    const std::vector<float> want = ref_dequant(ref);
    for (size_t i = 0; i < x.size(); i++) bad += !same(out[i], want[i]);
    EXPECT_EQ(bad, 0);
  }
}

TEST(Lowp, AmaxScalingNeverSaturatesAndF16CountsOverflowAndUnderflow) {
  std::vector<float> x = {1.0f, 2.0f, 500.0f};
  LowpCounts counts;
  std::vector<float> out(3);
  fp8_round_rows(x.data(), 1, 3, 3, out.data(), 3, 128, false, &counts);
  EXPECT_EQ(counts.saturated.load(), 0);  // amax scaling never saturates
  EXPECT_EQ(out[2], 500.0f);               // amax itself maps to 448 * s exactly
  // F16: 1e5 overflows to inf, 1e-8 underflows to 0
  std::vector<float> h = {1e5f, 1e-8f, 1.0f, 65504.0f, 65519.0f, 65520.0f};
  out.resize(h.size());
  f16_round(h.data(), 1, 6, 6, out.data(), 6, &counts);
  EXPECT_EQ(counts.saturated.load(), 2);  // 1e5 and 65520 (the midpoint to 65536 rounds up, to inf)
  EXPECT_EQ(counts.underflow.load(), 1);
}

// IEEE binary16 rounding by hand: 11 significant bits, subnormal grid 2^-24, beyond 65520 (the midpoint) inf.
double ref_f16(double v) {
  if (!std::isfinite(v) || v == 0) return v;
  const double a = std::fabs(v);
  if (a >= 65520.0) return std::copysign(INFINITY, v);
  int e;
  std::frexp(a, &e);  // a = m 2^e, m in [0.5, 1)
  const double ulp = std::ldexp(1.0, std::max(e - 11, -24));
  return std::copysign(std::nearbyint(a / ulp) * ulp, v);
}

TEST(Lowp, F16RoundingMatchesTheHandRounding) {
  std::vector<float> x = test::randn(5000, 12, 100.0f);
  for (float v : test::randn(3000, 13, 1e-5f)) x.push_back(v);  // subnormals and underflow
  for (float v : {65504.0f, 65519.9f, 65520.0f, 1e5f, 2.9802322e-8f, 5.9604645e-8f, 8.9e-8f, 1.00048828125f}) x.push_back(v);
  std::vector<float> out(x.size());
  f16_round(x.data(), 1, int64_t(x.size()), int64_t(x.size()), out.data(), int64_t(x.size()));
  for (size_t i = 0; i < x.size(); i++) EXPECT_EQ(double(out[i]), ref_f16(x[i])) << x[i];
}

// ||x - y||^2 / (||x||^2 + ||y||^2): DeepGEMM's test criterion
double deepgemm_diff(const std::vector<float>& x, const std::vector<double>& y) {
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); i++) {
    num += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    den += double(x[i]) * x[i] + y[i] * y[i];
  }
  return num / den;
}
std::vector<double> ref_matmul_nt(const std::vector<float>& a, const std::vector<float>& b, int64_t M, int64_t N, int64_t K) {
  std::vector<double> c(size_t(M * N), 0.0);
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      double s = 0;
      for (int64_t k = 0; k < K; k++) s += double(a[size_t(m * K + k)]) * double(b[size_t(n * K + k)]);
      c[size_t(m * N + n)] = s;
    }
  return c;
}
std::vector<float> transpose(const std::vector<float>& a, int64_t R, int64_t C) {
  std::vector<float> t(a.size());
  for (int64_t r = 0; r < R; r++)
    for (int64_t c = 0; c < C; c++) t[size_t(c * R + r)] = a[size_t(r * C + c)];
  return t;
}

struct LinearCase {
  int64_t R = 300, in = 200, out = 260;
  std::vector<float> x, w, dy;
  LinearCase() : x(test::randn(size_t(R * in), 21)), w(test::randn(size_t(out * in), 22, 0.05f)), dy(test::randn(size_t(R * out), 23, 1e-3f)) {
    x[17] = 40.0f;  // an activation outlier
  }
  // The Linear as MixedPrecision's compute copy holds it for the recipe.
  Linear linear(const LowPrecisionRecipe& rc) const {
    Linear l;
    if (rc.format == LowpFormat::F16) {
      l.weight = Tensor::empty(DType::F16, {out, in});
      convert_from_f32(w.data(), DType::F16, l.weight.data, w.size());
    } else {
      const int64_t br = rc.tensor_scales ? out : 128, bc = rc.tensor_scales ? in : 128;
      l.weight = Tensor::empty(DType::F8_E4M3, {out, in});
      l.scale_inv = Tensor::empty(DType::F32, {(out + br - 1) / br, (in + bc - 1) / bc});
      l.block_rows = br, l.block_cols = bc;
      fp8_quantize_blocks(w.data(), out, in, in, br, bc, rc.pow2_scales, l.weight.as<uint8_t>(), l.scale_inv.f32());
    }
    l.recipe = &rc;
    return l;
  }
};

// Fprop, Dgrad and Wgrad of each FP8 recipe against (1) the double-precision products of operands quantised by
// the reference quantiser — the recipe's definition, including the 128 x 1 re-tiling of the FP8 values for
// Wgrad — and (2) the F32 products, by DeepGEMM's criterion (< 1e-3).
TEST(Lowp, Fp8LinearProductsMatchTheirDefinitionAndTheF32Products) {
  const LinearCase t;
  const int64_t R = t.R, in = t.in, out = t.out;
  for (int mode = 0; mode < 3; mode++) {
    LowPrecisionRecipe rc;
    rc.tensor_scales = mode == 2;
    rc.pow2_scales = mode == 1;
    SCOPED_TRACE(mode == 0 ? "tile scales" : mode == 1 ? "pow2 tile scales" : "tensor scales");
    const Linear l = t.linear(rc);
    Linear g;
    g.weight = Tensor::zeros(DType::F32, {out, in});
    std::vector<float> y(size_t(R * out)), dx(size_t(R * in));
    linear_forward(R, t.x.data(), in, l, y.data(), out);
    linear_backward(R, t.dy.data(), out, t.x.data(), in, l, dx.data(), in, false, g, Precision::F32);
    // reference operands
    const int64_t tr = rc.tensor_scales ? R : 1, tc = rc.tensor_scales ? in : 128, to = rc.tensor_scales ? out : 128;
    const std::vector<float> xq = ref_dequant(ref_quant(t.x, R, in, tr, tc, rc.pow2_scales));
    const std::vector<float> dyq = ref_dequant(ref_quant(t.dy, R, out, tr, rc.tensor_scales ? out : 128, rc.pow2_scales));
    const std::vector<float> wq = ref_dequant(ref_quant(t.w, out, in, rc.tensor_scales ? out : 128, rc.tensor_scales ? in : 128, rc.pow2_scales));
    const std::vector<float> xq2 = rc.tensor_scales ? xq : ref_dequant(ref_quant(xq, R, in, 128, 1, rc.pow2_scales));
    const std::vector<float> dyq2 = rc.tensor_scales ? dyq : ref_dequant(ref_quant(dyq, R, out, 128, 1, rc.pow2_scales));
    const auto y_def = ref_matmul_nt(xq, wq, R, out, in);
    const auto dx_def = ref_matmul_nt(dyq, transpose(wq, out, in), R, in, out);
    const auto dw_def = ref_matmul_nt(transpose(dyq2, R, out), transpose(xq2, R, in), out, in, R);
    EXPECT_LT(deepgemm_diff(y, y_def), 1e-12);
    EXPECT_LT(deepgemm_diff(dx, dx_def), 1e-12);
    EXPECT_LT(deepgemm_diff(std::vector<float>(g.weight.f32(), g.weight.f32() + out * in), dw_def), 1e-12);
    // DeepGEMM's criterion for each GEMM against the F32 product of its inputs: Fprop and Dgrad take the F32
    // activations and gradients; Wgrad takes the FP8 values of the forward's X and the Dgrad's dY (re-tiled)
    const auto y32 = ref_matmul_nt(t.x, t.w, R, out, in);
    const auto dx32 = ref_matmul_nt(t.dy, transpose(t.w, out, in), R, in, out);
    const auto dw_in = ref_matmul_nt(transpose(dyq, R, out), transpose(xq, R, in), out, in, R);
    const std::vector<float> dw(g.weight.f32(), g.weight.f32() + out * in);
    const double ey = deepgemm_diff(y, y32), edx = deepgemm_diff(dx, dx32), edw = deepgemm_diff(dw, dw_in);
    EXPECT_LT(ey, 1e-3);
    EXPECT_LT(edx, 1e-3);
    EXPECT_LT(edw, 1e-3);
    EXPECT_GT(ey, 1e-6);  // FP8 operands really were used
    // end to end, Wgrad carries both quantisations of its operands (reported, docs/low-precision.md)
    const double edw_total = deepgemm_diff(dw, ref_matmul_nt(transpose(t.dy, R, out), transpose(t.x, R, in), out, in, R));
    EXPECT_LT(edw_total, 3e-3);
    RecordProperty(mode == 0 ? "tile" : mode == 1 ? "pow2" : "tensor", testing::PrintToString(std::vector<double>{ey, edx, edw, edw_total}));
  }
}

TEST(Lowp, Fp8GemmPromotesEachBlockExactly) {
  // fp8_gemm on its own against the double sum of sa sb qa qb, every layout it is called with
  const int64_t M = 70, N = 150, K = 300;
  const std::vector<float> a = test::randn(size_t(M * K), 31), b = test::randn(size_t(N * K), 32);
  const RefQuant qa = ref_quant(a, M, K, 1, 128, false), qb = ref_quant(b, N, K, 128, 128, false);
  std::vector<uint16_t> va(a.size()), vb(b.size());
  std::vector<float> sa(size_t(M * 3)), sb(size_t(2 * 3));
  fp8_quantize_bf16(a.data(), M, K, K, 1, 128, false, va.data(), K, sa.data());
  fp8_quantize_bf16(b.data(), N, K, K, 128, 128, false, vb.data(), K, sb.data());
  std::vector<float> c(size_t(M * N), 1.0f);
  fp8_gemm(M, N, K, 128, Fp8Operand{va.data(), K, false, sa.data(), 1, 3, 1}, Fp8Operand{vb.data(), K, false, sb.data(), 128, 3, 1},
           c.data(), N, true);
  const auto want = ref_matmul_nt(ref_dequant(qa), ref_dequant(qb), M, N, K);
  double worst = 0;
  for (size_t i = 0; i < c.size(); i++) worst = std::max(worst, std::fabs(double(c[i]) - 1.0 - want[i]) / (std::fabs(want[i]) + 1));
  EXPECT_LT(worst, 1e-5);
}

TEST(Lowp, F16LinearRoundsOperandsAndOutputs) {
  const LinearCase t;
  LowPrecisionRecipe rc;
  rc.format = LowpFormat::F16;
  const Linear l = t.linear(rc);
  std::vector<float> y(size_t(t.R * t.out));
  linear_forward(t.R, t.x.data(), t.in, l, y.data(), t.out);
  std::vector<float> xh(t.x.size()), wh(t.w.size());
  for (size_t i = 0; i < xh.size(); i++) xh[i] = float(ref_f16(t.x[i]));
  for (size_t i = 0; i < wh.size(); i++) wh[i] = float(ref_f16(t.w[i]));
  const auto want = ref_matmul_nt(xh, wh, t.R, t.out, t.in);
  for (size_t i = 0; i < y.size(); i++) {
    ASSERT_EQ(double(y[i]), ref_f16(double(y[i]))) << "output not on the F16 grid";
    ASSERT_NEAR(y[i], want[i], std::fabs(want[i]) * 1e-3 + 1e-6) << i;
  }
}

TEST(Lowp, PromotionRescuesANarrowAccumulator) {
  // Hand-derived: 64 ones summed with 5 significant bits: at 32 the last bit is worth 2, so 32 + 1 = 33 rounds
  // back to 32 (ties to even) and the sum stays 32; promoted every 16, each partial 16 is exact: 64.
  std::vector<float> ones(64, 1.0f);
  EXPECT_EQ(fp8_dot_limited(ones.data(), ones.data(), 64, 4, 64), 32.0f);
  EXPECT_EQ(fp8_dot_limited(ones.data(), ones.data(), 64, 4, 16), 64.0f);
  // DeepSeek-V3's figure: K = 4096 with a ~14-bit accumulator loses about 2% without promotion
  const int64_t K = 4096;
  std::vector<float> a(K), b(K);
  const std::vector<float> ra = test::randn(K, 41), rb = test::randn(K, 42);
  double exact = 0;
  for (int64_t k = 0; k < K; k++) {
    a[size_t(k)] = e4m3_round(std::fabs(ra[size_t(k)]) * 100), b[size_t(k)] = e4m3_round(std::fabs(rb[size_t(k)]) * 100);
    exact += double(a[size_t(k)]) * b[size_t(k)];
  }
  const double e_none = std::fabs(fp8_dot_limited(a.data(), b.data(), K, 13, K) - exact) / exact;
  const double e_128 = std::fabs(fp8_dot_limited(a.data(), b.data(), K, 13, 128) - exact) / exact;
  RecordProperty("relative_error_no_promotion", testing::PrintToString(e_none));
  RecordProperty("relative_error_promotion_128", testing::PrintToString(e_128));
  EXPECT_GT(e_none, 1e-3);
  EXPECT_LT(e_128, e_none / 10);
}

}  // namespace
}  // namespace dseek

namespace dseek {
namespace {

TEST(Lowp, Fp8MatrixRoundTripsAndStoresAgainUnchanged) {
  const std::vector<float> x = tricky_matrix(7, 300, 51);
  Fp8Matrix a;
  a.store(x.data(), 7, 300, 300);
  EXPECT_EQ(a.bytes(), 7u * 300u + 7u * 3u * 4u);  // one byte per value, a float per 1 x 128 tile
  std::vector<float> y(x.size());
  a.load(y.data());
  const std::vector<float> want = ref_dequant(ref_quant(x, 7, 300, 1, 128, false));
  for (size_t i = 0; i < x.size(); i++) EXPECT_TRUE(same(y[i], want[i])) << i;
  Fp8Matrix b;
  b.store(y.data(), 7, 300, 300);
  EXPECT_EQ(b.q, a.q);
  EXPECT_EQ(b.s, a.s);
}

// DeepSeek-V3's FP8 activation cache (FFN and expert inputs and SwiGLU inputs in FP8, SwiGLU recomputed): the MoE
// and dense layers' gradients stay within the FP8 error of the F32-cached ones, and the cached bytes fall.
TEST(Lowp, Fp8ActivationCacheKeepsGradientsAndSavesMemory) {
  ModelConfig c = ModelConfig::load(test::source_dir() + "/configs/tiny.json");
  Model m = Model::random(c, 5);
  const TrainShape s = TrainShape::dense(4, 40);
  const int64_t R = 160, D = c.hidden_size;
  for (int64_t layer : {0, 1}) {  // dense, MoE
    SCOPED_TRACE(layer);
    const LayerWeights& L = m.w.layers[size_t(layer)];
    const std::vector<float> x0 = test::randn(size_t(R * D), 3), proj = test::randn(size_t(R * D), 4);
    std::vector<std::vector<float>> grads;
    size_t cache_bytes[2] = {0, 0};
    std::vector<float> dxs[2];
    for (int fp8 = 0; fp8 < 2; fp8++) {
      TrainOptions o;
      o.fp8_activations = fp8;
      std::vector<float> x = x0;
      LayerCache lc;
      layer_forward(c, L, m.rope, s, o, x.data(), lc);
      auto fbytes = [](const std::vector<float>& v) { return v.size() * 4; };
      for (const ExpertBatch& b : lc.moe.experts)
        cache_bytes[fp8] += fbytes(b.x) + fbytes(b.g) + fbytes(b.u) + fbytes(b.h) + b.xq.bytes() + b.gq.bytes() + b.uq.bytes();
      for (const FFNCache* f : {&lc.dense, &lc.moe.shared})
        cache_bytes[fp8] += fbytes(f->g) + fbytes(f->u) + fbytes(f->h) + f->gq.bytes() + f->uq.bytes();
      ModelWeights g = zeros_like_weights(c, true);
      dxs[fp8] = proj;
      layer_backward(c, L, g.layers[size_t(layer)], m.rope, s, o, lc, dxs[fp8].data());
      for_each_param(c, g, [&](ParamRef& p) {
        if (p.name.find("layers." + std::to_string(layer) + ".mlp") != std::string::npos)
          grads.emplace_back(p.tensor->f32(), p.tensor->f32() + p.tensor->numel());
      });
    }
    auto diff = [](const std::vector<float>& a, const std::vector<float>& b) {
      return deepgemm_diff(a, std::vector<double>(b.begin(), b.end()));
    };
    EXPECT_LT(diff(dxs[1], dxs[0]), 1e-3);
    EXPECT_GT(diff(dxs[1], dxs[0]), 0.0);  // the FP8 values were used
    const size_t n = grads.size() / 2;
    for (size_t i = 0; i < n; i++) {
      double norm = 0;
      for (float v : grads[i]) norm += double(v) * v;
      if (norm > 0) EXPECT_LT(diff(grads[n + i], grads[i]), 1e-3) << "parameter " << i;
    }
    EXPECT_LT(double(cache_bytes[1]), 0.3 * double(cache_bytes[0])) << cache_bytes[1] << " vs " << cache_bytes[0];
    RecordProperty(layer ? "moe_cache_bytes_f32_fp8_dxdiff" : "dense_cache_bytes_f32_fp8_dxdiff",
                   testing::PrintToString(std::vector<double>{double(cache_bytes[0]), double(cache_bytes[1]), diff(dxs[1], dxs[0])}));
  }
}

}  // namespace
}  // namespace dseek
