"""Write the dense (Qwen2 / Llama) reference cases to tests/data/dense/<case>/.

    /usr/bin/python3 tools/torch_ref/make_dense_cases.py [--out tests/data/dense] [--only CASE ...]

Each case folder holds
  config.json                 as transformers' save_pretrained writes it (sorted keys, indent 2)
  model.safetensors           or model-0000k-of-0000N.safetensors + model.safetensors.index.json
  expected.safetensors        tokens, logits, decode_logits, hidden_states, rope_inv_freq (+ extras, see README)
Weights are random from a fixed seed per case; expected values come from the float64 twin (dense_model.py)
run on the weights as stored (BF16 upcast exactly), stored as F32. Deterministic: two runs give identical files.
Prints a JSON report (sizes, trap effects, float32-vs-float64 figures).
"""
import argparse
import copy
import json
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from dense_model import DenseConfig, DenseModel, llama3_bands, load_dense, rope_parameters  # noqa: E402
from safetensors_io import save_file  # noqa: E402

TRANSFORMERS_VERSION = "4.44.0.dev0"     # what the pinned commit (50c3ba88) writes into config.json


# ---------------------------------------------------------------- config.json as save_pretrained writes it

def qwen2_config(**kw):
    """Every key Qwen2Config (4.44) serialises; values are our model's, not the class defaults."""
    c = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "attention_dropout": 0.0,
         "bos_token_id": 0, "eos_token_id": 1, "hidden_act": "silu", "initializer_range": 0.02,
         "max_window_layers": 28, "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "sliding_window": None,
         "tie_word_embeddings": False, "torch_dtype": "float32", "transformers_version": TRANSFORMERS_VERSION,
         "use_cache": True, "use_sliding_window": False}
    c.update(kw)
    return c


def llama_config(**kw):
    """Every key LlamaConfig (4.44) serialises. A rope_scaling given with "type" gets "rope_type" added, as
    LlamaConfig.__init__ does before save_pretrained writes it."""
    c = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": False,
         "attention_dropout": 0.0, "bos_token_id": 0, "eos_token_id": 1, "hidden_act": "silu",
         "initializer_range": 0.02, "mlp_bias": False, "pretraining_tp": 1, "rms_norm_eps": 1e-06,
         "rope_scaling": None, "rope_theta": 10000.0, "tie_word_embeddings": False, "torch_dtype": "float32",
         "transformers_version": TRANSFORMERS_VERSION, "use_cache": True}
    c.update(kw)
    rs = c["rope_scaling"]
    if rs is not None and "type" in rs:
        rs["rope_type"] = rs["type"]
    return c


def config_text(c):
    return json.dumps(c, indent=2, sort_keys=True) + "\n"


# ---------------------------------------------------------------- cases

CASES = [
    dict(name="qwen2-untied", seed=11, B=2, T=64,
         what="Qwen2, untied lm_head, GQA 8 query / 2 KV heads (groups of 4, head_dim 8), rope_theta 1e4, "
              "the R1-Distill-Qwen sliding-window keys (sliding_window 4096, use_sliding_window false)",
         config=qwen2_config(vocab_size=256, hidden_size=64, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=4096,
                             sliding_window=4096, max_window_layers=2, bos_token_id=0, eos_token_id=1)),
    dict(name="qwen2-bf16-sharded", seed=12, B=2, T=32, dtype="bf16", shards=2,
         what="Qwen2, BF16 weights in 2 shards + index, tied head (no lm_head.weight), rope_theta 1e6, "
              "3 layers, 4 query / 2 KV heads",
         config=qwen2_config(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                             rope_theta=1000000.0, tie_word_embeddings=True, torch_dtype="bfloat16",
                             max_window_layers=3)),
    dict(name="llama3-rope", seed=13, B=2, T=96,
         what="Llama, rope_scaling llama3 (factor 8, low 1, high 4, original 64; head_dim 16 puts frequency 0 in "
              "the kept band, 1-2 in the blended band, 3-7 in the divided band), untied, no biases, GQA 4/2, "
              "rms_norm_eps 1e-5, eos_token_id a list",
         config=llama_config(vocab_size=256, hidden_size=64, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                             rms_norm_eps=1e-05, bos_token_id=0, eos_token_id=[1, 2], rope_theta=10000.0,
                             rope_scaling={"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                           "original_max_position_embeddings": 64, "rope_type": "llama3"})),
    dict(name="llama-bias-mha", seed=14, B=2, T=24,
         what="Llama, attention_bias (q/k/v/o) and mlp_bias (gate/up/down), MHA (4 KV heads = 4 query heads), "
              "tied embeddings",
         config=llama_config(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                             attention_bias=True, mlp_bias=True, tie_word_embeddings=True)),
    dict(name="llama-linear", seed=15, B=2, T=24,
         what="Llama, rope_scaling linear factor 4 (written with both \"type\" and \"rope_type\"), 2 query / "
              "1 KV head (head_dim 16), untied",
         config=llama_config(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=16,
                             rope_scaling={"type": "linear", "factor": 4.0})),
    dict(name="llama-dynamic", seed=16, B=2, T=40,
         what="Llama, rope_scaling dynamic factor 4, max_position_embeddings 16, T 40: the full forward uses the "
              "base for seq_len 40 at every position; decode step t uses the base for seq_len max(t+1, 16)",
         config=llama_config(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=16,
                             rope_scaling={"type": "dynamic", "factor": 4.0})),
    dict(name="llama-yarn", seed=17, B=2, T=32,
         what="Llama, rope_scaling yarn factor 4, beta_slow 0.25 (beta_fast default 32), max_position_embeddings "
              "16, head_dim 16: ramp low 0 / high 3 (frequency 0 kept, 1-2 blended, 3-7 divided), attention "
              "factor 0.1 ln 4 + 1 on cos and sin",
         config=llama_config(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=16,
                             rope_scaling={"rope_type": "yarn", "factor": 4.0, "beta_slow": 0.25})),
    dict(name="llama-longrope", seed=18, B=2, T=24,
         what="Llama, rope_scaling longrope in the Phi-3 layout (top-level original_max_position_embeddings 16, "
              "max_position_embeddings 64 -> factor 4, long_factor used, attention factor sqrt(1 + ln 4 / ln 16)), "
              "head_dim 16, tied",
         config=llama_config(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                             original_max_position_embeddings=16, tie_word_embeddings=True,
                             rope_scaling={"rope_type": "longrope",
                                           "short_factor": [1.0, 1.0, 1.1, 1.3, 1.6, 2.0, 2.5, 3.0],
                                           "long_factor": [1.0, 1.2, 1.6, 2.2, 3.0, 4.0, 5.5, 7.0]})),
]


# ---------------------------------------------------------------- weights

def init_case_weights(model, seed, eps_rows=True):
    """Random weights with attention sharp enough that RoPE, masking and scale mistakes show:
    embedding N(0, 0.5^2) with the last quarter of the rows scaled so that mean(x^2) ~ eps (the first norm
    then depends on eps); q/k N(0, (1.5/sqrt(D))^2) (score std ~2); v/o/MLP/head N(0, 1/fan_in); biases
    N(0, 0.3^2); norm weights U(0.5, 1.5). eps_rows=False leaves the embedding rows unscaled."""
    cfg = model.cfg
    g = torch.Generator().manual_seed(seed)
    D, V = cfg.hidden_size, cfg.vocab_size
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("norm.weight"):
                p.copy_(0.5 + torch.rand(p.shape, generator=g, dtype=torch.float64))
            elif n.endswith(".bias"):
                p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=torch.float64))
            elif n == "model.embed_tokens.weight":
                w = 0.5 * torch.randn(p.shape, generator=g, dtype=torch.float64)
                q = V - V // 4
                s = 2 * math.sqrt(cfg.rms_norm_eps) * (0.5 + 1.5 * torch.rand(V - q, 1, generator=g,
                                                                             dtype=torch.float64))
                if eps_rows:
                    w[q:] *= s
                p.copy_(w)
            elif n.endswith(("q_proj.weight", "k_proj.weight")):
                p.copy_(1.5 / math.sqrt(D) * torch.randn(p.shape, generator=g, dtype=torch.float64))
            else:
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) / math.sqrt(p.shape[1]))


def stored_state(model, bf16):
    """HF names -> tensors as save_pretrained stores them (tied: no lm_head.weight), in module order."""
    sd = {n: t.detach().clone() for n, t in model.state_dict().items()}
    if model.cfg.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    dt = torch.bfloat16 if bf16 else torch.float32
    return {n: t.to(dt).contiguous() for n, t in sd.items()}


def write_weights(folder, sd, shards):
    meta = {"format": "pt"}
    if shards == 1:
        save_file({n: sd[n] for n in sorted(sd)}, os.path.join(folder, "model.safetensors"), meta)
        return ["model.safetensors"]
    # split in module order into `shards` files of about equal byte size (each file's header sorted by name)
    names = list(sd)
    sizes = [sd[n].numel() * sd[n].element_size() for n in names]
    total = sum(sizes)
    parts, cur, acc = [[] for _ in range(shards)], 0, 0
    for n, s in zip(names, sizes):
        if acc >= total * (cur + 1) / shards and cur < shards - 1:
            cur += 1
        parts[cur].append(n)
        acc += s
    files, weight_map = [], {}
    for k, part in enumerate(parts):
        fn = "model-%05d-of-%05d.safetensors" % (k + 1, shards)
        save_file({n: sd[n] for n in sorted(part)}, os.path.join(folder, fn), meta)
        files.append(fn)
        weight_map.update({n: fn for n in part})
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return files + ["model.safetensors.index.json"]


# ---------------------------------------------------------------- expected values

def variant(model, **changes):
    """A float64 copy of the model with one semantic changed (for the trap-effect figures)."""
    m = copy.deepcopy(model)
    if changes.get("eps0"):
        for mod in m.modules():
            if hasattr(mod, "eps"):
                mod.eps = 0.0
    if changes.get("no_rope_scaling"):
        m.cfg = copy.copy(m.cfg)
        m.cfg.rope_type, m.cfg.rope_scaling = "default", None
    if changes.get("no_bias"):
        with torch.no_grad():
            for n, p in m.named_parameters():
                if n.endswith(".bias"):
                    p.zero_()
    return m


def maxdiff(a, b):
    return float((a.double() - b.double()).abs().max())


def make_case(spec, out_root):
    folder = os.path.join(out_root, spec["name"])
    os.makedirs(folder, exist_ok=True)
    for f in os.listdir(folder):                        # stale shards / files from an earlier layout
        os.remove(os.path.join(folder, f))
    cfg_d = spec["config"]
    with open(os.path.join(folder, "config.json"), "w") as f:
        f.write(config_text(cfg_d))
    cfg = DenseConfig(cfg_d)
    gen_model = DenseModel(cfg).to(torch.float64)
    init_case_weights(gen_model, spec["seed"])
    bf16 = spec.get("dtype") == "bf16"
    files = write_weights(folder, stored_state(gen_model, bf16), spec.get("shards", 1))

    # expected values: the float64 twin on the weights read back from the folder
    model = load_dense(folder, dtype=torch.float64)
    B, T, V = spec["B"], spec["T"], cfg.vocab_size
    tokens = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(1000 + spec["seed"]))
    with torch.no_grad():
        logits, hid = model.forward_full(tokens)
        dec = model.decode(tokens)
    inv, att = rope_parameters(cfg, T)
    tensors = {"tokens": tokens.int(), "logits": logits.float(), "decode_logits": dec.float(),
               "hidden_states": torch.stack(hid).float(), "rope_inv_freq": inv.float(),
               "rope_attention_scaling": torch.tensor([att], dtype=torch.float32)}
    if cfg.rope_type == "dynamic":
        tensors["decode_rope_inv_freq"] = torch.stack([rope_parameters(cfg, t + 1)[0] for t in range(T)]).float()

    # figures for the README: how far a float32 run lands, and how much each trap moves the logits
    stats = {"logits_absmax": float(logits.abs().max()), "logits_std": float(logits.std()),
             "hidden_absmax": float(torch.stack(hid).abs().max()),
             "decode_vs_full": maxdiff(dec, logits)}
    m32 = load_dense(folder, dtype=torch.float32)
    with torch.no_grad():
        l32, _ = m32.forward_full(tokens)
        stats["float32_twin_vs_expected"] = {"logits": maxdiff(l32, logits), "decode_logits": maxdiff(m32.decode(tokens), dec)}
        trap = {"eps_dropped": maxdiff(variant(model, eps0=True).forward_full(tokens)[0], logits)}
        if cfg.rope_type != "default":
            trap["rope_scaling_ignored"] = maxdiff(variant(model, no_rope_scaling=True).forward_full(tokens)[0], logits)
        if cfg.qkv_bias or cfg.mlp_bias:
            trap["biases_dropped"] = maxdiff(variant(model, no_bias=True).forward_full(tokens)[0], logits)
        if bf16:
            ref32 = DenseModel(cfg).to(torch.float64)
            ref32.load_state_dict(gen_model.state_dict())
            trap["f32_weights_instead_of_bf16"] = maxdiff(ref32.forward_full(tokens)[0], logits)
    stats["trap_effect_on_logits"] = trap
    n_eps_rows = int((tokens >= V - V // 4).sum())
    stats["tokens_in_eps_sensitive_rows"] = n_eps_rows
    if cfg.rope_type == "llama3":
        stats["llama3_bands"] = [[round(w, 4), b] for w, b in llama3_bands(cfg)]

    meta = {"source": "tools/torch_ref/make_dense_cases.py: dense twin (dense_model.py) in float64, stored F32",
            "reference": "semantics of huggingface/transformers@50c3ba889a7f9c30e78211e32dffe38e08ecc752 "
                         "(eager attention)",
            "case": spec["what"],
            "logits": "full causal forward from position 0, every position",
            "decode_logits": "one token per step from position 0 through the KV cache (rotated keys cached)",
            "hidden_states": "[n_layers+1,B,T,hidden]: embedding output, then the residual stream after each "
                             "decoder layer (before the final norm)",
            "rope_inv_freq": "inverse frequencies of the full forward (after rope scaling; dynamic: for seq_len T)",
            "rope_attention_scaling": "factor on cos and sin (yarn / longrope; 1 otherwise)",
            "stats": json.dumps(stats)}
    if "decode_rope_inv_freq" in tensors:
        meta["decode_rope_inv_freq"] = "[T, head_dim/2]: row t = inverse frequencies of decode step t " \
                                       "(seq_len t+1; rows below max_position_embeddings are the unscaled ones)"
    save_file(tensors, os.path.join(folder, "expected.safetensors"), meta)
    files = ["config.json"] + files + ["expected.safetensors"]
    sizes = {f: os.path.getsize(os.path.join(folder, f)) for f in files}
    return {"case": spec["name"], "bytes": sum(sizes.values()), "files": sizes, "B": B, "T": T, **stats}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "../../tests/data/dense"))
    ap.add_argument("--only", nargs="*")
    a = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    report = [make_case(s, a.out) for s in CASES if not a.only or s["name"] in a.only]
    print(json.dumps(report, indent=1))
    print("total bytes", sum(r["bytes"] for r in report))


if __name__ == "__main__":
    main()
