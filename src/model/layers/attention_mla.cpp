#include "model/layers/attention_mla.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/memory.h"
#include "core/profile.h"
#include "core/threads.h"
#include "kernels/attention.h"
#include "kernels/latent_attention.h"
#include "kernels/rmsnorm.h"
#include "kernels/vmath.h"
#include "model/layers/linear.h"

namespace dseek {

namespace {

struct Dims {
  int64_t D, H, dqk, dn, dr, dv, Lr, kvd, qr;
  explicit Dims(const ModelConfig& c)
      : D(c.hidden_size), H(c.num_attention_heads), dqk(c.qk_head_dim()), dn(c.qk_nope_head_dim),
        dr(c.qk_rope_head_dim), dv(c.v_head_dim), Lr(c.kv_lora_rank), kvd(c.kv_cache_dim()), qr(c.q_lora_rank) {}
};

// q [R, H dqk] (RoPE on each head's q_pe), kv [R, kvd] = [latent before its norm | rotated kp], c = norm(latent).
void project(const ModelConfig& cfg, const MLAWeights& a, const RopeTable& rope, int64_t R, const float* hn,
             const int32_t* positions, MLACache& mc) {
  const Dims d(cfg);
  const float eps = float(cfg.rms_norm_eps);
  float* q = grow(mc.q, size_t(R * d.H * d.dqk));
  float* kv = grow(mc.kv, size_t(R * d.kvd));
  if (d.qr > 0) {
    float* qa = grow(mc.qa, size_t(R * d.qr));
    linear_forward({LinearJob{R, hn, d.D, &a.q_a_proj, qa, d.qr}, LinearJob{R, hn, d.D, &a.kv_a_proj, kv, d.kvd}});
    float* qan = grow(mc.qan, size_t(R * d.qr));
    rmsnorm_forward(qa, d.qr, a.q_a_layernorm.f32(), eps, R, d.qr, qan, d.qr, grow(mc.qa_rstd, size_t(R)));
    linear_forward(R, qan, d.qr, a.q_b_proj, q, d.H * d.dqk);
  } else {
    linear_forward({LinearJob{R, hn, d.D, &a.q_proj, q, d.H * d.dqk}, LinearJob{R, hn, d.D, &a.kv_a_proj, kv, d.kvd}});
  }
  float* cl = grow(mc.c, size_t(R * d.Lr));
  rmsnorm_forward(kv, d.kvd, a.kv_a_layernorm.f32(), eps, R, d.Lr, cl, d.Lr, grow(mc.kv_rstd, size_t(R)));
  rope_apply(kv, R, d.kvd, d.Lr, 1, 0, positions, rope);  // kv[:, Lr:] now holds the rotated kp
  rope_apply(q, R, d.H * d.dqk, d.dn, d.H, d.dqk, positions, rope);
}

// Causal attention of training sequence b over its own T rows (document masks when packing).
AttentionDims sequence_attention(const ModelConfig& c, const RowBatch& rb, int64_t b) {
  AttentionDims d;
  d.heads = c.num_attention_heads;
  d.Tq = d.Tk = rb.T;
  d.dqk = c.qk_head_dim();
  d.dv = c.v_head_dim;
  d.scale = float(c.softmax_scale());
  d.key_begin = rb.key_begin ? rb.key_begin + b * rb.T : nullptr;
  return d;
}

// ---- training: per-head K/V from the rows' own latents

void train_attention(const ModelConfig& cfg, const MLAWeights& a, const RowBatch& rb, const LayerOptions& o, float* x,
                     MLACache& mc) {
  const Dims d(cfg);
  const int64_t R = rb.rows, B = rb.seqs, T = rb.T;
  float* kvx = grow(mc.kvx, size_t(R * d.H * (d.dn + d.dv)));
  linear_forward(R, mc.c.data(), d.Lr, a.kv_b_proj, kvx, d.H * (d.dn + d.dv));
  // per-sequence causal attention on per-head Q [H][T][dqk], K [H][T][dqk], V [H][T][dv]
  float* Qh = grow(mc.Qh, size_t(R * d.H * d.dqk));
  float* Kh = grow(mc.Kh, size_t(R * d.H * d.dqk));
  float* Vh = grow(mc.Vh, size_t(R * d.H * d.dv));
  const float* q = mc.q.data();
  const float* kv = mc.kv.data();
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < d.H; h++)
      for (int64_t t = 0; t < T; t++) {
        const int64_t r = b * T + t, hb = (b * d.H + h) * T + t;
        std::memcpy(Qh + hb * d.dqk, q + r * d.H * d.dqk + h * d.dqk, size_t(d.dqk) * 4);
        std::memcpy(Kh + hb * d.dqk, kvx + r * d.H * (d.dn + d.dv) + h * (d.dn + d.dv), size_t(d.dn) * 4);
        std::memcpy(Kh + hb * d.dqk + d.dn, kv + r * d.kvd + d.Lr, size_t(d.dr) * 4);
        std::memcpy(Vh + hb * d.dv, kvx + r * d.H * (d.dn + d.dv) + h * (d.dn + d.dv) + d.dn, size_t(d.dv) * 4);
      }
  float* O = grow(mc.O, size_t(R * d.H * d.dv));
  float* lse = grow(mc.lse, size_t(R * d.H));
  for (int64_t b = 0; b < B; b++) {
    const AttentionDims ad = sequence_attention(cfg, rb, b);
    attention_forward(ad, Qh + b * d.H * T * d.dqk, Kh + b * d.H * T * d.dqk, Vh + b * d.H * T * d.dv,
                      O + b * T * d.H * d.dv, d.H * d.dv, lse + b * d.H * T, o.precision);
  }
  linear_forward(R, O, d.H * d.dv, a.o_proj, x, d.D, /*accumulate=*/true);
}

// ---- inference over the latent cache

// Y = X W^T for X rows that may exceed a GEMV, on the calling thread (inside parallel regions).
void rows_product(int64_t M, const float* x, int64_t ldx, const MatRef& w, float* y, int64_t ldy) {
  for (int64_t m = 0; m < M; m += kGemvMaxRows)
    matmul(Matmul{std::min(kGemvMaxRows, M - m), x + m * ldx, ldx, w, y + m * ldy, ldy});
}

void attend_expanded(const ModelConfig& cfg, int64_t l, const MLAWeights& a, const SeqChunk& ch, int64_t start,
                     const float* q, float* out, Precision p, MLACache& mc) {
  const Dims d(cfg);
  const int64_t n = ch.n, Tk = start + n;
  const KVCache& cache = *ch.cache;
  // [k_nope | v] per head for every context token: c kv_b^T (c read from the transposed cache)
  float* kvx = grow(mc.kvx, size_t(Tk * d.H * (d.dn + d.dv)));  // [Tk, H (dn + dv)]
  Matmul m{Tk, cache.cols(l), cache.capacity(), MatRef::of(a.kv_b_proj), kvx, d.H * (d.dn + d.dv)};
  m.x_transposed = true;
  matmul(m);
  float* Qh = grow(mc.Qh, size_t(d.H * n * d.dqk));   // [H, n, dqk]
  float* Kh = grow(mc.Kh, size_t(d.H * Tk * d.dqk));  // [H, Tk, dqk]
  float* Vh = grow(mc.Vh, size_t(d.H * Tk * d.dv));   // [H, Tk, dv]
#pragma omp parallel for collapse(2) schedule(static) if (d.H * Tk * d.dqk > 65536)
  for (int64_t h = 0; h < d.H; h++)
    for (int64_t t = 0; t < Tk; t++) {
      const float* src = kvx + t * d.H * (d.dn + d.dv) + h * (d.dn + d.dv);
      float* kd = Kh + (h * Tk + t) * d.dqk;
      std::memcpy(kd, src, size_t(d.dn) * sizeof(float));
      for (int64_t i = 0; i < d.dr; i++) kd[d.dn + i] = cache.at(l, t, d.Lr + i);
      std::memcpy(Vh + (h * Tk + t) * d.dv, src + d.dn, size_t(d.dv) * sizeof(float));
    }
  for (int64_t h = 0; h < d.H; h++)
    for (int64_t t = 0; t < n; t++)
      std::memcpy(Qh + (h * n + t) * d.dqk, q + t * d.H * d.dqk + h * d.dqk, size_t(d.dqk) * sizeof(float));
  AttentionDims ad;
  ad.heads = d.H;
  ad.Tq = n;
  ad.Tk = Tk;
  ad.dqk = d.dqk;
  ad.dv = d.dv;
  ad.q_pos0 = start;
  ad.scale = float(cfg.softmax_scale());
  attention_forward(ad, Qh, Kh, Vh, out, d.H * d.dv, nullptr, p);
}

void attend_absorbed(const ModelConfig& cfg, int64_t l, const MLAWeights& a, const SeqChunk& ch, int64_t start,
                     const float* q, float* out, MLACache& mc) {
  const Dims d(cfg);
  const int64_t H = d.H, dqk = d.dqk, dn = d.dn, dr = d.dr, dv = d.dv, Lr = d.Lr, kvd = d.kvd;
  const int64_t n = ch.n, Tk = start + n, M = n * H;  // query row r = t * H + h
  const KVCache& cache = *ch.cache;
  const MatRef kv_b = MatRef::of(a.kv_b_proj);
  const float scale = float(cfg.softmax_scale());
  float* qabs = grow(mc.qabs, size_t(M * kvd));
  float* s = grow(mc.scores, size_t(M * Tk));
  float* olat = grow(mc.olat, size_t(M * Lr));
  // softmax of scaled scores over the visible prefix of row r (query token r / H)
  auto softmax_row = [&](int64_t r, int64_t visible) { softmax_scaled(s + r * Tk, visible, scale); };
  // q_abs[t, h] = [q_nope W_UK_h | q_pe]: its dot with [c | kp] is q . k of the expanded form.
  auto absorb_q = [&](int64_t h) {
    Matmul m{n, q + h * dqk, H * dqk, kv_b.row_slice(h * (dn + dv), dn), qabs + h * kvd, H * kvd};
    m.w_plain = true;
    matmul(m);
    for (int64_t i = 0; i < n; i++)
      std::memcpy(qabs + (i * H + h) * kvd + Lr, q + i * H * dqk + h * dqk + dn, size_t(dr) * sizeof(float));
  };
  // out_h = o_lat_h W_UV_h^T
  auto value_up = [&](int64_t h) {
    rows_product(n, olat + h * Lr, H * Lr, kv_b.row_slice(h * (dn + dv) + dn, dv), out + h * dv, H * dv);
  };
  const int nt = omp_in_parallel() ? 1 : int(std::min<int64_t>(num_threads(), H));  // 1: sequences run in parallel
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
        // o_lat = P c over the visible keys, the transposed cache as the weight matrix
        rows_product(hn, s + r0 * Tk, Tk, MatRef::f32(cache.cols(l), Lr, visible, cache.capacity()), olat + r0 * Lr, Lr);
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
    // o_lat = P c: this thread's latent dimensions, each a row of the transposed cache
    split_range(Lr, T, t, lo, hi);
    if (hi > lo)
      rows_product(M, s, Tk, MatRef::f32(cache.cols(l) + lo * cache.capacity(), hi - lo, Tk, cache.capacity()),
                   olat + lo, Lr);
#pragma omp barrier
    split_range(H, T, t, lo, hi);
    for (int64_t h = lo; h < hi; h++) value_up(h);
  }
}

void cached_attention(const ModelConfig& cfg, int64_t l, const MLAWeights& a, const RowBatch& rb,
                      const LayerOptions& o, float* x, MLACache& mc) {
  const Dims d(cfg);
  const int64_t R = rb.rows;
  const auto& chunks = *rb.chunks;
  const auto& row0 = *rb.row0;
  // append [c | kp] to the caches
  for (size_t i = 0; i < chunks.size(); i++) {
    KVCache& cache = *chunks[i].cache;
    for (int64_t t = 0; t < chunks[i].n; t++) {
      const int64_t r = row0[i] + t;
      cache.write(l, cache.length() + t, mc.c.data() + r * d.Lr, 0, d.Lr);
      cache.write(l, cache.length() + t, mc.kv.data() + r * d.kvd + d.Lr, d.Lr, d.dr);
    }
  }
  float* att = grow(mc.O, size_t(R * d.H * d.dv));
  // the cheaper formulation for a chunk (multiply-adds of each)
  auto formulation = [&](const SeqChunk& ch) {
    if (o.attn != AttnImpl::Auto) return o.attn;
    const int64_t start = ch.cache->length(), Tk = start + ch.n;
    const double pairs = double(ch.n) * (double(start) + double(ch.n + 1) / 2);
    const double expanded = double(Tk) * d.Lr * d.H * (d.dn + d.dv) + pairs * d.H * (d.dqk + d.dv);
    const double absorbed = double(ch.n) * d.H * d.Lr * (d.dn + d.dv) + pairs * d.H * (d.kvd + d.Lr);
    return expanded < absorbed ? AttnImpl::Expanded : AttnImpl::Absorbed;
  };
  // A decode batch (one row per sequence, absorbed): each sequence on one thread, sequences in parallel; a parallel
  // region per sequence splitting its heads costs more than a short sequence's work. Bitwise the same result.
  const bool decode_batch = chunks.size() >= 2 && std::all_of(chunks.begin(), chunks.end(), [&](const SeqChunk& ch) {
                              return ch.n == 1 && formulation(ch) == AttnImpl::Absorbed;
                            });
  if (decode_batch) {
    DSEEK_PROFILE("attn.absorbed_batch");
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < chunks.size(); i++) {
      static thread_local MLACache scratch;  // qabs, scores, olat of this thread's sequence
      attend_absorbed(cfg, l, a, chunks[i], chunks[i].cache->length(), mc.q.data() + row0[i] * d.H * d.dqk,
                      att + row0[i] * d.H * d.dv, scratch);
    }
  } else {
    for (size_t i = 0; i < chunks.size(); i++) {
      const SeqChunk& ch = chunks[i];
      if (ch.n == 0) continue;
      const int64_t start = ch.cache->length();
      const float* qc = mc.q.data() + row0[i] * d.H * d.dqk;
      float* oc = att + row0[i] * d.H * d.dv;
      if (formulation(ch) == AttnImpl::Expanded) {
        DSEEK_PROFILE("attn.expanded");
        attend_expanded(cfg, l, a, ch, start, qc, oc, o.precision, mc);
      } else {
        DSEEK_PROFILE("attn.absorbed");
        attend_absorbed(cfg, l, a, ch, start, qc, oc, mc);
      }
    }
  }
  DSEEK_PROFILE("attn.o_proj");
  linear_forward(R, att, d.H * d.dv, a.o_proj, x, d.D, /*accumulate=*/true);
}

}  // namespace

void mla_forward(const ModelConfig& c, int64_t layer, const MLAWeights& w, const RopeTable& rope, const RowBatch& rb,
                 const LayerOptions& o, const float* hn, float* x, MLACache& mc) {
  project(c, w, rope, rb.rows, hn, rb.positions, mc);
  if (rb.has_cache()) cached_attention(c, layer, w, rb, o, x, mc);
  else train_attention(c, w, rb, o, x, mc);
}

void mla_backward(const ModelConfig& c, const MLAWeights& a, MLAWeights& ga, const RopeTable& rope, const RowBatch& rb,
                  const LayerOptions& o, const MLACache& mc, const float* hn, const float* dx, float* dhn) {
  const Dims d(c);
  const int64_t R = rb.rows, B = rb.seqs, T = rb.T, H = d.H, dqk = d.dqk, dn = d.dn, dr = d.dr, dv = d.dv;
  const int64_t Lr = d.Lr, kvd = d.kvd, qr = d.qr, D = d.D;
  const Precision p = o.precision;
  std::vector<float> dO(static_cast<size_t>(R * H * dv));
  linear_backward(R, dx, D, mc.O.data(), H * dv, a.o_proj, dO.data(), H * dv, false, ga.o_proj, p);
  std::vector<float> dQh(static_cast<size_t>(R * H * dqk)), dKh(static_cast<size_t>(R * H * dqk)),
      dVh(static_cast<size_t>(R * H * dv));
  for (int64_t b = 0; b < B; b++) {
    const AttentionDims ad = sequence_attention(c, rb, b);
    const int64_t qo = b * H * T * dqk, vo = b * H * T * dv;
    attention_backward(ad, mc.Qh.data() + qo, mc.Kh.data() + qo, mc.Vh.data() + vo, mc.O.data() + b * T * H * dv,
                       H * dv, dO.data() + b * T * H * dv, H * dv, mc.lse.data() + b * H * T, dQh.data() + qo,
                       dKh.data() + qo, dVh.data() + vo, p);
  }
  std::vector<float> dq(static_cast<size_t>(R * H * dqk)), dkvx(static_cast<size_t>(R * H * (dn + dv))),
      dkv(static_cast<size_t>(R * kvd), 0.0f);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < R; r++) {
    const int64_t b = r / T, t = r % T;
    float* dkpe = dkv.data() + r * kvd + Lr;
    for (int64_t h = 0; h < H; h++) {
      const int64_t hb = (b * H + h) * T + t;
      std::memcpy(dq.data() + r * H * dqk + h * dqk, dQh.data() + hb * dqk, size_t(dqk) * 4);
      std::memcpy(dkvx.data() + r * H * (dn + dv) + h * (dn + dv), dKh.data() + hb * dqk, size_t(dn) * 4);
      std::memcpy(dkvx.data() + r * H * (dn + dv) + h * (dn + dv) + dn, dVh.data() + hb * dv, size_t(dv) * 4);
      for (int64_t i = 0; i < dr; i++) dkpe[i] += dKh[size_t(hb * dqk + dn + i)];  // kp is shared by the heads
    }
  }
  // RoPE is a rotation: its backward rotates by -angle
  rope_apply(dq.data(), R, H * dqk, dn, H, dqk, rb.positions, rope, /*inverse=*/true);
  rope_apply(dkv.data(), R, kvd, Lr, 1, 0, rb.positions, rope, /*inverse=*/true);
  // kv_b and the latent norm
  std::vector<float> dc(static_cast<size_t>(R * Lr));
  linear_backward(R, dkvx.data(), H * (dn + dv), mc.c.data(), Lr, a.kv_b_proj, dc.data(), Lr, false, ga.kv_b_proj, p);
  rmsnorm_backward(mc.kv.data(), kvd, a.kv_a_layernorm.f32(), mc.kv_rstd.data(), dc.data(), Lr, R, Lr, dkv.data(), kvd,
                   ga.kv_a_layernorm.f32(), false);
  linear_backward(R, dkv.data(), kvd, hn, D, a.kv_a_proj, dhn, D, true, ga.kv_a_proj, p);
  if (qr > 0) {
    std::vector<float> dqan(static_cast<size_t>(R * qr)), dqa(static_cast<size_t>(R * qr));
    linear_backward(R, dq.data(), H * dqk, mc.qan.data(), qr, a.q_b_proj, dqan.data(), qr, false, ga.q_b_proj, p);
    rmsnorm_backward(mc.qa.data(), qr, a.q_a_layernorm.f32(), mc.qa_rstd.data(), dqan.data(), qr, R, qr, dqa.data(), qr,
                     ga.q_a_layernorm.f32(), false);
    linear_backward(R, dqa.data(), qr, hn, D, a.q_a_proj, dhn, D, true, ga.q_a_proj, p);
  } else {
    linear_backward(R, dq.data(), H * dqk, hn, D, a.q_proj, dhn, D, true, ga.q_proj, p);
  }
}

}  // namespace dseek
