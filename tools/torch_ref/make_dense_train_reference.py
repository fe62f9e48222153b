"""Write tests/data/dense_train_reference_qwen2.safetensors and tests/data/dense_train_reference_llama.safetensors.

    /usr/bin/python3 tools/torch_ref/make_dense_train_reference.py [--out tests/data]

For a small Qwen2 (tied head, q/k/v biases) and a small Llama (untied head, llama3 RoPE): one batch B=2, T=16
of inputs and targets (-1 = not counted), the mean next-token cross-entropy over the counted targets, and its
gradient for every parameter, computed in float64 from the float32 start weights and stored as F32; then
3 AdamW steps (train.py's optimizer: torch AdamW, decay on tensors with >= 2 dims, global-norm clipping).
Tensor names follow make_train_reference.py; README.md documents every tensor. Deterministic.
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from dense_model import DenseConfig, DenseModel  # noqa: E402
from make_dense_cases import init_case_weights, llama_config, qwen2_config  # noqa: E402
from safetensors_io import save_file  # noqa: E402
from train import make_optimizer  # noqa: E402

LR, WD, BETAS, EPS, MAX_NORM = 1e-3, 0.1, (0.9, 0.95), 1e-8, 1.0
B, T, STEPS = 2, 16, 3

MODELS = {
    "qwen2": dict(seed=21, config=qwen2_config(
        vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True, max_window_layers=2)),
    "llama": dict(seed=22, config=llama_config(
        vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=512, rms_norm_eps=1e-05, eos_token_id=[1, 2],
        rope_scaling={"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 64, "rope_type": "llama3"})),
}


def batch(step, vocab, seed):
    """inputs [B, T], targets [B, T]: targets[:, t] = inputs[:, t+1] (the last one is the next drawn token);
    -1 (not counted) on a 'prompt' (row 0, first 4) and 'padding' (row 1, last 3) in every step's batch."""
    g = torch.Generator().manual_seed(100 * seed + step)
    tok = torch.randint(0, vocab, (B, T + 1), generator=g)
    x, y = tok[:, :T].clone(), tok[:, 1:].clone()
    y[0, :4] = -1
    y[1, T - 3:] = -1
    return x, y


def loss_fn(model, x, y):
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-1), logits


def f32(t):
    return t.detach().float().contiguous()


def make(name, out_dir):
    spec = MODELS[name]
    cfg = DenseConfig(spec["config"])
    model = DenseModel(cfg).to(torch.float64)
    init_case_weights(model, spec["seed"], eps_rows=False)   # no eps rows: they would scale the gradient 100x
    with torch.no_grad():                                  # start weights are float32 values
        for p in model.parameters():
            p.copy_(p.float().double())
    start = {n: f32(p) for n, p in model.named_parameters()}
    x, y = batch(0, cfg.vocab_size, spec["seed"])
    loss, logits = loss_fn(model, x, y)
    model.zero_grad(set_to_none=True)
    loss.backward()
    tensors = {"inputs": x.int(), "targets": y.int(), "count": torch.tensor([int((y >= 0).sum())], dtype=torch.int32),
               "loss_main": torch.tensor([loss.item()], dtype=torch.float32),
               "loss_total": torch.tensor([loss.item()], dtype=torch.float32),
               "logits": f32(logits)}
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    for n, g in grads.items():
        tensors["grad." + n] = f32(g)

    opt = make_optimizer(model, LR, WD, BETAS, EPS)
    sx, sy, sl, sn = [], [], [], []
    for s in range(STEPS):
        bx, by = (x, y) if s == 0 else batch(s, cfg.vocab_size, spec["seed"])
        opt.zero_grad(set_to_none=True)
        l, _ = loss_fn(model, bx, by)
        l.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM)
        opt.step()
        sx.append(bx)
        sy.append(by)
        sl.append(l.item())
        sn.append(norm.item())
    tensors["steps.inputs"] = torch.stack(sx).int()
    tensors["steps.targets"] = torch.stack(sy).int()
    tensors["steps.loss_total"] = torch.tensor(sl, dtype=torch.float32)
    tensors["steps.loss_main"] = torch.tensor(sl, dtype=torch.float32)
    tensors["steps.grad_norm"] = torch.tensor(sn, dtype=torch.float32)
    for n, p in model.named_parameters():
        tensors["final." + n] = f32(p)
    for n, t in start.items():
        tensors["param." + n] = t
    hyper = {"lr": LR, "weight_decay": WD, "betas": list(BETAS), "eps": EPS, "max_grad_norm": MAX_NORM,
             "B": B, "T": T, "steps": STEPS, "ignore_index": -1,
             "weight_decay_on": "tensors with >= 2 dims (projections, embedding, lm_head); not norms or biases"}
    meta = {"config": json.dumps(spec["config"], sort_keys=True), "hyper": json.dumps(hyper),
            "source": "tools/torch_ref/make_dense_train_reference.py (dense twin, float64 from float32 start "
                      "weights, stored F32)"}
    path = os.path.join(out_dir, "dense_train_reference_%s.safetensors" % name)
    save_file(tensors, path, meta)

    # how far the same computation in float32 lands
    m32 = DenseModel(cfg).float()
    m32.load_state_dict({n: t for n, t in start.items()}, strict=False)
    l32, _ = loss_fn(m32, x, y)
    l32.backward()
    worst = max(float((p.grad.double() - grads[n]).abs().max() / grads[n].abs().max().clamp(min=1e-30))
                for n, p in m32.named_parameters())
    opt32 = make_optimizer(m32, LR, WD, BETAS, EPS)
    l32s = []
    for s in range(STEPS):
        opt32.zero_grad(set_to_none=True)
        l, _ = loss_fn(m32, sx[s], sy[s])
        l.backward()
        torch.nn.utils.clip_grad_norm_(m32.parameters(), MAX_NORM)
        opt32.step()
        l32s.append(l.item())
    final_diff = max(float((p.double() - tensors["final." + n].double()).abs().max()) for n, p in m32.named_parameters())
    return {"file": os.path.basename(path), "bytes": os.path.getsize(path), "params": len(start),
            "numel": sum(t.numel() for t in start.values()), "count": int((y >= 0).sum()), "loss": loss.item(),
            "steps_loss": sl, "steps_grad_norm": sn,
            "float32_vs_reference": {"loss": abs(l32.item() - loss.item()), "grad_max_rel_to_tensor_absmax": worst,
                                     "steps_loss": max(abs(a - b) for a, b in zip(l32s, sl)),
                                     "final_params_max_abs": final_diff}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "../../tests/data"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    print(json.dumps([make(n, a.out) for n in MODELS], indent=1))


if __name__ == "__main__":
    main()
