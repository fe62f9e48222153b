// Low-precision operands of the training products (DeepSeek-V3 tech report, section 3.3: fine-grained FP8).
//
// FP8 E4M3 (OCP "e4m3fn": max 448, subnormals down to 2^-9, no infinity). A group G of values (a 1x128 tile of
// one token's channels, a 128x1 tile of one channel over 128 tokens, a 128x128 weight block, or a whole tensor)
// is scaled by its current amax:
//     s = amax(G) / 448          (or, with pow2, 2^ceil(log2(amax / 448)): DeepSeek-V3.1's UE8M0 scales)
//     q = e4m3(x / s)            round to nearest even, saturating at +-448
//     x ~= q * s
// amax is taken over the finite values; a group of zeros has s = 1; s is at least FLT_MIN (a normal float).
// E4M3 has no infinity: an inf or NaN input becomes NaN, so an overflow stays visible to the step's checks.
//
// The training products (kernels/fp8_gemm.h) multiply the E4M3 values exactly and accumulate 128-element blocks in
// F32 before scaling them (the report's promotion interval); fp8_dot_limited emulates a narrower accumulator.
//
// F16 (IEEE binary16): x rounded to nearest even; beyond 65504 it becomes inf, below 2^-25 it becomes 0.
#pragma once
#include <atomic>
#include <cstdint>
#include <vector>

namespace dseek {

constexpr float kE4M3Max = 448.0f;

// x rounded to the nearest E4M3 value (ties to even), saturating at +-448; NaN and +-inf give NaN.
float e4m3_round(float x);
// The scale of a group with absolute maximum `amax` (finite values only).
float fp8_scale_of(float amax, bool pow2);

// What one kind of operand lost to a format: values rounded, finite non-zero values that became zero
// (underflow), values clipped at the format's maximum (or, for F16, that became inf).
struct LowpCounts {
  std::atomic<int64_t> values{0}, underflow{0}, saturated{0};
  void add(int64_t n, int64_t u, int64_t s) {
    values.fetch_add(n, std::memory_order_relaxed);
    underflow.fetch_add(u, std::memory_order_relaxed);
    saturated.fetch_add(s, std::memory_order_relaxed);
  }
  void reset() { values = 0, underflow = 0, saturated = 0; }
};

// Quantise-dequantise (the values the FP8 products see), out may equal x. Rows of X [R, C] (leading dims ld):
//   fp8_round_rows:  1 x tile groups along C (per token)   — Fprop/Dgrad activation and gradient operands
//   fp8_round_cols:  tile x 1 groups along R (per channel) — Wgrad operands
//   fp8_round_blocks: br x bc blocks                         — weights (and the three others)
//   fp8_round_tensor: one group
void fp8_round_blocks(const float* x, int64_t R, int64_t C, int64_t ldx, float* out, int64_t ldo, int64_t br, int64_t bc,
                      bool pow2, LowpCounts* counts = nullptr);
void fp8_round_rows(const float* x, int64_t R, int64_t C, int64_t ldx, float* out, int64_t ldo, int64_t tile, bool pow2,
                    LowpCounts* counts = nullptr);
void fp8_round_cols(const float* x, int64_t R, int64_t C, int64_t ldx, float* out, int64_t ldo, int64_t tile, bool pow2,
                    LowpCounts* counts = nullptr);
void fp8_round_tensor(const float* x, int64_t R, int64_t C, int64_t ldx, float* out, int64_t ldo, bool pow2,
                      LowpCounts* counts = nullptr);
// Quantise a matrix [R, C] into E4M3 codes q [R, C] and F32 scales [ceil(R/br), ceil(C/bc)] (the layout of
// DeepSeek-V3's weight_scale_inv); the same groups as above with br = 1 (rows) or bc = 1 (cols).
void fp8_quantize_blocks(const float* x, int64_t R, int64_t C, int64_t ldx, int64_t br, int64_t bc, bool pow2,
                         uint8_t* q, float* scale_inv, LowpCounts* counts = nullptr);

// How the Linears of a training run round their operands (Linear::recipe; null: as the weight dtype says).
// FP8: inputs and output gradients in 1 x tile groups for Fprop and Dgrad, both re-tiled tile x 1 from their
// FP8 values for Wgrad (DeepSeek's choice: the transposed operand is quantised again from the FP8 values, not
// from the F32 originals); weights in tile x tile blocks (the compute copy); or one scale per tensor.
// F16: every operand and every product output rounded to F16 (the output can overflow to inf).
enum class LowpFormat { FP8, F16 };
struct LowPrecisionRecipe {
  LowpFormat format = LowpFormat::FP8;
  bool tensor_scales = false;  // FP8: one scale per tensor instead of tiles and blocks
  bool pow2_scales = false;    // FP8: scales rounded up to powers of two
  int64_t tile = 128;
  mutable LowpCounts activations, gradients;  // what the Linear inputs and the output gradients lost
};

// As fp8_quantize_blocks, the E4M3 values written as BF16 bits (exact) into q [R, C] (leading dim ldq), for
// fp8_gemm; scale [ceil(R/br), ceil(C/bc)].
void fp8_quantize_bf16(const float* x, int64_t R, int64_t C, int64_t ldx, int64_t br, int64_t bc, bool pow2,
                       uint16_t* q, int64_t ldq, float* scale, LowpCounts* counts = nullptr);
// E4M3 codes [n] -> BF16 bits of their values.
void fp8_codes_to_bf16(const uint8_t* codes, int64_t n, uint16_t* out);

// A matrix [rows, cols] kept as E4M3 codes in 1 x tile groups with their scales (1 byte per value plus one float
// per tile): activations cached for the backward pass in FP8 (DeepSeek-V3 report, section 3.3.4). Storing the
// loaded values again gives the same codes and scales (amax scaling is idempotent).
struct Fp8Matrix {
  std::vector<uint8_t> q;  // [rows, cols]
  std::vector<float> s;    // [rows, ceil(cols / tile)]
  int64_t rows = 0, cols = 0, tile = 128;
  void store(const float* x, int64_t R, int64_t C, int64_t ldx, int64_t tile_size = 128);
  void load(float* out) const;  // dequantised, [rows, cols] dense
  size_t bytes() const { return q.size() + s.size() * sizeof(float); }
};

// x rounded to F16 and back, out may equal x.
void f16_round(const float* x, int64_t R, int64_t C, int64_t ldx, float* out, int64_t ldo, LowpCounts* counts = nullptr);

// Sum over k of a[k] b[k] with an accumulator that keeps `mantissa_bits` bits (round to nearest even after
// every addition), promoted into an F32 sum every `interval` elements: the accumulation the report measured on
// H800 tensor cores (about 14 bits) and its fix (interval 128). For the demonstration of promotion only.
float fp8_dot_limited(const float* a, const float* b, int64_t K, int mantissa_bits, int64_t interval);

}  // namespace dseek
