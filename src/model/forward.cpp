#include "model/forward.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/cpu.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/profile.h"
#include "core/threads.h"
#include "kernels/attention.h"
#include "kernels/gemv.h"
#include "kernels/latent_attention.h"
#include "kernels/rmsnorm.h"
#include "kernels/swiglu.h"
#include "kernels/vmath.h"

namespace dseek {

namespace {

template <class T>
T* grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

// Y = X W^T on the calling thread (inside parallel regions: one expert or head per thread).
void gemv_serial_or_gemm(int64_t M, const float* x, int64_t ldx, const MatRef& w, float* y, int64_t ldy) {
  if (M <= kGemvMaxRows) return gemv_serial(GemvJob{M, x, ldx, w, y, ldy});
  matmul_wT(M, x, ldx, w, y, ldy);
}

}  // namespace

Forward::Forward(Model& m, ForwardOptions opt) : model_(m), opt_(opt) { keep_freed_memory(); }

void Forward::run(const std::vector<SeqChunk>& chunks, bool all_rows, float* logits, ForwardTrace* trace) {
  const ModelConfig& c = model_.config;
  const ModelWeights& w = model_.w;
  const int64_t D = c.hidden_size, V = c.vocab_size;
  std::vector<int64_t> row0(chunks.size() + 1, 0);
  int64_t max_pos = 0;
  for (size_t i = 0; i < chunks.size(); i++) {
    row0[i + 1] = row0[i] + chunks[i].n;
    max_pos = std::max(max_pos, chunks[i].cache->length() + chunks[i].n);
  }
  const int64_t R = row0.back();
  if (R == 0) return;
  model_.rope.ensure(max_pos);
  for (const auto& ch : chunks) ch.cache->reserve(ch.cache->length() + ch.n);

  // positions and embeddings
  int32_t* pos = grow(positions_, size_t(R));
  float* x = grow(x_, size_t(R * D));
  const MatRef emb = MatRef::of(w.embed);
  for (size_t i = 0; i < chunks.size(); i++)
    for (int64_t t = 0; t < chunks[i].n; t++) {
      const int64_t r = row0[i] + t;
      const int32_t tok = chunks[i].tokens[t];
      if (tok < 0 || tok >= V) fail("token id {} is outside the vocabulary [0, {})", tok, V);
      pos[r] = int32_t(chunks[i].cache->length() + t);
      emb.rows_to_f32(tok, 1, x + r * D);
    }
  if (trace) {
    trace->hidden.assign(1, std::vector<float>(x, x + R * D));
    trace->routing.assign(size_t(c.num_hidden_layers), Routing{});
  }

  float* hn = grow(hn_, size_t(R * D));
  for (int64_t l = 0; l < c.num_hidden_layers; l++) {
    const LayerWeights& L = w.layers[size_t(l)];
    rmsnorm_forward(x, D, L.input_layernorm.f32(), float(c.rms_norm_eps), R, D, hn, D);
    {
      DSEEK_PROFILE("attention");
      attention(l, chunks, row0, x);
    }
    rmsnorm_forward(x, D, L.post_attention_layernorm.f32(), float(c.rms_norm_eps), R, D, hn, D);
    if (L.is_moe) {
      DSEEK_PROFILE("moe");
      moe(l, L.moe, hn, R, x, trace ? &trace->routing[size_t(l)] : nullptr);
    } else {
      DSEEK_PROFILE("dense_ffn");
      ffn_dense(L.mlp, hn, R, x, /*accumulate=*/true);
    }
    if (trace) trace->hidden.emplace_back(x, x + R * D);
  }
  for (const auto& ch : chunks) ch.cache->set_length(ch.cache->length() + ch.n);

  // final norm and head on the requested rows
  DSEEK_PROFILE("lm_head");
  if (all_rows) {
    rmsnorm_forward(x, D, w.norm.f32(), float(c.rms_norm_eps), R, D, hn, D);
    matmul_wT(R, hn, D, MatRef::of(w.lm_head), logits, V);
  } else {
    const int64_t n = int64_t(chunks.size());
    for (int64_t i = 0; i < n; i++)
      rmsnorm_forward(x + (row0[size_t(i) + 1] - 1) * D, D, w.norm.f32(), float(c.rms_norm_eps), 1, D, hn + i * D, D);
    matmul_wT(n, hn, D, MatRef::of(w.lm_head), logits, V);
  }
}

// ---------------------------------------------------------------------------------------------
// Multi-head latent attention

void Forward::attention(int64_t l, const std::vector<SeqChunk>& chunks, const std::vector<int64_t>& row0, float* x) {
  const ModelConfig& c = model_.config;
  const MLAWeights& a = model_.w.layers[size_t(l)].attn;
  const int64_t R = row0.back(), D = c.hidden_size, H = c.num_attention_heads;
  const int64_t dqk = c.qk_head_dim(), dn = c.qk_nope_head_dim, dv = c.v_head_dim;
  const int64_t Lr = c.kv_lora_rank, kvd = c.kv_cache_dim(), qr = c.q_lora_rank;
  const float eps = float(c.rms_norm_eps);
  const float* hn = hn_.data();
  float* q = grow(q_, size_t(R * H * dqk));
  float* kv = grow(kv_, size_t(R * kvd));

  // q = q_b(norm(q_a h)) or q_proj h;  [c_kv | k_pe] = kv_a h
  if (qr > 0) {
    float* qa = grow(qa_, size_t(R * qr));
    if (R <= kGemvMaxRows) {
      gemv_batch({GemvJob{R, hn, D, MatRef::of(a.q_a_proj), qa, qr}, GemvJob{R, hn, D, MatRef::of(a.kv_a_proj), kv, kvd}});
    } else {
      matmul_wT(R, hn, D, MatRef::of(a.q_a_proj), qa, qr);
      matmul_wT(R, hn, D, MatRef::of(a.kv_a_proj), kv, kvd);
    }
    rmsnorm_forward(qa, qr, a.q_a_layernorm.f32(), eps, R, qr, qa, qr);
    matmul_wT(R, qa, qr, MatRef::of(a.q_b_proj), q, H * dqk);
  } else {
    if (R <= kGemvMaxRows) {
      gemv_batch({GemvJob{R, hn, D, MatRef::of(a.q_proj), q, H * dqk}, GemvJob{R, hn, D, MatRef::of(a.kv_a_proj), kv, kvd}});
    } else {
      matmul_wT(R, hn, D, MatRef::of(a.q_proj), q, H * dqk);
      matmul_wT(R, hn, D, MatRef::of(a.kv_a_proj), kv, kvd);
    }
  }
  rmsnorm_forward(kv, kvd, a.kv_a_layernorm.f32(), eps, R, Lr, kv, kvd);
  rope_apply(kv, R, kvd, Lr, 1, 0, positions_.data(), model_.rope);
  rope_apply(q, R, H * dqk, dn, H, dqk, positions_.data(), model_.rope);

  // append [c_kv | k_pe] to the caches
  for (size_t i = 0; i < chunks.size(); i++) {
    KVCache& cache = *chunks[i].cache;
    for (int64_t t = 0; t < chunks[i].n; t++)
      cache.write(l, cache.length() + t, kv + (row0[i] + t) * kvd);
  }

  float* att = grow(att_, size_t(R * H * dv));
  for (size_t i = 0; i < chunks.size(); i++) {
    const SeqChunk& ch = chunks[i];
    if (ch.n == 0) continue;
    const int64_t start = ch.cache->length(), Tk = start + ch.n;
    AttnImpl impl = opt_.attn;
    if (impl == AttnImpl::Auto) {
      // multiply-adds of each formulation for this chunk
      const double pairs = double(ch.n) * (double(start) + double(ch.n + 1) / 2);
      const double expanded = double(Tk) * Lr * H * (dn + dv) + pairs * H * (dqk + dv);
      const double absorbed = double(ch.n) * H * Lr * (dn + dv) + pairs * H * (kvd + Lr);
      impl = expanded < absorbed ? AttnImpl::Expanded : AttnImpl::Absorbed;
    }
    const float* qc = q + row0[i] * H * dqk;
    float* oc = att + row0[i] * H * dv;
    if (impl == AttnImpl::Expanded) {
      DSEEK_PROFILE("attn.expanded");
      attend_expanded(l, ch, start, qc, oc);
    } else {
      DSEEK_PROFILE("attn.absorbed");
      attend_absorbed(l, ch, start, qc, oc);
    }
  }
  // x += o_proj(att)
  DSEEK_PROFILE("attn.o_proj");
  matmul_wT(R, att, H * dv, MatRef::of(a.o_proj), x, D, /*accumulate=*/true);
}

void Forward::attend_expanded(int64_t l, const SeqChunk& ch, int64_t start, const float* q, float* out) {
  const ModelConfig& c = model_.config;
  const MLAWeights& a = model_.w.layers[size_t(l)].attn;
  const int64_t H = c.num_attention_heads, dqk = c.qk_head_dim(), dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim;
  const int64_t dv = c.v_head_dim, Lr = c.kv_lora_rank;
  const int64_t n = ch.n, Tk = start + n;
  const KVCache& cache = *ch.cache;
  // [k_nope | v] per head for every context token: c_kv kv_b^T (c_kv read from the transposed cache)
  std::vector<float> kvx(size_t(Tk * H * (dn + dv)));
  matmul_xT_wT(Tk, cache.cols(l), cache.capacity(), MatRef::of(a.kv_b_proj), kvx.data(), H * (dn + dv));
  std::vector<float> Qh(size_t(H * n * dqk)), Kh(size_t(H * Tk * dqk)), Vh(size_t(H * Tk * dv));
#pragma omp parallel for collapse(2) schedule(static) if (H * Tk * dqk > 65536)
  for (int64_t h = 0; h < H; h++)
    for (int64_t t = 0; t < Tk; t++) {
      const float* src = kvx.data() + t * H * (dn + dv) + h * (dn + dv);
      float* kd = Kh.data() + (h * Tk + t) * dqk;
      std::memcpy(kd, src, size_t(dn) * sizeof(float));
      for (int64_t i = 0; i < dr; i++) kd[dn + i] = cache.at(l, t, Lr + i);
      std::memcpy(Vh.data() + (h * Tk + t) * dv, src + dn, size_t(dv) * sizeof(float));
    }
  for (int64_t h = 0; h < H; h++)
    for (int64_t t = 0; t < n; t++)
      std::memcpy(Qh.data() + (h * n + t) * dqk, q + t * H * dqk + h * dqk, size_t(dqk) * sizeof(float));
  AttentionDims d;
  d.heads = H;
  d.Tq = n;
  d.Tk = Tk;
  d.dqk = dqk;
  d.dv = dv;
  d.q_pos0 = start;
  d.scale = float(c.softmax_scale());
  attention_forward(d, Qh.data(), Kh.data(), Vh.data(), out, H * dv, nullptr, opt_.attn_precision);
}

void Forward::attend_absorbed(int64_t l, const SeqChunk& ch, int64_t start, const float* q, float* out) {
  const ModelConfig& c = model_.config;
  const MLAWeights& a = model_.w.layers[size_t(l)].attn;
  const int64_t H = c.num_attention_heads, dqk = c.qk_head_dim(), dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim;
  const int64_t dv = c.v_head_dim, Lr = c.kv_lora_rank, kvd = c.kv_cache_dim();
  const int64_t n = ch.n, Tk = start + n, M = n * H;  // query row r = t * H + h
  const KVCache& cache = *ch.cache;
  const MatRef kv_b = MatRef::of(a.kv_b_proj);
  const float scale = float(c.softmax_scale());
  float* qabs = grow(qabs_, size_t(M * kvd));
  float* s = grow(scores_, size_t(M * Tk));
  float* olat = grow(olat_, size_t(M * Lr));
  // softmax of scaled scores over the visible prefix of row r (query token r / H)
  auto softmax_row = [&](int64_t r, int64_t visible) {
    float* row = s + r * Tk;
    float mx = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : mx)
    for (int64_t j = 0; j < visible; j++) mx = std::max(mx, row[j] *= scale);
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < visible; j++) sum += (row[j] = exp_approx(row[j] - mx));
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t j = 0; j < visible; j++) row[j] *= inv;
  };
  // q_abs[t, h] = [q_nope W_UK_h | q_pe]: its dot with [c_kv | k_pe] is q . k of the expanded form.
  auto absorb_q = [&](int64_t h) {
    matmul_w(n, q + h * dqk, H * dqk, kv_b.row_slice(h * (dn + dv), dn), qabs + h * kvd, H * kvd);
    for (int64_t i = 0; i < n; i++)
      std::memcpy(qabs + (i * H + h) * kvd + Lr, q + i * H * dqk + h * dqk + dn, size_t(dr) * sizeof(float));
  };
  // out_h = o_lat_h W_UV_h^T
  auto value_up = [&](int64_t h) {
    gemv_serial_or_gemm(n, olat + h * Lr, H * Lr, kv_b.row_slice(h * (dn + dv) + dn, dv), out + h * dv, H * dv);
  };
  const int nt = int(std::min<int64_t>(num_threads(), H));
  if (H % nt == 0) {
    // Each thread owns H / nt heads through every phase: one parallel region, no barriers.
#pragma omp parallel num_threads(nt)
    {
      int64_t h0, h1;
      split_range(H, omp_get_num_threads(), thread_index(), h0, h1);
      const int64_t hn = h1 - h0;
      for (int64_t h = h0; h < h1; h++) absorb_q(h);
      for (int64_t i = 0; i < n; i++) {
        const int64_t r0 = i * H + h0, visible = start + i + 1;
        for (int64_t m = 0; m < hn; m += kLatentMaxRows)
          latent_scores(std::min(kLatentMaxRows, hn - m), qabs + (r0 + m) * kvd, kvd, cache.cols(l), cache.capacity(),
                        kvd, 0, visible, s + (r0 + m) * Tk, Tk);
        for (int64_t r = r0; r < r0 + hn; r++) softmax_row(r, visible);
        // o_lat = P c_kv over the visible keys, the transposed cache as the weight matrix
        MatRef ct;
        ct.data = cache.cols(l);
        ct.rows = Lr;
        ct.cols = visible;
        ct.ld = cache.capacity();
        gemv_serial(GemvJob{hn, s + r0 * Tk, Tk, ct, olat + r0 * Lr, Lr});
      }
      for (int64_t h = h0; h < h1; h++) value_up(h);
    }
    return;
  }
  // Otherwise one parallel region whose phases are split by head, key block, row or latent column.
#pragma omp parallel num_threads(nt)
  {
    const int t = thread_index(), T = omp_get_num_threads();
    int64_t lo, hi;
    split_range(H, T, t, lo, hi);
    for (int64_t h = lo; h < hi; h++) absorb_q(h);
#pragma omp barrier
    // scores over this thread's keys (blocks of 16) for every query row
    split_range((Tk + 15) / 16, T, t, lo, hi);
    const int64_t j0 = lo * 16, j1 = std::min(Tk, hi * 16);
    for (int64_t r = 0; r < M && j1 > j0; r += kLatentMaxRows)
      latent_scores(std::min(kLatentMaxRows, M - r), qabs + r * kvd, kvd, cache.cols(l), cache.capacity(), kvd, j0, j1,
                    s + r * Tk, Tk);
#pragma omp barrier
    split_range(M, T, t, lo, hi);
    for (int64_t r = lo; r < hi; r++) {
      const int64_t visible = start + r / H + 1;
      softmax_row(r, visible);
      std::fill(s + r * Tk + visible, s + (r + 1) * Tk, 0.0f);
    }
#pragma omp barrier
    // o_lat = P c_kv: this thread's latent dimensions, each a row of the transposed cache
    split_range(Lr, T, t, lo, hi);
    if (hi > lo) {
      MatRef ct;
      ct.data = cache.cols(l) + lo * cache.capacity();
      ct.rows = hi - lo;
      ct.cols = Tk;
      ct.ld = cache.capacity();
      gemv_serial(GemvJob{M, s, Tk, ct, olat + lo, Lr});
    }
#pragma omp barrier
    split_range(H, T, t, lo, hi);
    for (int64_t h = lo; h < hi; h++) value_up(h);
  }
}

// ---------------------------------------------------------------------------------------------
// Feed-forward

void Forward::ffn_dense(const FFNWeights& f, const float* h, int64_t R, float* out, bool accumulate) {
  const int64_t D = model_.config.hidden_size, I = f.gate_proj.out();
  float* gu = grow(tmp_, size_t(R * I * 2));
  float* g = gu;
  float* u = gu + R * I;
  if (R <= kGemvMaxRows) {
    gemv_batch({GemvJob{R, h, D, MatRef::of(f.gate_proj), g, I}, GemvJob{R, h, D, MatRef::of(f.up_proj), u, I}});
  } else {
    matmul_wT(R, h, D, MatRef::of(f.gate_proj), g, I);
    matmul_wT(R, h, D, MatRef::of(f.up_proj), u, I);
  }
  swiglu_forward(g, u, g, R * I);
  matmul_wT(R, g, I, MatRef::of(f.down_proj), out, D, accumulate);
}

void Forward::moe(int64_t l, const MoEWeights& m, const float* h, int64_t R, float* x, Routing* trace) {
  const ModelConfig& c = model_.config;
  const int64_t D = c.hidden_size, E = c.n_routed_experts, K = c.num_experts_per_tok, I = c.moe_intermediate_size;
  std::vector<float> zl(size_t(R * E));
  Routing rt;
  {
    DSEEK_PROFILE("moe.router");
    matmul_wT(R, h, D, MatRef::of(m.router), zl.data(), E);
    route(c, zl.data(), m.score_bias.data ? m.score_bias.f32() : nullptr, R, rt);
  }

  // rows routed to each expert, with their slot
  std::vector<std::vector<std::pair<int32_t, int32_t>>> lists(static_cast<size_t>(E));
  for (int64_t r = 0; r < R; r++)
    for (int64_t k = 0; k < K; k++) lists[size_t(rt.idx[size_t(r * K + k)])].emplace_back(int32_t(r), int32_t(k));
  std::vector<int64_t> active;
  std::vector<int64_t> offset(size_t(E) + 1, 0);
  for (int64_t e = 0; e < E; e++) {
    offset[size_t(e) + 1] = offset[size_t(e)] + int64_t(lists[size_t(e)].size());
    if (!lists[size_t(e)].empty()) active.push_back(e);
  }
  // expert outputs, stored by (expert, position in its list)
  std::vector<float> ye(size_t(R * K * D));
  std::vector<float> shared_out;
  if (m.has_shared) shared_out.assign(size_t(R * D), 0.0f);

  if (R <= kGemvMaxRows) {
    // decode: every expert's gate and up in one pass, then every down
    std::vector<float> xe(size_t(R * K * D)), gu(size_t(R * K * I * 2));
    const int64_t Is = m.has_shared ? m.shared.gate_proj.out() : 0;
    std::vector<float> gus(size_t(R * Is * 2));
    std::vector<GemvJob> jobs;
    for (int64_t e : active) {
      const auto& lst = lists[size_t(e)];
      const int64_t n = int64_t(lst.size()), o = offset[size_t(e)];
      for (int64_t i = 0; i < n; i++) std::memcpy(xe.data() + (o + i) * D, h + lst[size_t(i)].first * D, size_t(D) * 4);
      const FFNWeights& f = m.experts[size_t(e)];
      jobs.push_back({n, xe.data() + o * D, D, MatRef::of(f.gate_proj), gu.data() + o * I, I});
      jobs.push_back({n, xe.data() + o * D, D, MatRef::of(f.up_proj), gu.data() + (R * K + o) * I, I});
    }
    if (m.has_shared) {
      jobs.push_back({R, h, D, MatRef::of(m.shared.gate_proj), gus.data(), Is});
      jobs.push_back({R, h, D, MatRef::of(m.shared.up_proj), gus.data() + R * Is, Is});
    }
    { DSEEK_PROFILE("moe.gate_up"); gemv_batch(jobs); }
    swiglu_forward(gu.data(), gu.data() + R * K * I, gu.data(), R * K * I);
    if (m.has_shared) swiglu_forward(gus.data(), gus.data() + R * Is, gus.data(), R * Is);
    jobs.clear();
    for (int64_t e : active) {
      const int64_t n = int64_t(lists[size_t(e)].size()), o = offset[size_t(e)];
      jobs.push_back({n, gu.data() + o * I, I, MatRef::of(m.experts[size_t(e)].down_proj), ye.data() + o * D, D});
    }
    if (m.has_shared) jobs.push_back({R, gus.data(), Is, MatRef::of(m.shared.down_proj), shared_out.data(), D});
    { DSEEK_PROFILE("moe.down"); gemv_batch(jobs); }
  } else {
    if (m.has_shared) {
      DSEEK_PROFILE("moe.shared");
      ffn_dense(m.shared, h, R, shared_out.data(), false);
    }
    // one expert per thread; each product runs single-threaded inside the region
    DSEEK_PROFILE("moe.experts");
#pragma omp parallel
    {
      std::vector<float> xe, g, u;
#pragma omp for schedule(dynamic, 1)
      for (size_t ai = 0; ai < active.size(); ai++) {
        const int64_t e = active[ai];
        const auto& lst = lists[size_t(e)];
        const int64_t n = int64_t(lst.size()), o = offset[size_t(e)];
        const int64_t nb = n <= kGemvMaxRows ? n : gemm_row_bucket(n);  // bounded set of JIT shapes
        xe.assign(size_t(nb * D), 0.0f);
        g.resize(size_t(nb * I));
        u.resize(size_t(nb * I));
        for (int64_t i = 0; i < n; i++) std::memcpy(xe.data() + i * D, h + lst[size_t(i)].first * D, size_t(D) * 4);
        const FFNWeights& f = m.experts[size_t(e)];
        gemv_serial_or_gemm(nb, xe.data(), D, MatRef::of(f.gate_proj), g.data(), I);
        gemv_serial_or_gemm(nb, xe.data(), D, MatRef::of(f.up_proj), u.data(), I);
        swiglu_forward(g.data(), u.data(), g.data(), n * I);
        if (nb == n) {
          gemv_serial_or_gemm(n, g.data(), I, MatRef::of(f.down_proj), ye.data() + o * D, D);
        } else {
          std::vector<float> yb(size_t(nb * D));
          gemv_serial_or_gemm(nb, g.data(), I, MatRef::of(f.down_proj), yb.data(), D);
          std::memcpy(ye.data() + o * D, yb.data(), size_t(n * D) * 4);
        }
      }
    }
  }
  // x += sum_k w_k expert_k(h) + shared(h), experts summed in index order
  std::vector<int64_t> where(size_t(R * K));
  for (int64_t e : active) {
    const auto& lst = lists[size_t(e)];
    for (size_t i = 0; i < lst.size(); i++) where[size_t(lst[i].first * K + lst[i].second)] = offset[size_t(e)] + int64_t(i);
  }
#pragma omp parallel for schedule(static) if (R * D > 65536)
  for (int64_t r = 0; r < R; r++) {
    // slots sorted by expert index
    std::vector<int64_t> order(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; k++) order[size_t(k)] = k;
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return rt.idx[size_t(r * K + a)] < rt.idx[size_t(r * K + b)]; });
    float* xr = x + r * D;
    std::vector<float> acc(size_t(D), 0.0f);
    for (int64_t k : order) {
      const float wk = rt.weight[size_t(r * K + k)];
      const float* y = ye.data() + where[size_t(r * K + k)] * D;
      for (int64_t d = 0; d < D; d++) acc[size_t(d)] += y[d] * wk;
    }
    if (m.has_shared)
      for (int64_t d = 0; d < D; d++) acc[size_t(d)] += shared_out[size_t(r * D + d)];
    for (int64_t d = 0; d < D; d++) xr[d] += acc[size_t(d)];
  }
  if (trace) *trace = std::move(rt);
}

}  // namespace dseek
