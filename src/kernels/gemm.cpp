#include "kernels/gemm.h"

#include <omp.h>

#include <algorithm>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>

#include "core/cpu.h"
#include "core/error.h"
#include "core/threads.h"
#include "kernels/convert.h"
#include "kernels/gemv.h"
#include "model/weights.h"

namespace dseek {

// ---------------------------------------------------------------------------------------------
// MatRef

MatRef MatRef::of(const Linear& l) {
  MatRef m = of(l.weight);
  if (l.weight.dtype == DType::F8_E4M3) {
    DSEEK_CHECK(l.scale_inv.data, "FP8 weight {} has no weight_scale_inv", l.weight.desc());
    m.scale_inv = l.scale_inv.f32();
    m.scale_ld = l.scale_inv.dim(1);
    m.block_rows = l.block_rows;
    m.block_cols = l.block_cols;
  }
  return m;
}

MatRef MatRef::of(const Tensor& t) {
  DSEEK_CHECK(t.ndim() == 2, "expected a matrix, got {}", t.desc());
  MatRef m;
  m.dtype = t.dtype;
  m.data = t.data;
  m.rows = t.dim(0);
  m.cols = t.dim(1);
  m.ld = m.cols;
  return m;
}

MatRef MatRef::row_slice(int64_t r, int64_t n) const {
  MatRef m = *this;
  m.data = static_cast<const uint8_t*>(data) + size_t(r) * size_t(ld) * dtype_size(dtype);
  m.rows = n;
  m.row0 = row0 + r;
  if (scale_inv) {  // keep the grid anchored to the full matrix
    int64_t br = (row0 + r) / block_rows - row0 / block_rows;
    m.scale_inv = scale_inv + br * scale_ld;
    m.row0 = (row0 + r) % block_rows;
  }
  return m;
}

MatRef MatRef::col_slice(int64_t c, int64_t n) const {
  MatRef m = *this;
  m.data = static_cast<const uint8_t*>(data) + size_t(c) * dtype_size(dtype);
  m.cols = n;
  if (scale_inv) {
    int64_t bc = (col0 + c) / block_cols - col0 / block_cols;
    m.scale_inv = scale_inv + bc;
    m.col0 = (col0 + c) % block_cols;
  }
  return m;
}

float MatRef::at(int64_t i, int64_t j) const {
  const uint8_t* p = static_cast<const uint8_t*>(data) + (size_t(i) * size_t(ld) + size_t(j)) * dtype_size(dtype);
  float v;
  convert_to_f32(dtype, p, &v, 1);
  if (dtype == DType::F8_E4M3) v *= scale_inv[((row0 + i) / block_rows) * scale_ld + (col0 + j) / block_cols];
  return v;
}

void MatRef::rows_to_f32(int64_t r, int64_t n, float* dst) const {
  const size_t esz = dtype_size(dtype);
  for (int64_t i = 0; i < n; i++) {
    const uint8_t* src = static_cast<const uint8_t*>(data) + size_t(r + i) * size_t(ld) * esz;
    float* d = dst + i * cols;
    if (dtype == DType::BF16) bf16_to_f32(reinterpret_cast<const uint16_t*>(src), d, size_t(cols));
    else convert_to_f32(dtype, src, d, size_t(cols));
    if (dtype == DType::F8_E4M3) {
      const float* s = scale_inv + ((row0 + r + i) / block_rows) * scale_ld;
      for (int64_t j = 0; j < cols; j++) d[j] *= s[(col0 + j) / block_cols];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// oneDNN backend with a primitive cache

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

void dnnl_gemm(int dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const void* A, int64_t lda,
               const void* B, int64_t ldb, float beta, float* C, int64_t ldc);

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
  dnnl_gemm(0, ta, tb, M, N, K, alpha, a, ac, b, bc, beta, C, ldc);
}

void dnnl_gemm(int dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const void* A, int64_t lda,
               const void* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (dt == 1 && K > 0 && !dnnl_has_bf16_matmul())
    return widened_bf16_gemm(ta, tb, M, N, K, alpha, static_cast<const uint16_t*>(A), lda,
                             static_cast<const uint16_t*>(B), ldb, beta, C, ldc);
  if (K == 0) {
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0 ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  PrimKey key{dt, ta, tb, M, N, K, lda, ldb, ldc, alpha, beta};
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

// Per-thread scratch that grows as needed.
template <class T>
T* scratch(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}
thread_local std::vector<uint16_t> t_bf16_a, t_bf16_b;
thread_local std::vector<float> t_f32_w;

// Rows of W per dequantised chunk (about 4 MB of F32).
int64_t chunk_rows(int64_t cols) { return std::max<int64_t>(16, (int64_t(1) << 20) / std::max<int64_t>(cols, 1)); }

void dequant_rows_parallel(const MatRef& w, int64_t r0, int64_t n, float* dst) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) w.rows_to_f32(r0 + i, 1, dst + i * w.cols);
}

}  // namespace

bool native_bf16_products() { return dnnl_has_bf16_matmul(); }

std::string resolve_precision(const std::string& setting, const std::string& what) {
  if (setting == "auto") return native_bf16_products() ? "bf16" : "f32";
  if (setting != "f32" && setting != "bf16") fail("{} must be f32, bf16 or auto, got '{}'", what, setting);
  return setting;
}

int64_t gemm_row_bucket(int64_t M) {
  if (M <= 16) return 16;
  if (M <= 128) return (M + 15) / 16 * 16;
  if (M <= 512) return (M + 63) / 64 * 64;
  return (M + 255) / 256 * 256;
}

void f32_to_bf16_rows(const float* src, int64_t rows, int64_t cols, int64_t ld_src, uint16_t* dst, int64_t ld_dst) {
  if (rows * cols < 65536) {
    for (int64_t r = 0; r < rows; r++) f32_to_bf16(src + r * ld_src, dst + r * ld_dst, size_t(cols));
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) f32_to_bf16(src + r * ld_src, dst + r * ld_dst, size_t(cols));
}

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
          int64_t ldb, float beta, float* C, int64_t ldc, Precision p) {
  if (p == Precision::F32) return dnnl_gemm(0, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  // BF16: convert operands to packed bf16 copies (leading dimensions become dense).
  const int64_t ar = ta ? K : M, ac = ta ? M : K;
  const int64_t br = tb ? N : K, bc = tb ? K : N;
  uint16_t* a16 = scratch(t_bf16_a, size_t(ar * ac));
  uint16_t* b16 = scratch(t_bf16_b, size_t(br * bc));
  f32_to_bf16_rows(A, ar, ac, lda, a16, ac);
  f32_to_bf16_rows(B, br, bc, ldb, b16, bc);
  dnnl_gemm(1, ta, tb, M, N, K, alpha, a16, ac, b16, bc, beta, C, ldc);
}

void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A, int64_t lda,
               const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  dnnl_gemm(1, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// ---------------------------------------------------------------------------------------------
// Weight products

void gemv_serial(const GemvJob& j) {
  for (int64_t m = 0; m < j.M; m += kGemvMaxRows) {
    GemvJob part = j;
    part.M = std::min(kGemvMaxRows, j.M - m);
    part.x = j.x + m * j.ldx;
    part.y = j.y + m * j.ldy;
    if (use_avx512() && gemv_avx512_supports(j.w)) gemv_rows_avx512(part, 0, j.w.rows);
    else gemv_rows_generic(part, 0, j.w.rows);
  }
}

void gemv_batch(const std::vector<GemvJob>& jobs) {
  if (jobs.empty()) return;
  const bool avx = use_avx512();
  // Work is split by weight rows, balanced by bytes of weights streamed.
  double total = 0;
  for (const auto& j : jobs) total += double(j.w.rows) * double(j.w.cols) * double(dtype_size(j.w.dtype));
  const int nt = (total < 64 * 1024) ? 1 : num_threads();
  auto run = [&](int t) {
    const double lo = total * t / nt, hi = total * (t + 1) / nt;
    double acc = 0;
    for (const auto& j : jobs) {
      const double row_bytes = double(j.w.cols) * double(dtype_size(j.w.dtype));
      const double jb = row_bytes * double(j.w.rows);
      const double b0 = std::max(lo, acc), b1 = std::min(hi, acc + jb);
      if (b1 > b0) {
        int64_t n0 = int64_t((b0 - acc) / row_bytes + 0.5), n1 = int64_t((b1 - acc) / row_bytes + 0.5);
        n1 = std::min(n1, j.w.rows);
        if (n1 > n0) {
          if (avx && gemv_avx512_supports(j.w)) gemv_rows_avx512(j, n0, n1);
          else gemv_rows_generic(j, n0, n1);
        }
      }
      acc += jb;
    }
  };
  if (nt == 1) {
    run(0);
    return;
  }
#pragma omp parallel num_threads(nt)
  run(omp_get_thread_num());
}

void matmul_wT(int64_t M, const float* x, int64_t ldx, const MatRef& w, float* y, int64_t ldy, bool accumulate) {
  const int64_t N = w.rows, K = w.cols;
  if (M == 0 || N == 0) return;
  if (M <= kGemvMaxRows) return gemv_batch({GemvJob{M, x, ldx, w, y, ldy, accumulate}});
  const float beta = accumulate ? 1.0f : 0.0f;
  switch (w.dtype) {
    case DType::F32:
      return dnnl_gemm(0, false, true, M, N, K, 1.0f, x, ldx, w.data, w.ld, beta, y, ldy);
    case DType::BF16: {
      uint16_t* x16 = scratch(t_bf16_a, size_t(M * K));
      f32_to_bf16_rows(x, M, K, ldx, x16, K);
      return dnnl_gemm(1, false, true, M, N, K, 1.0f, x16, K, w.data, w.ld, beta, y, ldy);
    }
    case DType::F16:
    case DType::F8_E4M3: {
      const int64_t cr = chunk_rows(K);
      for (int64_t r = 0; r < N; r += cr) {
        const int64_t n = std::min(cr, N - r);
        float* wf = scratch(t_f32_w, size_t(n * K));
        dequant_rows_parallel(w, r, n, wf);
        dnnl_gemm(0, false, true, M, n, K, 1.0f, x, ldx, wf, K, beta, y + r, ldy);
      }
      return;
    }
    default: fail("matmul: unsupported weight dtype {}", dtype_name(w.dtype));
  }
}

void matmul_xT_wT(int64_t M, const float* xT, int64_t ldxT, const MatRef& w, float* y, int64_t ldy) {
  const int64_t N = w.rows, K = w.cols;
  if (M == 0 || N == 0) return;
  if (M <= kGemvMaxRows || w.dtype == DType::F16 || w.dtype == DType::F8_E4M3) {
    // transpose X into row-major scratch (M <= 8, or products that dequantise W tile by tile anyway)
    thread_local std::vector<float> x;
    if (x.size() < size_t(M * K)) x.resize(size_t(M * K));
    for (int64_t k = 0; k < K; k++)
      for (int64_t m = 0; m < M; m++) x[size_t(m * K + k)] = xT[k * ldxT + m];
    return matmul_wT(M, x.data(), K, w, y, ldy);
  }
  if (w.dtype == DType::F32) return dnnl_gemm(0, true, true, M, N, K, 1.0f, xT, ldxT, w.data, w.ld, 0.0f, y, ldy);
  DSEEK_CHECK(w.dtype == DType::BF16, "matmul: unsupported weight dtype {}", dtype_name(w.dtype));
  uint16_t* x16 = scratch(t_bf16_a, size_t(K * M));
  f32_to_bf16_rows(xT, K, M, ldxT, x16, M);
  dnnl_gemm(1, true, true, M, N, K, 1.0f, x16, M, w.data, w.ld, 0.0f, y, ldy);
}

// Y[M, c0:c1] (+)= X . W[:, c0:c1] for small M: one pass over W's rows, axpy into Y.
static void matmul_w_small_cols(int64_t M, const float* x, int64_t ldx, const MatRef& w, float* y, int64_t ldy,
                                bool accumulate, int64_t c0, int64_t c1) {
  const int64_t n = c1 - c0;
  thread_local std::vector<float> row;
  if (int64_t(row.size()) < n) row.resize(static_cast<size_t>(n));
  if (!accumulate)
    for (int64_t m = 0; m < M; m++) std::fill(y + m * ldy + c0, y + m * ldy + c1, 0.0f);
  const MatRef wc = w.col_slice(c0, n);
  for (int64_t k = 0; k < w.rows; k++) {
    wc.rows_to_f32(k, 1, row.data());
    for (int64_t m = 0; m < M; m++) {
      const float a = x[m * ldx + k];
      float* yr = y + m * ldy + c0;
#pragma omp simd
      for (int64_t j = 0; j < n; j++) yr[j] += a * row[size_t(j)];
    }
  }
}

void matmul_w(int64_t M, const float* x, int64_t ldx, const MatRef& w, float* y, int64_t ldy, bool accumulate) {
  const int64_t K = w.rows, N = w.cols;
  if (M == 0 || N == 0) return;
  if (M <= kGemvMaxRows) {
    const int64_t chunk = 256;
    const int64_t nchunks = (N + chunk - 1) / chunk;
    if (K * N < 65536 || nchunks == 1 || omp_in_parallel()) {
      matmul_w_small_cols(M, x, ldx, w, y, ldy, accumulate, 0, N);
    } else {
#pragma omp parallel for schedule(static)
      for (int64_t c = 0; c < nchunks; c++)
        matmul_w_small_cols(M, x, ldx, w, y, ldy, accumulate, c * chunk, std::min(N, (c + 1) * chunk));
    }
    return;
  }
  const float beta = accumulate ? 1.0f : 0.0f;
  switch (w.dtype) {
    case DType::F32:
      return dnnl_gemm(0, false, false, M, N, K, 1.0f, x, ldx, w.data, w.ld, beta, y, ldy);
    case DType::BF16: {
      uint16_t* x16 = scratch(t_bf16_a, size_t(M * K));
      f32_to_bf16_rows(x, M, K, ldx, x16, K);
      return dnnl_gemm(1, false, false, M, N, K, 1.0f, x16, K, w.data, w.ld, beta, y, ldy);
    }
    case DType::F16:
    case DType::F8_E4M3: {
      // Y = sum over row chunks c of X[:, c] . W[c, :]
      const int64_t cr = chunk_rows(N);
      for (int64_t r = 0; r < K; r += cr) {
        const int64_t n = std::min(cr, K - r);
        float* wf = scratch(t_f32_w, size_t(n * N));
        dequant_rows_parallel(w, r, n, wf);
        dnnl_gemm(0, false, false, M, N, n, 1.0f, x + r, ldx, wf, N, r == 0 ? beta : 1.0f, y, ldy);
      }
      return;
    }
    default: fail("matmul: unsupported weight dtype {}", dtype_name(w.dtype));
  }
}

}  // namespace dseek
