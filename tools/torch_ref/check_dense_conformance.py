"""Check the dense twin against a case folder (default ../shared/conformance/qwen2-tiny), in float32 and float64.

    /usr/bin/python3 tools/torch_ref/check_dense_conformance.py [--case DIR ...] [--tol 1e-4]

Prints max |diff| of logits, decode_logits, hidden_states and rope_inv_freq against the case's
expected.safetensors; exits 1 if logits or decode_logits exceed --tol in either precision. Also works on the
generated tests/data/dense/<case> folders (the `dynamic` case's decode uses its per-step frequencies).
"""
import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from dense_model import load_dense, rope_parameters  # noqa: E402
from safetensors_io import load_file  # noqa: E402


def check(case, dtype):
    exp, _ = load_file(os.path.join(case, "expected.safetensors"))
    model = load_dense(case, dtype=dtype)
    tokens = exp["tokens"].long()
    T = tokens.shape[1]
    with torch.no_grad():
        logits, hid = model.forward_full(tokens)
        dec = model.decode(tokens)
    inv, _ = rope_parameters(model.cfg, T)
    r = {"logits": (logits.double() - exp["logits"].double()).abs().max().item(),
         "decode_logits": (dec.double() - exp["decode_logits"].double()).abs().max().item(),
         "hidden_states": (torch.stack(hid).double() - exp["hidden_states"].double()).abs().max().item(),
         "rope_inv_freq": (inv - exp["rope_inv_freq"].double()).abs().max().item(),
         "logits_absmax": exp["logits"].abs().max().item()}
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", nargs="*", default=[os.path.join(HERE, "../../../shared/conformance/qwen2-tiny")])
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    torch.set_num_threads(1)
    ok = True
    for case in a.case:
        for name, dt in (("float32", torch.float32), ("float64", torch.float64)):
            r = check(case, dt)
            ok &= r["logits"] < a.tol and r["decode_logits"] < a.tol
            print(json.dumps({"case": os.path.basename(os.path.normpath(case)), "dtype": name, **r}))
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
