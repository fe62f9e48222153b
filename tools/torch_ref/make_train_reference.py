"""Write tests/data/train_reference.safetensors and tests/data/train_reference_softmax.safetensors.

    /usr/bin/python3 tools/torch_ref/make_train_reference.py [--shared ../shared] [--out tests/data]

Model: v3-tiny + one MTP module (init normal(0, 0.02) / ones, seed MTP_SEED). The reference is computed in
float64 from the float32 start weights and stored as F32; the correction bias is kept and updated in float32.
Token batches are drawn (seeded) one step at a time and redrawn until every routing decision of that step
has a margin > MIN_MARGIN (see README.md). Tensor names are documented in README.md.
"""
import argparse
import copy
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from model import Config, DeepseekModel, Gate, checkpoint_tensors, init_weights  # noqa: E402
from safetensors_io import save_file  # noqa: E402
from train import backward, compute_loss, make_optimizer, train_step, expert_loads  # noqa: E402

ALPHA, LAM, GAMMA, LR, WD, MAX_NORM = 0.01, 0.3, 0.001, 1e-3, 0.1, 1.0
B, T, STEPS = 2, 32, 10
MTP_SEED = 1234
MIN_MARGIN = 1e-4
FINAL = ["model.embed_tokens.weight", "model.layers.0.self_attn.q_a_layernorm.weight",
         "model.layers.1.mlp.gate.weight", "model.layers.2.self_attn.kv_b_proj.weight",
         "model.layers.2.mlp.experts.3.down_proj.weight", "model.layers.3.eh_proj.weight",
         "model.layers.3.mlp.experts.5.gate_proj.weight", "model.layers.3.enorm.weight", "model.norm.weight"]


def variant_config(base, softmax):
    d = dict(base)
    d["num_nextn_predict_layers"] = 1
    if softmax:
        d.update(scoring_func="softmax", topk_method="group_limited_greedy", q_lora_rank=None)
    return d


def build(shared, softmax):
    """-> (model in float32 with the start weights, config dict)."""
    tiny = os.path.join(shared, "conformance/v3-tiny")
    cfg_d = variant_config(json.load(open(os.path.join(tiny, "config.json"))), softmax)
    model = DeepseekModel(Config(cfg_d), with_mtp=True)
    base = checkpoint_tensors(tiny)
    own = model.state_dict()
    fresh = [n for n in own if n not in base]            # MTP module (and q_proj for the softmax variant)
    init_weights(model, seed=MTP_SEED, names=set(fresh))
    model.load_state_dict({n: t for n, t in base.items() if n in own}, strict=False)
    return model, cfg_d


def margins_of(log):
    """min over tokens and layers of (k-th - (k+1)-th selection score) and (last kept - first dropped group)."""
    out = {}
    for r in log:
        for k, v in r["margins"].items():
            out[k] = min(out.get(k, float("inf")), v.min().item())
    return out


def draw_batch(model, step, vocab, first=0):
    """Seeded batch for `step`, redrawn (seed 1000*step + attempt) until all routing margins > MIN_MARGIN."""
    for attempt in range(first, 1000):
        g = torch.Generator().manual_seed(1000 * step + attempt)
        tok = torch.randint(0, vocab, (B, T + 1), generator=g)
        with torch.no_grad():
            _, log = compute_loss(model, tok, ALPHA, LAM)
        m = margins_of(log)
        if min(m.values()) > MIN_MARGIN:
            return tok, m, attempt
    raise RuntimeError("no batch with routing margins > %g" % MIN_MARGIN)


def step0(model, tok):
    model.zero_grad(set_to_none=True)
    losses, log = compute_loss(model, tok, ALPHA, LAM)
    backward(model, losses["total"])
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    return {k: v.item() for k, v in losses.items()}, grads, log


def f32(x):
    return torch.tensor([x], dtype=torch.float32) if isinstance(x, float) else x.detach().float().contiguous()


def make(shared, out_path, softmax, report, omit_base=False):
    model, cfg_d = build(shared, softmax)
    start = {n: t.detach().clone().float() for n, t in model.state_dict().items()}
    model.to_dtype(torch.float64)
    V = cfg_d["vocab_size"]
    tensors = {}
    tok, m0, att0 = draw_batch(model, 0, V)
    losses, grads, log = step0(model, tok)
    tensors["tokens"] = tok.int()
    for r in log:                                           # step-0 routing, for debugging
        tensors["router_indices.%d" % r["layer"]] = r["idx"].int()
    for k in ("main", "mtp", "aux", "total"):
        tensors["loss_" + k] = f32(losses[k])
    for n, g in grads.items():
        tensors["grad." + n] = f32(g)
    rep = {"variant": "softmax" if softmax else "sigmoid", "losses": losses,
           "steps": [{"step": 0, "attempt": att0, **m0}]}

    if not softmax:
        opt = make_optimizer(model, LR, WD)
        toks, hist = [], {k: [] for k in ("total", "main", "mtp", "aux", "grad_norm")}
        zero_sign, routing = 0, []
        for s in range(STEPS):
            if s == 0:
                t, m, att = tok, m0, att0
            else:
                t, m, att = draw_batch(model, s, V)
            if s == STEPS - 1:
                # the last batch must also route without near-ties under the final weights and bias
                snap = copy.deepcopy((model.state_dict(), opt.state_dict()))
                while True:
                    l, norm, log = train_step(model, opt, t, ALPHA, LAM, GAMMA, MAX_NORM)
                    with torch.no_grad():
                        post = margins_of(compute_loss(model, t, ALPHA, LAM)[1])
                    if min(post.values()) > MIN_MARGIN:
                        break
                    model.load_state_dict(snap[0])
                    opt.load_state_dict(copy.deepcopy(snap[1]))
                    t, m, att = draw_batch(model, s, V, att + 1)
                rep["after_final_update"] = post
            else:
                l, norm, log = train_step(model, opt, t, ALPHA, LAM, GAMMA, MAX_NORM)
            if s:
                rep["steps"].append({"step": s, "attempt": att, **m})
            assert margins_of(log) == m
            routing.append([r["idx"].clone() for r in log])
            loads = expert_loads(log, model.cfg)
            zero_sign += sum(int((ld.sum().double() / ld.numel() == ld.double()).sum()) for ld in loads.values())
            toks.append(t)
            for k in ("total", "main", "mtp", "aux"):
                hist[k].append(l[k])
            hist["grad_norm"].append(norm)
        rep["zero_sign_bias_updates"] = zero_sign
        tensors["steps.tokens"] = torch.stack(toks).int()
        for k in ("total", "main", "mtp", "aux"):
            tensors["steps.loss_" + k] = torch.tensor(hist[k], dtype=torch.float32)
        tensors["steps.grad_norm"] = torch.tensor(hist["grad_norm"], dtype=torch.float32)
        for m in model.model.layers:
            gate = getattr(m.mlp, "gate", None)
            if isinstance(gate, Gate) and gate.e_score_correction_bias is not None:
                tensors["final_bias.%d" % m.i] = gate.e_score_correction_bias.detach().float().clone()
        sd = model.state_dict()
        for n in FINAL:
            tensors["final." + n] = f32(sd[n])
    base = checkpoint_tensors(os.path.join(shared, "conformance/v3-tiny")) if omit_base else {}
    for n, t in start.items():
        if not (n in base and torch.equal(base[n], t)):
            tensors["param." + n] = t
    meta = {"config": json.dumps(cfg_d),
            "hyper": json.dumps({"alpha": ALPHA, "lambda": LAM, "gamma": GAMMA, "lr": LR, "weight_decay": WD,
                                 "betas": [0.9, 0.95], "eps": 1e-8, "max_grad_norm": MAX_NORM, "B": B, "T": T,
                                 "steps": 0 if softmax else STEPS}),
            "source": "tools/torch_ref/make_train_reference.py (PyTorch twin, computed in float64, stored F32)",
            "margins": json.dumps(rep["steps"])}
    save_file(tensors, out_path, meta)
    rep["bytes"] = os.path.getsize(out_path)
    report.append(rep)
    return start, cfg_d, tensors, (routing if not softmax else None)


def f32_check(start, cfg_d, tensors, routing):
    """Same computation in float32: how far a float32 implementation lands from the float64 reference."""
    model = DeepseekModel(Config(cfg_d), with_mtp=True)
    model.load_state_dict(start)
    tok = tensors["tokens"].long()
    losses, grads, _ = step0(model, tok)
    out = {"loss_total": abs(losses["total"] - tensors["loss_total"].item())}
    worst = 0.0
    for n, g in grads.items():
        r = tensors["grad." + n]
        worst = max(worst, ((g - r).abs().max() / r.abs().max().clamp(min=1e-30)).item())
    out["grad_max_rel_to_tensor_absmax"] = worst
    if routing is not None:
        opt = make_optimizer(model, LR, WD)
        steps = tensors["steps.tokens"].long()
        lt, same = [], True
        for s in range(STEPS):
            l, _, log = train_step(model, opt, steps[s], ALPHA, LAM, GAMMA, MAX_NORM)
            lt.append(l["total"])
            same &= all(torch.equal(r["idx"], ref) for r, ref in zip(log, routing[s]))
        out["routing_identical_all_steps"] = same
        out["steps_loss_total"] = (torch.tensor(lt) - tensors["steps.loss_total"]).abs().max().item()
        sd = model.state_dict()
        out["final_params_max_abs"] = max((sd[n] - tensors["final." + n]).abs().max().item() for n in FINAL)
        out["final_bias_identical"] = all(torch.equal(sd["model.layers.%s.mlp.gate.e_score_correction_bias" % k[11:]],
                                                      v) for k, v in tensors.items() if k.startswith("final_bias."))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(HERE, "../../../shared"))
    ap.add_argument("--out", default=os.path.join(HERE, "../../tests/data"))
    ap.add_argument("--omit-base-params", action="store_true",
                    help="leave out param.* tensors identical to v3-tiny's model.safetensors (smaller files)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    report = []
    for softmax, name in ((False, "train_reference.safetensors"), (True, "train_reference_softmax.safetensors")):
        start, cfg_d, tensors, routing = make(a.shared, os.path.join(a.out, name), softmax, report, a.omit_base_params)
        report[-1]["float32_vs_reference"] = f32_check(start, cfg_d, tensors, routing)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
