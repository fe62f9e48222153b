#include "model/layers/attention_gqa.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/memory.h"
#include "core/profile.h"
#include "kernels/attention.h"
#include "kernels/latent_attention.h"
#include "kernels/vmath.h"
#include "model/layers/linear.h"

namespace dseek {

namespace {

struct Dims {
  int64_t D, H, KVH, d, group, kvw;  // kvw: width of a [k | v] row
  explicit Dims(const ModelConfig& c)
      : D(c.hidden_size), H(c.num_attention_heads), KVH(c.num_key_value_heads), d(c.head_dim),
        group(c.num_attention_heads / c.num_key_value_heads), kvw(2 * c.num_key_value_heads * c.head_dim) {}
};

// Chunks of at most this many rows attend over the cache with the decode kernels.
constexpr int64_t kCachedKernelMaxRows = 16;

void project(const ModelConfig& cfg, const GQAWeights& w, const RopeTable& rope, int64_t R, const float* hn,
             const int32_t* positions, GQACache& gc) {
  const Dims d(cfg);
  float* q = grow(gc.q, size_t(R * d.H * d.d));
  float* kv = grow(gc.kv, size_t(R * d.kvw));
  linear_forward({LinearJob{R, hn, d.D, &w.q_proj, q, d.H * d.d}, LinearJob{R, hn, d.D, &w.k_proj, kv, d.kvw},
                  LinearJob{R, hn, d.D, &w.v_proj, kv + d.KVH * d.d, d.kvw}});
  rope_apply(q, R, d.H * d.d, 0, d.H, d.d, positions, rope);
  rope_apply(kv, R, d.kvw, 0, d.KVH, d.d, positions, rope);
}

AttentionDims sequence_attention(const ModelConfig& c, const RowBatch& rb, int64_t b) {
  AttentionDims a;
  a.heads = c.num_attention_heads;
  a.kv_heads = c.num_key_value_heads;
  a.Tq = a.Tk = rb.T;
  a.dqk = a.dv = c.head_dim;
  a.scale = float(c.softmax_scale());
  a.key_begin = rb.key_begin ? rb.key_begin + b * rb.T : nullptr;
  return a;
}

void train_attention(const ModelConfig& cfg, const GQAWeights& w, const RowBatch& rb, const LayerOptions& o, float* x,
                     GQACache& gc) {
  const Dims d(cfg);
  const int64_t R = rb.rows, B = rb.seqs, T = rb.T, hd = d.d;
  float* Qh = grow(gc.Qh, size_t(R * d.H * hd));
  float* Kh = grow(gc.Kh, size_t(R * d.KVH * hd));
  float* Vh = grow(gc.Vh, size_t(R * d.KVH * hd));
  const float* q = gc.q.data();
  const float* kv = gc.kv.data();
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++) {
      const int64_t r = b * T + t;
      for (int64_t h = 0; h < d.H; h++)
        std::memcpy(Qh + ((b * d.H + h) * T + t) * hd, q + r * d.H * hd + h * hd, size_t(hd) * 4);
      for (int64_t h = 0; h < d.KVH; h++) {
        std::memcpy(Kh + ((b * d.KVH + h) * T + t) * hd, kv + r * d.kvw + h * hd, size_t(hd) * 4);
        std::memcpy(Vh + ((b * d.KVH + h) * T + t) * hd, kv + r * d.kvw + (d.KVH + h) * hd, size_t(hd) * 4);
      }
    }
  float* O = grow(gc.O, size_t(R * d.H * hd));
  float* lse = grow(gc.lse, size_t(R * d.H));
  for (int64_t b = 0; b < B; b++)
    attention_forward(sequence_attention(cfg, rb, b), Qh + b * d.H * T * hd, Kh + b * d.KVH * T * hd,
                      Vh + b * d.KVH * T * hd, O + b * T * d.H * hd, d.H * hd, lse + b * d.H * T, o.precision);
  linear_forward(R, O, d.H * hd, w.o_proj, x, d.D, /*accumulate=*/true);
}

// Short chunk over the cache: per (KV head, query token), the group's query heads score every visible key of
// the transposed cache, then sum the transposed values weighted by the softmax.
void attend_cached_rows(const ModelConfig& cfg, int64_t l, const SeqChunk& ch, int64_t start, const float* q,
                        float* out) {
  const Dims d(cfg);
  const KVCache& cache = *ch.cache;
  const int64_t n = ch.n, Tk = start + n, cap = cache.capacity(), hd = d.d, g = d.group;
  const float scale = float(cfg.softmax_scale());
  const int64_t items = d.KVH * n;
#pragma omp parallel if (items > 1 && !omp_in_parallel())
  {
    std::vector<float> s(size_t(g * Tk));
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; it++) {
      const int64_t kh = it % d.KVH, i = it / d.KVH, visible = start + i + 1;
      const float* qi = q + i * d.H * hd + kh * g * hd;  // the group's heads are adjacent: ld hd
      for (int64_t m = 0; m < g; m += kLatentMaxRows)
        latent_scores(std::min(kLatentMaxRows, g - m), qi + m * hd, hd, cache.cols(l) + kh * hd * cap, cap, hd, 0,
                      visible, s.data() + m * Tk, Tk);
      for (int64_t m = 0; m < g; m++) softmax_scaled(s.data() + m * Tk, visible, scale);
      const MatRef vT = MatRef::f32(cache.cols(l) + (d.KVH + kh) * hd * cap, hd, visible, cap);
      for (int64_t m = 0; m < g; m += kGemvMaxRows)
        matmul(Matmul{std::min(kGemvMaxRows, g - m), s.data() + m * Tk, Tk, vT, out + i * d.H * hd + (kh * g + m) * hd, hd});
    }
  }
}

// Long chunk: keys and values of the whole context gathered from the cache, then the blocked kernel.
void attend_expanded(const ModelConfig& cfg, int64_t l, const SeqChunk& ch, int64_t start, const float* q, float* out,
                     Precision p, GQACache& gc) {
  const Dims d(cfg);
  const KVCache& cache = *ch.cache;
  const int64_t n = ch.n, Tk = start + n, hd = d.d;
  float* Qh = grow(gc.Qh, size_t(d.H * n * hd));    // [H, n, hd]
  float* Kh = grow(gc.Kh, size_t(d.KVH * Tk * hd));  // [KVH, Tk, hd]
  float* Vh = grow(gc.Vh, size_t(d.KVH * Tk * hd));  // [KVH, Tk, hd]
#pragma omp parallel for schedule(static) if (d.KVH * Tk * hd > 65536)
  for (int64_t h = 0; h < d.KVH; h++)
    for (int64_t i = 0; i < hd; i++) {
      const float* kr = cache.cols(l) + (h * hd + i) * cache.capacity();
      const float* vr = cache.cols(l) + ((d.KVH + h) * hd + i) * cache.capacity();
      for (int64_t t = 0; t < Tk; t++) {
        Kh[(h * Tk + t) * hd + i] = kr[t];
        Vh[(h * Tk + t) * hd + i] = vr[t];
      }
    }
  for (int64_t h = 0; h < d.H; h++)
    for (int64_t t = 0; t < n; t++)
      std::memcpy(Qh + (h * n + t) * hd, q + t * d.H * hd + h * hd, size_t(hd) * 4);
  AttentionDims a;
  a.heads = d.H;
  a.kv_heads = d.KVH;
  a.Tq = n;
  a.Tk = Tk;
  a.dqk = a.dv = hd;
  a.q_pos0 = start;
  a.scale = float(cfg.softmax_scale());
  attention_forward(a, Qh, Kh, Vh, out, d.H * hd, nullptr, p);
}

void cached_attention(const ModelConfig& cfg, int64_t l, const GQAWeights& w, const RowBatch& rb,
                      const LayerOptions& o, float* x, GQACache& gc) {
  const Dims d(cfg);
  const auto& chunks = *rb.chunks;
  const auto& row0 = *rb.row0;
  for (size_t i = 0; i < chunks.size(); i++) {
    KVCache& cache = *chunks[i].cache;
    for (int64_t t = 0; t < chunks[i].n; t++)
      cache.write(l, cache.length() + t, gc.kv.data() + (row0[i] + t) * d.kvw, 0, d.kvw);
  }
  float* att = grow(gc.O, size_t(rb.rows * d.H * d.d));
  for (size_t i = 0; i < chunks.size(); i++) {
    const SeqChunk& ch = chunks[i];
    if (ch.n == 0) continue;
    const float* qc = gc.q.data() + row0[i] * d.H * d.d;
    float* oc = att + row0[i] * d.H * d.d;
    if (ch.n <= kCachedKernelMaxRows) {
      DSEEK_PROFILE("attn.cached");
      attend_cached_rows(cfg, l, ch, ch.cache->length(), qc, oc);
    } else {
      DSEEK_PROFILE("attn.expanded");
      attend_expanded(cfg, l, ch, ch.cache->length(), qc, oc, o.precision, gc);
    }
  }
  DSEEK_PROFILE("attn.o_proj");
  linear_forward(rb.rows, att, d.H * d.d, w.o_proj, x, d.D, /*accumulate=*/true);
}

}  // namespace

void gqa_forward(const ModelConfig& c, int64_t layer, const GQAWeights& w, const RopeTable& rope, const RowBatch& rb,
                 const LayerOptions& o, const float* hn, float* x, GQACache& gc) {
  project(c, w, rope, rb.rows, hn, rb.positions, gc);
  if (rb.has_cache()) cached_attention(c, layer, w, rb, o, x, gc);
  else train_attention(c, w, rb, o, x, gc);
}

void gqa_backward(const ModelConfig& c, const GQAWeights& w, GQAWeights& g, const RopeTable& rope, const RowBatch& rb,
                  const LayerOptions& o, const GQACache& gc, const float* hn, const float* dx, float* dhn) {
  const Dims d(c);
  const int64_t R = rb.rows, B = rb.seqs, T = rb.T, hd = d.d, H = d.H, KVH = d.KVH;
  const Precision p = o.precision;
  std::vector<float> dO(size_t(R * H * hd));
  linear_backward(R, dx, d.D, gc.O.data(), H * hd, w.o_proj, dO.data(), H * hd, false, g.o_proj, p);
  std::vector<float> dQh(size_t(R * H * hd)), dKh(size_t(R * KVH * hd)), dVh(size_t(R * KVH * hd));
  for (int64_t b = 0; b < B; b++)
    attention_backward(sequence_attention(c, rb, b), gc.Qh.data() + b * H * T * hd, gc.Kh.data() + b * KVH * T * hd,
                       gc.Vh.data() + b * KVH * T * hd, gc.O.data() + b * T * H * hd, H * hd, dO.data() + b * T * H * hd,
                       H * hd, gc.lse.data() + b * H * T, dQh.data() + b * H * T * hd, dKh.data() + b * KVH * T * hd,
                       dVh.data() + b * KVH * T * hd, p);
  std::vector<float> dq(size_t(R * H * hd)), dkv(size_t(R * d.kvw));
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++) {
      const int64_t r = b * T + t;
      for (int64_t h = 0; h < H; h++)
        std::memcpy(dq.data() + r * H * hd + h * hd, dQh.data() + ((b * H + h) * T + t) * hd, size_t(hd) * 4);
      for (int64_t h = 0; h < KVH; h++) {
        std::memcpy(dkv.data() + r * d.kvw + h * hd, dKh.data() + ((b * KVH + h) * T + t) * hd, size_t(hd) * 4);
        std::memcpy(dkv.data() + r * d.kvw + (KVH + h) * hd, dVh.data() + ((b * KVH + h) * T + t) * hd, size_t(hd) * 4);
      }
    }
  // RoPE is a rotation: its backward rotates by -angle (biases sit before it, so they see the unrotated gradient)
  rope_apply(dq.data(), R, H * hd, 0, H, hd, rb.positions, rope, /*inverse=*/true);
  rope_apply(dkv.data(), R, d.kvw, 0, KVH, hd, rb.positions, rope, /*inverse=*/true);
  linear_backward(R, dq.data(), H * hd, hn, d.D, w.q_proj, dhn, d.D, true, g.q_proj, p);
  linear_backward(R, dkv.data(), d.kvw, hn, d.D, w.k_proj, dhn, d.D, true, g.k_proj, p);
  linear_backward(R, dkv.data() + KVH * hd, d.kvw, hn, d.D, w.v_proj, dhn, d.D, true, g.v_proj, p);
}

}  // namespace dseek
