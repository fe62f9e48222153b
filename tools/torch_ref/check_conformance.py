"""Check the twin against a conformance case (default ../shared/conformance/v3-tiny) in float32.

    /usr/bin/python3 tools/torch_ref/check_conformance.py [--case DIR]

Prints max |diff| for logits, decode logits, hidden states, router weights and rope_inv_freq, and whether the
router picked the same experts; exits 1 if logits/decode_logits exceed 1e-4 or any expert differs.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import load_model, rope_inv_freq, softmax_scale  # noqa: E402
from safetensors_io import load_file  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", default=os.path.join(HERE, "../../../shared/conformance/v3-tiny"))
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    torch.set_num_threads(1)
    exp, _ = load_file(os.path.join(a.case, "expected.safetensors"))
    model = load_model(a.case).eval()
    cfg = model.cfg
    tokens = exp["tokens"].long()
    B, T = tokens.shape
    res = {}
    with torch.no_grad():
        log, hid = [], []
        logits, _ = model(tokens, log=log, hidden_log=hid)
        res["logits"] = (logits - exp["logits"]).abs().max().item()
        res["hidden_states"] = (torch.stack(hid) - exp["hidden_states"]).abs().max().item()
        same, wdiff, minm = True, 0.0, {}
        for r in log:
            L = r["layer"]
            got, ref = r["idx"].sort(-1).values, exp["router_indices.%d" % L].long().sort(-1).values
            same &= bool((got == ref).all())
            # compare weights in the expected (ranked) order
            order = r["idx"].argsort(-1)
            w = r["weights"].gather(-1, order)
            wr = exp["router_weights.%d" % L].gather(-1, exp["router_indices.%d" % L].long().argsort(-1))
            wdiff = max(wdiff, (w - wr).abs().max().item())
            for k, v in r["margins"].items():
                minm[k] = min(minm.get(k, 1e9), v.min().item())
        res["router_weights"] = wdiff
        res["router_indices_identical"] = same
        res["min_margins"] = minm
        cache = model.new_cache(B, T)
        dec = torch.cat([model(tokens[:, t:t + 1], cache=cache, start=t)[0] for t in range(T)], dim=1)
        res["decode_logits"] = (dec - exp["decode_logits"]).abs().max().item()
        res["rope_inv_freq"] = (rope_inv_freq(cfg).float() - exp["rope_inv_freq"]).abs().max().item()
        res["softmax_scale"] = softmax_scale(cfg)
    for k, v in res.items():
        print("%-26s %s" % (k, v))
    ok = res["logits"] < a.tol and res["decode_logits"] < a.tol and res["router_indices_identical"]
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
