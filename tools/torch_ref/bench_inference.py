"""Inference speed of the PyTorch twin (eager, torch.inference_mode) on bench-small with random weights.

    /usr/bin/python3 tools/torch_ref/bench_inference.py --threads 1 --dtype f32
    /usr/bin/python3 tools/torch_ref/bench_inference.py --threads 1,2 --dtype f32,bf16   # one process per count

prefill_tps: a PROMPT-token prompt (batch 1) in one forward, explicit per-head K/V attention, filling the
latent cache. decode_tps: DECODE steps of one token (greedy) after that prompt, weight-absorbed attention
over the latent cache. Each figure is the best of --repeats runs. One JSON line per (threads, dtype).
"""
import argparse
import json
import sys
import time

from bench_common import DEFAULT_CONFIG, bench_model, blas_in_use, fan_out, int_list, reexec_with_openblas


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int_list, default=[1])
    ap.add_argument("--dtype", default="f32")
    ap.add_argument("--config", default=DEFAULT_CONFIG)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--decode", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    if fan_out(a.threads):
        return
    reexec_with_openblas(a.threads[0])
    import torch
    print("blas: %s" % blas_in_use(), file=sys.stderr)
    base = bench_model(a.config, with_mtp=False).eval()
    V = base.cfg.vocab_size
    prompt = torch.randint(0, V, (1, a.prompt), generator=torch.Generator().manual_seed(1))
    for dname in a.dtype.split(","):
        dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[dname]
        model = base.to_dtype(dtype)
        for n in a.threads:
            torch.set_num_threads(n)                               # one count per process (fan_out)
            best_p = best_d = float("inf")
            with torch.inference_mode():
                for rep in range(a.repeats + 1):                   # run 0 is a warm-up
                    cache = model.new_cache(1, a.prompt + a.decode)
                    t0 = time.perf_counter()
                    logits, _ = model(prompt, cache=cache, start=0)
                    t1 = time.perf_counter()
                    tok = logits[:, -1:].argmax(-1)
                    t2 = time.perf_counter()
                    for i in range(a.decode):
                        logits, _ = model(tok, cache=cache, start=a.prompt + i)
                        tok = logits[:, -1:].argmax(-1)
                    t3 = time.perf_counter()
                    if rep:
                        best_p, best_d = min(best_p, t1 - t0), min(best_d, t3 - t2)
            print(json.dumps({"impl": "pytorch", "dtype": dname, "threads": n,
                              "prefill_tps": round(a.prompt / best_p, 1),
                              "decode_tps": round(a.decode / best_d, 2)}), flush=True)


if __name__ == "__main__":
    main()
