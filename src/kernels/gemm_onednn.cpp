#include "kernels/gemm_onednn.h"

#include <omp.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "core/memory.h"
#include "kernels/convert.h"
#include "kernels/matmul.h"

namespace dseek {

namespace {

using dnnl::memory;

dnnl::engine& dnnl_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}
// Streams and scratchpads are per thread: products may run inside parallel regions (one per head).
dnnl::stream& dnnl_stream() {
  thread_local dnnl::stream s(dnnl_engine());
  return s;
}
thread_local std::vector<uint8_t> t_scratchpad;

struct PrimKey {
  int dt;
  bool ta, tb;
  int64_t M, N, K, lda, ldb, ldc;
  float alpha, beta;
  bool operator==(const PrimKey&) const = default;
};
struct PrimKeyHash {
  size_t operator()(const PrimKey& k) const {
    size_t h = std::hash<int64_t>()(k.M);
    auto mix = [&](uint64_t v) { h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2); };
    mix(uint64_t(k.N));
    mix(uint64_t(k.K));
    mix(uint64_t(k.lda));
    mix(uint64_t(k.ldb));
    mix(uint64_t(k.ldc));
    mix(uint64_t(k.dt) << 2 | uint64_t(k.ta) << 1 | uint64_t(k.tb));
    uint32_t a, b;
    __builtin_memcpy(&a, &k.alpha, 4);
    __builtin_memcpy(&b, &k.beta, 4);
    mix(uint64_t(a) << 32 | b);
    return h;
  }
};
struct Prim {
  dnnl::matmul prim;
  memory::desc a, b, c, scratch;
};

std::mutex g_cache_mu;
std::unordered_map<PrimKey, std::shared_ptr<const Prim>, PrimKeyHash> g_cache;
constexpr size_t kCacheCapacity = 2048;

std::shared_ptr<const Prim> get_prim(const PrimKey& k) {
  std::lock_guard<std::mutex> lock(g_cache_mu);
  auto it = g_cache.find(k);
  if (it != g_cache.end()) return it->second;
  if (g_cache.size() >= kCacheCapacity) g_cache.clear();
  auto dt = k.dt == 0 ? memory::data_type::f32 : memory::data_type::bf16;
  memory::desc a({k.M, k.K}, dt, k.ta ? memory::dims{1, k.lda} : memory::dims{k.lda, 1});
  memory::desc b({k.K, k.N}, dt, k.tb ? memory::dims{1, k.ldb} : memory::dims{k.ldb, 1});
  memory::desc c({k.M, k.N}, memory::data_type::f32, memory::dims{k.ldc, 1});
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (k.alpha != 1.0f) attr.set_output_scales(0, {k.alpha});
  if (k.beta != 0.0f) {
    dnnl::post_ops po;
    po.append_sum(k.beta);
    attr.set_post_ops(po);
  }
  dnnl::matmul::desc md(a, b, c);
  dnnl::matmul::primitive_desc pd(md, attr, dnnl_engine());
  auto p = std::make_shared<const Prim>(Prim{dnnl::matmul(pd), a, b, c, pd.scratchpad_desc()});
  g_cache.emplace(k, p);
  return p;
}

// Whether this CPU's oneDNN has a BF16 matmul (AVX512-BF16 or AMX; oneDNN 2.x has none on AVX2). Probed once.
bool dnnl_has_bf16_matmul() {
  static const bool ok = [] {
    try {
      memory::desc a({16, 32}, memory::data_type::bf16, memory::dims{32, 1});
      memory::desc b({32, 16}, memory::data_type::bf16, memory::dims{16, 1});
      memory::desc c({16, 16}, memory::data_type::f32, memory::dims{16, 1});
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), dnnl_engine());
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return ok;
}

// BF16 operands without a BF16 matmul: widen them (exactly) to F32 and run the F32 product. The result equals a
// BF16 product with F32 accumulation up to summation order.
void widened_bf16_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A, int64_t lda,
                       const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  thread_local std::vector<float> a32, b32;
  const int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
  if (a32.size() < size_t(ar * ac)) a32.resize(size_t(ar * ac));
  if (b32.size() < size_t(br * bc)) b32.resize(size_t(br * bc));
  float* a = a32.data();
  float* b = b32.data();
  const bool par = !omp_in_parallel() && (ar * ac + br * bc) > 65536;
#pragma omp parallel for schedule(static) if (par)
  for (int64_t r = 0; r < ar; r++) bf16_to_f32(A + r * lda, a + r * ac, size_t(ac));
#pragma omp parallel for schedule(static) if (par)
  for (int64_t r = 0; r < br; r++) bf16_to_f32(B + r * ldb, b + r * bc, size_t(bc));
  onednn_gemm(GemmType::F32, ta, tb, M, N, K, alpha, a, ac, b, bc, beta, C, ldc);
}

thread_local std::vector<uint16_t> t_bf16_a, t_bf16_b;
thread_local std::vector<float> t_f32;

}  // namespace

uint16_t* bf16_scratch_a(size_t n) { return grow(t_bf16_a, n); }
uint16_t* bf16_scratch_b(size_t n) { return grow(t_bf16_b, n); }
float* f32_scratch(size_t n) { return grow(t_f32, n); }

void onednn_gemm(GemmType t, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const void* A,
                 int64_t lda, const void* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (t == GemmType::BF16 && K > 0 && !dnnl_has_bf16_matmul())
    return widened_bf16_gemm(ta, tb, M, N, K, alpha, static_cast<const uint16_t*>(A), lda,
                             static_cast<const uint16_t*>(B), ldb, beta, C, ldc);
  if (K == 0) {
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0 ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  PrimKey key{t == GemmType::BF16 ? 1 : 0, ta, tb, M, N, K, lda, ldb, ldc, alpha, beta};
  const std::shared_ptr<const Prim> prim = get_prim(key);
  const Prim& p = *prim;
  auto& eng = dnnl_engine();
  memory am(p.a, eng, const_cast<void*>(A));
  memory bm(p.b, eng, const_cast<void*>(B));
  memory cm(p.c, eng, C);
  const size_t sp = p.scratch.get_size();
  if (t_scratchpad.size() < sp) t_scratchpad.resize(sp);
  memory sm(p.scratch, eng, sp ? t_scratchpad.data() : nullptr);
  auto& stream = dnnl_stream();
  p.prim.execute(stream, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}, {DNNL_ARG_SCRATCHPAD, sm}});
  stream.wait();
}

bool native_bf16_products() { return dnnl_has_bf16_matmul(); }

int64_t gemm_row_bucket(int64_t M) {
  if (M <= 16) return 16;
  if (M <= 128) return (M + 15) / 16 * 16;
  if (M <= 512) return (M + 63) / 64 * 64;
  return (M + 255) / 256 * 256;
}

void f32_to_bf16_rows(const float* src, int64_t rows, int64_t cols, int64_t ld_src, uint16_t* dst, int64_t ld_dst) {
  if (rows * cols < 65536 || omp_in_parallel()) {
    for (int64_t r = 0; r < rows; r++) f32_to_bf16(src + r * ld_src, dst + r * ld_dst, size_t(cols));
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) f32_to_bf16(src + r * ld_src, dst + r * ld_dst, size_t(cols));
}

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
          int64_t ldb, float beta, float* C, int64_t ldc, Precision p) {
  if (p == Precision::F32) return onednn_gemm(GemmType::F32, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  // BF16: convert operands to packed bf16 copies (leading dimensions become dense).
  const int64_t ar = ta ? K : M, ac = ta ? M : K;
  const int64_t br = tb ? N : K, bc = tb ? K : N;
  uint16_t* a16 = bf16_scratch_a(size_t(ar * ac));
  uint16_t* b16 = bf16_scratch_b(size_t(br * bc));
  f32_to_bf16_rows(A, ar, ac, lda, a16, ac);
  f32_to_bf16_rows(B, br, bc, ldb, b16, bc);
  onednn_gemm(GemmType::BF16, ta, tb, M, N, K, alpha, a16, ac, b16, bc, beta, C, ldc);
}

void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A, int64_t lda,
               const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  onednn_gemm(GemmType::BF16, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace dseek
