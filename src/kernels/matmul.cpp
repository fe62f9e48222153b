#include "kernels/matmul.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "core/cpu.h"
#include "core/error.h"
#include "core/threads.h"
#include "kernels/convert.h"
#include "kernels/gemm_onednn.h"
#include "kernels/gemv.h"

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

MatRef MatRef::f32(const float* data, int64_t rows, int64_t cols, int64_t ld) {
  MatRef m;
  m.data = data;
  m.rows = rows;
  m.cols = cols;
  m.ld = ld;
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
// Weight products

namespace {

// Rows of W per dequantised chunk (about 4 MB of F32).
int64_t chunk_rows(int64_t cols) { return std::max<int64_t>(16, (int64_t(1) << 20) / std::max<int64_t>(cols, 1)); }

void dequant_rows(const MatRef& w, int64_t r0, int64_t n, float* dst) {
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
  for (int64_t i = 0; i < n; i++) w.rows_to_f32(r0 + i, 1, dst + i * w.cols);
}

void gemv_rows(const GemvJob& j, int64_t n0, int64_t n1) {
  if (use_avx512() && gemv_avx512_supports(j.w)) gemv_rows_avx512(j, n0, n1);
  else gemv_rows_generic(j, n0, n1);
}

// GEMV jobs (M <= kGemvMaxRows each) in one parallel pass, split by weight rows balanced by bytes streamed.
void gemv_group(const std::vector<GemvJob>& jobs) {
  double total = 0;
  for (const auto& j : jobs) total += double(j.w.rows) * double(j.w.cols) * double(dtype_size(j.w.dtype));
  const int nt = (total < 64 * 1024 || omp_in_parallel()) ? 1 : num_threads();
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
        if (n1 > n0) gemv_rows(j, n0, n1);
      }
      acc += jb;
    }
  };
  if (nt == 1) return run(0);
#pragma omp parallel num_threads(nt)
  run(omp_get_thread_num());
}

bool is_gemv(const Matmul& p) { return !p.w_plain && !p.x_transposed && p.M <= kGemvMaxRows; }

// Y = X W^T on oneDNN, W widened per chunk when its dtype has no oneDNN product here.
void gemm_wT(const Matmul& p) {
  const int64_t M = p.M, N = p.w.rows, K = p.w.cols;
  const MatRef& w = p.w;
  const float beta = p.accumulate ? 1.0f : 0.0f;
  switch (w.dtype) {
    case DType::F32:
      return onednn_gemm(GemmType::F32, false, true, M, N, K, 1.0f, p.x, p.ldx, w.data, w.ld, beta, p.y, p.ldy);
    case DType::BF16: {
      uint16_t* x16 = bf16_scratch_a(size_t(M * K));
      f32_to_bf16_rows(p.x, M, K, p.ldx, x16, K);
      return onednn_gemm(GemmType::BF16, false, true, M, N, K, 1.0f, x16, K, w.data, w.ld, beta, p.y, p.ldy);
    }
    case DType::F16:
    case DType::F8_E4M3: {
      const int64_t cr = chunk_rows(K);
      for (int64_t r = 0; r < N; r += cr) {
        const int64_t n = std::min(cr, N - r);
        float* wf = f32_scratch(size_t(n * K));
        dequant_rows(w, r, n, wf);
        onednn_gemm(GemmType::F32, false, true, M, n, K, 1.0f, p.x, p.ldx, wf, K, beta, p.y + r, p.ldy);
      }
      return;
    }
    default: fail("matmul: unsupported weight dtype {}", dtype_name(w.dtype));
  }
}

// Y = X W^T with X given transposed, xT [K, M].
void gemm_xT_wT(const Matmul& p) {
  const int64_t M = p.M, N = p.w.rows, K = p.w.cols;
  if (M <= kGemvMaxRows || p.w.dtype == DType::F16 || p.w.dtype == DType::F8_E4M3) {
    // transpose X into row-major scratch (M <= 8, or products that dequantise W tile by tile anyway)
    thread_local std::vector<float> x;
    if (x.size() < size_t(M * K)) x.resize(size_t(M * K));
    for (int64_t k = 0; k < K; k++)
      for (int64_t m = 0; m < M; m++) x[size_t(m * K + k)] = p.x[k * p.ldx + m];
    Matmul q = p;
    q.x = x.data();
    q.ldx = K;
    q.x_transposed = false;
    return matmul(q);
  }
  const float beta = p.accumulate ? 1.0f : 0.0f;
  if (p.w.dtype == DType::F32)
    return onednn_gemm(GemmType::F32, true, true, M, N, K, 1.0f, p.x, p.ldx, p.w.data, p.w.ld, beta, p.y, p.ldy);
  DSEEK_CHECK(p.w.dtype == DType::BF16, "matmul: unsupported weight dtype {}", dtype_name(p.w.dtype));
  uint16_t* x16 = bf16_scratch_a(size_t(K * M));
  f32_to_bf16_rows(p.x, K, M, p.ldx, x16, M);
  onednn_gemm(GemmType::BF16, true, true, M, N, K, 1.0f, x16, M, p.w.data, p.w.ld, beta, p.y, p.ldy);
}

// Y[M, c0:c1] (+)= X . W[:, c0:c1] for small M: one pass over W's rows, axpy into Y.
void small_x_w(const Matmul& p, int64_t c0, int64_t c1) {
  const int64_t n = c1 - c0, M = p.M;
  thread_local std::vector<float> row;
  if (int64_t(row.size()) < n) row.resize(static_cast<size_t>(n));
  if (!p.accumulate)
    for (int64_t m = 0; m < M; m++) std::fill(p.y + m * p.ldy + c0, p.y + m * p.ldy + c1, 0.0f);
  const MatRef wc = p.w.col_slice(c0, n);
  for (int64_t k = 0; k < p.w.rows; k++) {
    wc.rows_to_f32(k, 1, row.data());
    for (int64_t m = 0; m < M; m++) {
      const float a = p.x[m * p.ldx + k];
      float* yr = p.y + m * p.ldy + c0;
#pragma omp simd
      for (int64_t j = 0; j < n; j++) yr[j] += a * row[size_t(j)];
    }
  }
}

// Y = X W with W [K, N].
void gemm_w(const Matmul& p) {
  const int64_t M = p.M, K = p.w.rows, N = p.w.cols;
  const MatRef& w = p.w;
  if (M <= kGemvMaxRows) {
    const int64_t chunk = 256;
    const int64_t nchunks = (N + chunk - 1) / chunk;
    if (K * N < 65536 || nchunks == 1 || omp_in_parallel()) return small_x_w(p, 0, N);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < nchunks; c++) small_x_w(p, c * chunk, std::min(N, (c + 1) * chunk));
    return;
  }
  const float beta = p.accumulate ? 1.0f : 0.0f;
  switch (w.dtype) {
    case DType::F32:
      return onednn_gemm(GemmType::F32, false, false, M, N, K, 1.0f, p.x, p.ldx, w.data, w.ld, beta, p.y, p.ldy);
    case DType::BF16: {
      uint16_t* x16 = bf16_scratch_a(size_t(M * K));
      f32_to_bf16_rows(p.x, M, K, p.ldx, x16, K);
      return onednn_gemm(GemmType::BF16, false, false, M, N, K, 1.0f, x16, K, w.data, w.ld, beta, p.y, p.ldy);
    }
    case DType::F16:
    case DType::F8_E4M3: {
      // Y = sum over row chunks c of X[:, c] . W[c, :]
      const int64_t cr = chunk_rows(N);
      for (int64_t r = 0; r < K; r += cr) {
        const int64_t n = std::min(cr, K - r);
        float* wf = f32_scratch(size_t(n * N));
        dequant_rows(w, r, n, wf);
        onednn_gemm(GemmType::F32, false, false, M, N, n, 1.0f, p.x + r, p.ldx, wf, N, r == 0 ? beta : 1.0f, p.y,
                    p.ldy);
      }
      return;
    }
    default: fail("matmul: unsupported weight dtype {}", dtype_name(w.dtype));
  }
}

GemvJob gemv_job(const Matmul& p) { return GemvJob{p.M, p.x, p.ldx, p.w, p.y, p.ldy, p.accumulate}; }

}  // namespace

void matmul(const Matmul& p) {
  if (p.M == 0 || p.w.rows == 0 || p.w.cols == 0) {
    if (p.M > 0 && !p.accumulate) {  // empty inner dimension: Y = 0
      const int64_t N = p.w_plain ? p.w.cols : p.w.rows;
      if (N > 0 && (p.w_plain ? p.w.rows : p.w.cols) == 0)
        for (int64_t m = 0; m < p.M; m++) std::fill(p.y + m * p.ldy, p.y + m * p.ldy + N, 0.0f);
    }
    return;
  }
  if (is_gemv(p)) return gemv_group({gemv_job(p)});
  if (p.w_plain) return gemm_w(p);
  if (p.x_transposed) return gemm_xT_wT(p);
  gemm_wT(p);
}

void matmul(const std::vector<Matmul>& ps) {
  bool all_gemv = true;
  for (const Matmul& p : ps) all_gemv &= is_gemv(p);
  if (!all_gemv) {
    for (const Matmul& p : ps) matmul(p);
    return;
  }
  std::vector<GemvJob> jobs;
  for (const Matmul& p : ps)
    if (p.M > 0 && p.w.rows > 0 && p.w.cols > 0) jobs.push_back(gemv_job(p));
  if (!jobs.empty()) gemv_group(jobs);
}

}  // namespace dseek
