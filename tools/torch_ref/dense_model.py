"""Dense Qwen2 / Llama decoder (Hugging Face `Qwen2ForCausalLM`, `LlamaForCausalLM`) in PyTorch.

The semantics follow transformers at the v4.44 branch point (commit 50c3ba88), eager attention; see README.md
("Dense twin") for every rule and the RoPE formulas. Module names mirror the checkpoint names, so `state_dict()`
keys are the HF tensor names (`model.layers.N.self_attn.q_proj.weight`, ...). With a tied head there is no
`lm_head` module: the head is `model.embed_tokens.weight`.

    cfg = DenseConfig.load("dir/config.json")
    model = load_dense(dir, dtype=torch.float64)           # single or sharded safetensors, F32/BF16/F16
    logits, hidden = model.forward_full(tokens)             # [B, T, V], list of L+1 [B, T, D]
    cache = model.new_cache(); step = model.forward(tokens[:, t:t+1], cache=cache, start=t)
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from safetensors_io import load_file

ARCHS = {"Qwen2ForCausalLM": "qwen2", "LlamaForCausalLM": "llama"}


class DenseConfig:
    """The fields of a HF Qwen2 / Llama config.json the model uses, with the pinned transformers' defaults.

    honor_head_dim=False (default) is the pinned behaviour: neither Qwen2Config nor LlamaConfig reads a
    `head_dim` key (head_dim = hidden_size // num_attention_heads, which must divide exactly); a config whose
    `head_dim` differs is rejected. honor_head_dim=True follows later transformers (>= 4.45 for Llama)."""

    def __init__(self, d, honor_head_dim=False):
        self.raw = dict(d)
        g = d.get
        self.arch = (g("architectures") or [None])[0]
        mt = g("model_type")
        if self.arch not in ARCHS and mt in ("qwen2", "llama"):
            self.arch = {"qwen2": "Qwen2ForCausalLM", "llama": "LlamaForCausalLM"}[mt]
        if self.arch not in ARCHS:
            raise ValueError("unsupported architecture %r" % (self.arch,))
        self.family = ARCHS[self.arch]
        qwen = self.family == "qwen2"
        self.vocab_size = d["vocab_size"]
        self.hidden_size = d["hidden_size"]
        self.intermediate_size = d["intermediate_size"]
        self.num_hidden_layers = d["num_hidden_layers"]
        self.num_heads = d["num_attention_heads"]
        self.num_kv_heads = g("num_key_value_heads") or self.num_heads
        if self.num_heads % self.num_kv_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        default_hd = self.hidden_size // self.num_heads
        hd = g("head_dim")
        if honor_head_dim and hd:
            self.head_dim = hd
        else:
            if default_hd * self.num_heads != self.hidden_size:
                raise ValueError("hidden_size must be divisible by num_attention_heads")
            if hd is not None and hd != default_hd:
                raise ValueError("head_dim %d != hidden_size // num_attention_heads = %d: the pinned transformers "
                                 "ignores head_dim (pass honor_head_dim=True for later versions)" % (hd, default_hd))
            self.head_dim = default_hd
        self.rms_norm_eps = float(g("rms_norm_eps", 1e-6))
        self.rope_theta = float(g("rope_theta", 10000.0))
        self.max_position_embeddings = g("max_position_embeddings", 32768 if qwen else 2048)
        self.tie_word_embeddings = bool(g("tie_word_embeddings", False))
        # Qwen2 (4.44): q/k/v always biased, o_proj never; MLP never. Llama: attention_bias on q/k/v/o, mlp_bias on
        # gate/up/down.
        self.qkv_bias = True if qwen else bool(g("attention_bias", False))
        self.o_bias = False if qwen else bool(g("attention_bias", False))
        self.mlp_bias = False if qwen else bool(g("mlp_bias", False))
        if g("hidden_act", "silu") != "silu":
            raise ValueError("only hidden_act silu is supported")
        if qwen and g("use_sliding_window", False):
            raise NotImplementedError("use_sliding_window: true is not modelled (eager attention here is full causal)")
        if float(g("partial_rotary_factor", 1.0)) != 1.0:
            raise NotImplementedError("partial_rotary_factor")
        # pretraining_tp (Llama) only splits the matmuls into slices and sums them: same values, ignored here.
        self.pretraining_tp = g("pretraining_tp", 1)
        # Qwen2 at the pinned version has no rope_scaling: its rotary embedding is always the default one.
        rs = g("rope_scaling") if not qwen else None
        self.rope_scaling = dict(rs) if rs else None
        self.rope_type = "default"
        if self.rope_scaling is not None:
            self.rope_type = self.rope_scaling.get("rope_type", self.rope_scaling.get("type", "default"))
            if self.rope_type not in ROPE_TYPES:
                raise ValueError("unsupported rope_scaling type %r" % self.rope_type)
        # top-level key some (Phi-3 style) configs carry; only longrope reads it
        self.original_max_position_embeddings = g("original_max_position_embeddings")

    @staticmethod
    def load(path, **kw):
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        with open(path) as f:
            return DenseConfig(json.load(f), **kw)


# ---------------------------------------------------------------- RoPE

def _base_inv_freq(base, d):
    """inv_freq_i = base^(-2i/d), i = 0 .. d/2-1 (float64)."""
    return 1.0 / base ** (torch.arange(0, d, 2, dtype=torch.float64) / d)


def rope_parameters(cfg, seq_len=None):
    """-> (inv_freq [head_dim/2] float64, attention_scaling) as the pinned transformers computes them.

    seq_len only matters for `dynamic`: the largest position in the current forward + 1."""
    d, base, rs = cfg.head_dim, cfg.rope_theta, cfg.rope_scaling
    t = cfg.rope_type
    if t == "default":
        return _base_inv_freq(base, d), 1.0
    factor = rs.get("factor")
    if t == "linear":
        return _base_inv_freq(base, d) / factor, 1.0
    if t == "dynamic":
        m = cfg.max_position_embeddings
        n = seq_len if seq_len is not None and seq_len > m else m
        base = base * ((factor * n / m) - (factor - 1)) ** (d / (d - 2))
        return _base_inv_freq(base, d), 1.0
    if t == "yarn":
        m = cfg.max_position_embeddings            # (4.44 does not read rope_scaling.original_max_position_embeddings)
        att = rs.get("attention_factor")
        if att is None:
            att = 0.1 * math.log(factor) + 1.0
        beta_fast = rs.get("beta_fast") or 32
        beta_slow = rs.get("beta_slow") or 1

        def corr_dim(rot):                          # dimension whose wavelength makes `rot` turns in m positions
            return d * math.log(m / (rot * 2 * math.pi)) / (2 * math.log(base))

        low = max(math.floor(corr_dim(beta_fast)), 0)
        high = min(math.ceil(corr_dim(beta_slow)), d - 1)
        if low == high:
            high += 0.001
        ramp = ((torch.arange(d // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
        pos = base ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
        extrap, interp = 1.0 / pos, 1.0 / (factor * pos)
        keep = 1 - ramp                             # share of the unscaled frequency
        return interp * (1 - keep) + extrap * keep, att
    if t == "longrope":
        att = rs.get("attention_factor")
        if cfg.original_max_position_embeddings is not None:          # top-level key (Phi-3 layout)
            m = cfg.original_max_position_embeddings
            expanded = cfg.max_position_embeddings
            factor = expanded / m
        else:
            m = cfg.max_position_embeddings
            expanded = m * factor
        if att is None:
            att = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(m))
        ext = rs["long_factor"] if expanded > m else rs["short_factor"]
        ext = torch.tensor(ext, dtype=torch.float64)
        return 1.0 / (ext * base ** (torch.arange(0, d, 2, dtype=torch.float64) / d)), att
    if t == "llama3":
        inv = _base_inv_freq(base, d)
        factor = rs["factor"]
        lo, hi = rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        lo_wl, hi_wl = old / lo, old / hi
        wl = 2 * math.pi / inv
        out = torch.where(wl > lo_wl, inv / factor, inv)
        smooth = (old / wl - lo) / (hi - lo)
        mid = (wl >= hi_wl) & (wl <= lo_wl)
        out = torch.where(mid, (1 - smooth) * out / factor + smooth * out, out)
        return out, 1.0
    raise ValueError(t)


ROPE_TYPES = ("default", "linear", "dynamic", "yarn", "longrope", "llama3")


def llama3_bands(cfg):
    """For a llama3 config: per frequency index, its wavelength and band ('high' kept, 'medium' blended,
    'low' divided by factor)."""
    rs = cfg.rope_scaling
    inv = _base_inv_freq(cfg.rope_theta, cfg.head_dim)
    old = rs["original_max_position_embeddings"]
    out = []
    for w in (2 * math.pi / inv).tolist():
        band = "high" if w < old / rs["high_freq_factor"] else "low" if w > old / rs["low_freq_factor"] else "medium"
        out.append((w, band))
    return out


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope_cos_sin(cfg, positions, seq_len, dtype):
    """cos, sin [n, head_dim] for the given absolute positions (rotate-half layout: the d/2 angles twice),
    already times the attention scaling (yarn / longrope)."""
    inv, att = rope_parameters(cfg, seq_len)
    ang = positions.to(torch.float64)[:, None] * inv[None, :]
    emb = torch.cat((ang, ang), dim=-1)
    return (emb.cos() * att).to(dtype), (emb.sin() * att).to(dtype)


# ---------------------------------------------------------------- modules

class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        xf = x if x.dtype == torch.float64 else x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * y.to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        D, H, K, d = cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.q_proj = nn.Linear(D, H * d, bias=cfg.qkv_bias)
        self.k_proj = nn.Linear(D, K * d, bias=cfg.qkv_bias)
        self.v_proj = nn.Linear(D, K * d, bias=cfg.qkv_bias)
        self.o_proj = nn.Linear(H * d, D, bias=cfg.o_bias)

    def forward(self, x, cos, sin, cache=None, layer=0, start=0):
        cfg = self.cfg
        B, T, _ = x.shape
        H, K, d = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        q = self.q_proj(x).view(B, T, H, d).transpose(1, 2)           # [B, H, T, d]
        k = self.k_proj(x).view(B, T, K, d).transpose(1, 2)
        v = self.v_proj(x).view(B, T, K, d).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:                                          # rotated keys are cached
            if layer < len(cache["k"]):
                k = torch.cat([cache["k"][layer], k], dim=2)
                v = torch.cat([cache["v"][layer], v], dim=2)
                cache["k"][layer], cache["v"][layer] = k, v
            else:
                cache["k"].append(k)
                cache["v"].append(v)
        S = k.shape[2]
        g = H // K                                                     # query head h reads kv head h // g
        k = k.repeat_interleave(g, dim=1)
        v = v.repeat_interleave(g, dim=1)
        s = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(d)
        qpos = torch.arange(start, start + T)[:, None]
        kpos = torch.arange(S)[None, :] + (start + T - S)
        s = s.masked_fill(kpos > qpos, float("-inf"))
        sf = s if s.dtype == torch.float64 else s.float()
        p = F.softmax(sf, dim=-1).to(q.dtype)
        o = torch.matmul(p, v).transpose(1, 2).reshape(B, T, H * d)
        return self.o_proj(o)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D, I, b = cfg.hidden_size, cfg.intermediate_size, cfg.mlp_bias
        self.gate_proj = nn.Linear(D, I, bias=b)
        self.up_proj = nn.Linear(D, I, bias=b)
        self.down_proj = nn.Linear(I, D, bias=b)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg, i):
        super().__init__()
        self.i = i
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, h, cos, sin, cache=None, start=0):
        h = h + self.self_attn(self.input_layernorm(h), cos, sin, cache, self.i, start)
        return h + self.mlp(self.post_attention_layernorm(h))


class Backbone(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList([DecoderLayer(cfg, i) for i in range(cfg.num_hidden_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class DenseModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = Backbone(cfg)
        if not cfg.tie_word_embeddings:
            self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)

    @property
    def dtype(self):
        return self.model.embed_tokens.weight.dtype

    def head_weight(self):
        return self.model.embed_tokens.weight if self.cfg.tie_word_embeddings else self.lm_head.weight

    def new_cache(self):
        return {"k": [], "v": []}

    def forward(self, tokens, cache=None, start=0, hidden_log=None):
        """tokens [B, T] at positions start .. start+T-1 -> logits [B, T, V] (float32, or float64 in a float64
        model). The RoPE table is computed for this call with seq_len = start + T (matters for `dynamic` only).
        hidden_log (list) receives the embedding output and the residual after each layer (before the final
        norm)."""
        B, T = tokens.shape
        cos, sin = rope_cos_sin(self.cfg, torch.arange(start, start + T), start + T, self.dtype)
        h = self.model.embed_tokens(tokens)
        if hidden_log is not None:
            hidden_log.append(h)
        for layer in self.model.layers:
            h = layer(h, cos, sin, cache, start)
            if hidden_log is not None:
                hidden_log.append(h)
        logits = F.linear(self.model.norm(h), self.head_weight())
        return logits if logits.dtype == torch.float64 else logits.float()

    def forward_full(self, tokens):
        hid = []
        logits = self.forward(tokens, hidden_log=hid)
        return logits, hid

    def decode(self, tokens):
        """Feed tokens one per step from position 0 through the KV cache -> logits [B, T, V]."""
        cache = self.new_cache()
        return torch.cat([self.forward(tokens[:, t:t + 1], cache=cache, start=t) for t in range(tokens.shape[1])], 1)


# ---------------------------------------------------------------- checkpoints

def weight_files(ckpt_dir):
    idx = os.path.join(ckpt_dir, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            return [os.path.join(ckpt_dir, n) for n in sorted(set(json.load(f)["weight_map"].values()))]
    return [os.path.join(ckpt_dir, "model.safetensors")]


def checkpoint_tensors(ckpt_dir):
    """All tensors of a single or sharded checkpoint, in their stored dtype (F32 / BF16 / F16)."""
    out = {}
    for f in weight_files(ckpt_dir):
        out.update(load_file(f)[0])
    return out


def load_state(model, sd):
    """Load HF-named tensors (any float dtype; converted exactly: BF16/F16 -> F32 -> F64). A tied model ignores
    lm_head.weight (transformers re-ties the head to the embedding after loading)."""
    cfg = model.cfg
    own = model.state_dict()
    sd = dict(sd)
    if cfg.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    missing = [n for n in own if n not in sd]
    extra = [n for n in sd if n not in own and not n.endswith("rotary_emb.inv_freq")]
    if missing or extra:
        raise ValueError("checkpoint mismatch: missing %s, unexpected %s" % (missing, extra))
    with torch.no_grad():
        for n, p in own.items():
            t = sd[n]
            if tuple(t.shape) != tuple(p.shape):
                raise ValueError("%s: shape %s, expected %s" % (n, tuple(t.shape), tuple(p.shape)))
            p.copy_(t.float().to(p.dtype))


def load_dense(ckpt_dir, dtype=torch.float64, config=None, **kw):
    cfg = config or DenseConfig.load(ckpt_dir, **kw)
    model = DenseModel(cfg).to(dtype)
    load_state(model, checkpoint_tensors(ckpt_dir))
    return model.eval()
