"""DeepSeek-V2/V3 architecture in PyTorch (the "twin" of dseek's C++ model).

Module names mirror the Hugging Face checkpoint names, so `state_dict()` keys are the HF tensor names
(`model.layers.N.self_attn.q_a_proj.weight`, ...). MTP module k lives at `model.layers.{L+k-1}`
(L = num_hidden_layers), with enorm / hnorm / eh_proj / shared_head.norm next to a full decoder block.
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from safetensors_io import load_file, fp8_dequantize


class Config:
    """The fields of a HF DeepSeek-V2/V3 config.json that the model uses, with HF's defaults."""

    def __init__(self, d):
        self.raw = dict(d)
        g = d.get
        self.arch = (g("architectures") or ["DeepseekV3ForCausalLM"])[0]
        self.vocab_size = d["vocab_size"]
        self.hidden_size = d["hidden_size"]
        self.intermediate_size = d["intermediate_size"]
        self.moe_intermediate_size = g("moe_intermediate_size") or d["intermediate_size"]
        self.num_hidden_layers = d["num_hidden_layers"]
        self.num_heads = d["num_attention_heads"]
        self.q_lora_rank = g("q_lora_rank")
        self.kv_lora_rank = d["kv_lora_rank"]
        self.qk_nope_head_dim = d["qk_nope_head_dim"]
        self.qk_rope_head_dim = d["qk_rope_head_dim"]
        self.v_head_dim = d["v_head_dim"]
        self.n_routed_experts = g("n_routed_experts")
        self.n_shared_experts = g("n_shared_experts") or 0
        self.num_experts_per_tok = g("num_experts_per_tok")
        self.n_group = g("n_group") or 1
        self.topk_group = g("topk_group") or 1
        self.topk_method = g("topk_method", "greedy")
        self.scoring_func = g("scoring_func", "softmax")
        self.norm_topk_prob = bool(g("norm_topk_prob", False))
        self.routed_scaling_factor = float(g("routed_scaling_factor", 1.0) or 1.0)
        self.first_k_dense_replace = g("first_k_dense_replace", 0) or 0
        self.moe_layer_freq = g("moe_layer_freq", 1) or 1
        self.rms_norm_eps = float(g("rms_norm_eps", 1e-6))
        self.rope_theta = float(g("rope_theta", 10000.0))
        self.rope_scaling = g("rope_scaling")
        self.max_position_embeddings = g("max_position_embeddings", 2048)
        self.num_nextn_predict_layers = g("num_nextn_predict_layers", 0) or 0
        self.tie_word_embeddings = bool(g("tie_word_embeddings", False))
        if g("hidden_act", "silu") != "silu":
            raise ValueError("only silu is supported")
        if g("attention_bias", False):
            raise ValueError("attention_bias is not supported")
        rs = self.rope_scaling
        if rs is not None and rs.get("type", rs.get("rope_type")) not in ("yarn",):
            raise ValueError("unsupported rope_scaling %r" % rs)

    @staticmethod
    def load(path):
        with open(path) as f:
            return Config(json.load(f))

    def is_moe(self, i):
        return bool(self.n_routed_experts) and i >= self.first_k_dense_replace and i % self.moe_layer_freq == 0

    @property
    def yarn(self):
        rs = self.rope_scaling
        return rs is not None and self.max_position_embeddings > rs["original_max_position_embeddings"]


# ---------------------------------------------------------------- RoPE / YaRN

def yarn_get_mscale(scale, mscale):
    return 0.1 * mscale * math.log(scale) + 1.0 if scale > 1 else 1.0


def rope_inv_freq(cfg):
    """inv_freq_i = base^(-2i/d); YaRN blends freq/factor (low freqs) and freq (high freqs)."""
    d, base = cfg.qk_rope_head_dim, cfg.rope_theta
    freq = 1.0 / base ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    if cfg.yarn:
        rs = cfg.rope_scaling
        factor, orig = rs["factor"], rs["original_max_position_embeddings"]
        # dimension index whose wavelength fits r turns into the original context
        cd = lambda r: d * math.log(orig / (r * 2 * math.pi)) / (2 * math.log(base))
        low = max(math.floor(cd(rs.get("beta_fast", 32))), 0)
        high = min(math.ceil(cd(rs.get("beta_slow", 1))), d - 1)
        if low == high:
            high += 0.001
        ramp = ((torch.arange(d // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
        smooth = 1 - ramp
        freq = freq / factor * (1 - smooth) + freq * smooth
    return freq


def softmax_scale(cfg):
    """(dn + dr)^-0.5, times mscale^2 with mscale = 0.1 * mscale_all_dim * ln(factor) + 1 under YaRN."""
    s = (cfg.qk_nope_head_dim + cfg.qk_rope_head_dim) ** -0.5
    if cfg.yarn and cfg.rope_scaling.get("mscale_all_dim", 0):
        m = yarn_get_mscale(cfg.rope_scaling["factor"], cfg.rope_scaling["mscale_all_dim"])
        s = s * m * m
    return s


def rope_tables(cfg, n):
    """cos, sin [n, d/2] (float64) for positions 0..n-1, times the YaRN attention factor."""
    ang = torch.arange(n, dtype=torch.float64)[:, None] * rope_inv_freq(cfg)[None, :]
    m = 1.0
    if cfg.yarn:
        rs = cfg.rope_scaling
        m = yarn_get_mscale(rs["factor"], rs.get("mscale", 1)) / yarn_get_mscale(rs["factor"], rs.get("mscale_all_dim", 0))
    return ang.cos() * m, ang.sin() * m


def apply_rope(x, cos, sin):
    """Rotate interleaved pairs (x[2i], x[2i+1]) by angle pos * inv_freq_i. x [..., T, (H,) d]."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


# ---------------------------------------------------------------- blocks

class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        # y = w * x / sqrt(mean(x^2) + eps), computed in at least float32
        xf = x.float() if x.dtype in (torch.bfloat16, torch.float16) else x
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * y.to(x.dtype)


def linear(n_in, n_out):
    return nn.Linear(n_in, n_out, bias=False)


class MLP(nn.Module):
    """SwiGLU: down(silu(gate x) * up x)."""

    def __init__(self, hidden, inter):
        super().__init__()
        self.gate_proj, self.up_proj, self.down_proj = linear(hidden, inter), linear(hidden, inter), linear(inter, hidden)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class KVCache:
    """Latent cache per layer: normalised c_kv [B, S, kv_lora_rank] and roped k_pe [B, S, dr]."""

    def __init__(self, cfg, n_layers, batch, max_len, dtype):
        self.c = [torch.zeros(batch, max_len, cfg.kv_lora_rank, dtype=dtype) for _ in range(n_layers)]
        self.pe = [torch.zeros(batch, max_len, cfg.qk_rope_head_dim, dtype=dtype) for _ in range(n_layers)]


class MLA(nn.Module):
    """Multi-head Latent Attention."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        H, dn, dr, dv = cfg.num_heads, cfg.qk_nope_head_dim, cfg.qk_rope_head_dim, cfg.v_head_dim
        h = cfg.hidden_size
        if cfg.q_lora_rank:
            self.q_a_proj = linear(h, cfg.q_lora_rank)
            self.q_a_layernorm = RMSNorm(cfg.q_lora_rank, cfg.rms_norm_eps)
            self.q_b_proj = linear(cfg.q_lora_rank, H * (dn + dr))
        else:
            self.q_proj = linear(h, H * (dn + dr))
        self.kv_a_proj_with_mqa = linear(h, cfg.kv_lora_rank + dr)
        self.kv_a_layernorm = RMSNorm(cfg.kv_lora_rank, cfg.rms_norm_eps)
        self.kv_b_proj = linear(cfg.kv_lora_rank, H * (dn + dv))
        self.o_proj = linear(H * dv, h)
        self.scale = softmax_scale(cfg)

    def forward(self, x, cos, sin, cache=None, layer=0, start=0):
        """x [B, T, h] at positions start..start+T-1; cos/sin [T, dr/2].
        Without a cache, or for a first chunk (start 0, T > 1): explicit per-head K/V.
        Otherwise: weight-absorbed attention over the latent cache."""
        c = self.cfg
        B, T, _ = x.shape
        H, dn, dr, dv, r = c.num_heads, c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim, c.kv_lora_rank
        q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x))) if c.q_lora_rank else self.q_proj(x)
        q = q.view(B, T, H, dn + dr)
        q_nope, q_pe = q.split([dn, dr], dim=-1)
        q_pe = apply_rope(q_pe, cos[:, None, :], sin[:, None, :])               # [B, T, H, dr]
        kv = self.kv_a_proj_with_mqa(x)
        c_kv, k_pe = kv.split([r, dr], dim=-1)
        c_kv = self.kv_a_layernorm(c_kv)                                         # [B, T, r]
        k_pe = apply_rope(k_pe, cos, sin)                                        # [B, T, dr], one head shared
        if cache is not None:
            cache.c[layer][:, start:start + T] = c_kv
            cache.pe[layer][:, start:start + T] = k_pe
        S = start + T
        causal = torch.ones(T, S, dtype=torch.bool).tril(start) if T > 1 else None
        if cache is None or (start == 0 and T > 1):
            kvb = self.kv_b_proj(c_kv).view(B, T, H, dn + dv)
            k_nope, v = kvb.split([dn, dv], dim=-1)
            s = torch.einsum("bthd,bshd->bhts", q_nope, k_nope) + torch.einsum("bthd,bsd->bhts", q_pe, k_pe)
            p = self._softmax(s, causal)
            o = torch.einsum("bhts,bshd->bthd", p, v)
        else:
            # absorb W_uk into q and W_uv after the attention: scores = (q_nope W_uk) . c_kv + q_pe . k_pe
            w = self.kv_b_proj.weight.view(H, dn + dv, r)
            C, P = cache.c[layer][:, :S], cache.pe[layer][:, :S]
            q_lat = torch.einsum("bthd,hdr->bthr", q_nope, w[:, :dn])
            s = torch.einsum("bthr,bsr->bhts", q_lat, C) + torch.einsum("bthd,bsd->bhts", q_pe, P)
            p = self._softmax(s, causal)
            o = torch.einsum("bhts,bsr->bthr", p, C)
            o = torch.einsum("bthr,hdr->bthd", o, w[:, dn:])
        return self.o_proj(o.reshape(B, T, H * dv))

    def _softmax(self, s, causal):
        s = s * self.scale
        if causal is not None:
            s = s.masked_fill(~causal, float("-inf"))
        return torch.softmax(s.float() if s.dtype != torch.float64 else s, dim=-1).to(s.dtype)


class Gate(nn.Module):
    """DeepSeekMoE router. Returns expert ids [N, k] (ranked), weights [N, k] and scores [N, E]."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.weight = nn.Parameter(torch.empty(cfg.n_routed_experts, cfg.hidden_size))
        if cfg.topk_method == "noaux_tc":
            self.register_buffer("e_score_correction_bias", torch.zeros(cfg.n_routed_experts))
        else:
            self.e_score_correction_bias = None

    def forward(self, x):
        c = self.cfg
        N, E, k = x.shape[0], c.n_routed_experts, c.num_experts_per_tok
        dt = torch.float64 if x.dtype == torch.float64 else torch.float32
        with torch.autocast("cpu", enabled=False):
            z = F.linear(x.to(dt), self.weight.to(dt))                   # router logits in >= fp32
        s = torch.sigmoid(z) if c.scoring_func == "sigmoid" else torch.softmax(z, dim=-1)
        sel = s.detach()
        if self.e_score_correction_bias is not None:
            sel = sel + self.e_score_correction_bias.to(dt)              # bias: selection only
        margins = {}
        if c.n_group > 1 and c.topk_method != "greedy":
            g = sel.view(N, c.n_group, E // c.n_group)
            gs = g.topk(2, dim=-1).values.sum(-1) if c.topk_method == "noaux_tc" else g.amax(-1)
            if c.topk_group < c.n_group:
                top = gs.topk(c.topk_group + 1, dim=-1).values
                margins["group"] = top[:, -2] - top[:, -1]               # last kept - first dropped
            keep = gs.topk(c.topk_group, dim=-1).indices
            drop = torch.ones_like(gs, dtype=torch.bool).scatter(1, keep, False)
            sel = sel.masked_fill(drop[:, :, None].expand_as(g).reshape(N, E), float("-inf"))
        top = sel.topk(k + 1 if k < E else k, dim=-1)
        if k < E:
            margins["expert"] = top.values[:, k - 1] - top.values[:, k]  # k-th - (k+1)-th
        idx = top.indices[:, :k]
        w = s.gather(1, idx)                                             # unbiased scores
        normed = c.norm_topk_prob and k > 1
        if normed:
            w = w / w.sum(-1, keepdim=True)
        if not (c.arch == "DeepseekV2ForCausalLM" and normed):
            w = w * c.routed_scaling_factor
        return idx, w, s, margins


class MoE(nn.Module):
    """y = sum_k w_k expert_k(x) + shared_experts(x)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.gate = Gate(cfg)
        self.experts = nn.ModuleList(MLP(cfg.hidden_size, cfg.moe_intermediate_size) for _ in range(cfg.n_routed_experts))
        if cfg.n_shared_experts:
            self.shared_experts = MLP(cfg.hidden_size, cfg.moe_intermediate_size * cfg.n_shared_experts)

    def forward(self, x, log=None, layer=None):
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        idx, w, s, margins = self.gate(x)
        k = idx.shape[1]
        flat = idx.flatten()
        order = torch.sort(flat, stable=True).indices         # (token, slot) pairs grouped by expert
        counts = torch.bincount(flat, minlength=len(self.experts)).tolist()
        tok = order // k
        xs = x.index_select(0, tok).split(counts)             # one gather, contiguous chunk per expert
        ys = torch.cat([self.experts[e](xe) for e, xe in enumerate(xs) if counts[e]])
        ys = ys * w.flatten()[order].to(ys.dtype)[:, None]
        y = torch.zeros(x.shape, dtype=ys.dtype).index_add_(0, tok, ys)
        if self.cfg.n_shared_experts:
            y = y + self.shared_experts(x)
        if log is not None:
            lead = shape[:-1]
            log.append({"layer": layer, "idx": idx.view(*lead, k), "weights": w.view(*lead, k),
                        "scores": s.view(*lead, -1), "margins": margins})
        return y.view(shape)


class DecoderLayer(nn.Module):
    def __init__(self, cfg, i):
        super().__init__()
        self.i = i
        self.self_attn = MLA(cfg)
        self.mlp = MoE(cfg) if cfg.is_moe(i) else MLP(cfg.hidden_size, cfg.intermediate_size)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, x, cos, sin, cache=None, start=0, log=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache, self.i, start)
        h = self.post_attention_layernorm(x)
        return x + (self.mlp(h, log, self.i) if isinstance(self.mlp, MoE) else self.mlp(h))


class SharedHead(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class MTPLayer(DecoderLayer):
    """MTP module: u = eh_proj([enorm(emb), hnorm(h)]), then a decoder block; head = lm_head(shared_head.norm)."""

    def __init__(self, cfg, i):
        super().__init__(cfg, i)
        self.enorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.hnorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.eh_proj = linear(2 * cfg.hidden_size, cfg.hidden_size)
        self.shared_head = SharedHead(cfg)


class Backbone(nn.Module):
    def __init__(self, cfg, with_mtp):
        super().__init__()
        L = cfg.num_hidden_layers
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        layers = [DecoderLayer(cfg, i) for i in range(L)]
        if with_mtp:
            layers += [MTPLayer(cfg, L + k) for k in range(cfg.num_nextn_predict_layers)]
        self.layers = nn.ModuleList(layers)
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class DeepseekModel(nn.Module):
    def __init__(self, cfg, with_mtp=True):
        super().__init__()
        self.cfg = cfg
        self.model = Backbone(cfg, with_mtp)
        self.lm_head = linear(cfg.hidden_size, cfg.vocab_size)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self._rope = None

    # -- helpers
    def mtp_layers(self):
        return list(self.model.layers)[self.cfg.num_hidden_layers:]

    def rope(self, start, T, dtype):
        n = start + T
        if self._rope is None or self._rope[0].shape[0] < n:
            self._rope = rope_tables(self.cfg, max(n, 64))
        cos, sin = self._rope
        return cos[start:n].to(dtype), sin[start:n].to(dtype)

    def to_dtype(self, dtype):
        """Cast weights/activations; the correction bias stays float32."""
        self.to(dtype)
        for m in self.modules():
            if isinstance(m, Gate) and m.e_score_correction_bias is not None:
                m.e_score_correction_bias.data = m.e_score_correction_bias.data.float()
        return self

    @property
    def dtype(self):
        return self.lm_head.weight.dtype

    def new_cache(self, batch, max_len):
        return KVCache(self.cfg, self.cfg.num_hidden_layers, batch, max_len, self.dtype)

    # -- forward
    def forward(self, tokens, cache=None, start=0, log=None, hidden_log=None):
        """tokens [B, T] at positions start.. -> (logits [B, T, V], h [B, T, hidden] before the final norm)."""
        x = self.model.embed_tokens(tokens)
        cos, sin = self.rope(start, tokens.shape[1], x.dtype)
        if hidden_log is not None:
            hidden_log.append(x)
        for layer in list(self.model.layers)[:self.cfg.num_hidden_layers]:
            x = layer(x, cos, sin, cache, start, log)
            if hidden_log is not None:
                hidden_log.append(x)
        return self.lm_head(self.model.norm(x)), x

    def mtp_forward(self, k, emb, h_prev, log=None):
        """Depth k (1-based): emb = Emb(x_{i+k}), h_prev = h^{k-1}_i over the same T-k positions."""
        m = self.mtp_layers()[k - 1]
        u = m.eh_proj(torch.cat([m.enorm(emb), m.hnorm(h_prev)], dim=-1))
        cos, sin = self.rope(0, u.shape[1], u.dtype)
        h = m(u, cos, sin, log=log)
        return self.lm_head(m.shared_head.norm(h)), h


# ---------------------------------------------------------------- weights

def init_weights(model, seed=0, std=0.02, names=None):
    """normal(0, std) for matrices/embeddings, ones for norms, zero correction bias (in name order)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if names is not None and name not in names:
                continue
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float32) * std)
            else:
                p.fill_(1.0)
        for name, b in model.named_buffers():
            if name.endswith("e_score_correction_bias") and (names is None or name in names):
                b.zero_()


SHARED_MTP_NAMES = ("embed_tokens.weight", "shared_head.head.weight")


def checkpoint_tensors(path):
    """All tensors of a single or sharded (model.safetensors.index.json) checkpoint, as float32,
    with FP8 weights dequantised by their 128x128 `_scale_inv` block scales."""
    if os.path.isdir(path):
        idx = os.path.join(path, "model.safetensors.index.json")
        files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) else ["model.safetensors"]
        files = [os.path.join(path, f) for f in files]
    else:
        files = [path]
    raw = {}
    for f in files:
        raw.update(load_file(f)[0])
    out = {}
    for name, t in raw.items():
        if name.endswith("_scale_inv"):
            continue
        s = raw.get(name + "_scale_inv")                   # HF: <name>.weight_scale_inv
        out[name] = fp8_dequantize(t, s) if s is not None else t.float()
    return out


def load_model(ckpt_dir, config=None, with_mtp=None, dtype=torch.float32):
    """Model from a HF directory (config.json + safetensors). MTP layers are built if the config asks for
    them and (with_mtp None) the checkpoint has them."""
    cfg = config or Config.load(os.path.join(ckpt_dir, "config.json"))
    sd = checkpoint_tensors(ckpt_dir)
    if with_mtp is None:
        with_mtp = cfg.num_nextn_predict_layers > 0 and any(
            n.startswith("model.layers.%d." % cfg.num_hidden_layers) for n in sd)
    model = DeepseekModel(cfg, with_mtp)
    load_state(model, sd)
    return model.to_dtype(dtype)


def load_state(model, sd):
    L = model.cfg.num_hidden_layers
    n_mtp = len(model.mtp_layers())
    keep = {}
    for n, t in sd.items():
        parts = n.split(".")
        if n.startswith("model.layers.") and int(parts[2]) >= L + n_mtp:
            continue                                        # MTP layers not built
        if n.startswith("model.layers.") and int(parts[2]) >= L and n.endswith(SHARED_MTP_NAMES):
            continue                                        # MTP copies of the shared embedding / head
        keep[n] = t
    missing, unexpected = model.load_state_dict(keep, strict=False)
    if model.cfg.tie_word_embeddings:
        missing = [m for m in missing if m != "lm_head.weight"]
    if missing or unexpected:
        raise ValueError("checkpoint mismatch: missing %s, unexpected %s" % (missing[:8], unexpected[:8]))
