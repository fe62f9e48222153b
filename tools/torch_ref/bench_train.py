"""Training speed of the PyTorch twin on bench-small (random weights), full objective of
docs/training-spec.md: main loss + MTP (as in the config) + sequence-wise balance loss, autograd backward,
global-norm clipping, AdamW, aux-loss-free bias update.

    /usr/bin/python3 tools/torch_ref/bench_train.py --threads 1 --mode f32
    /usr/bin/python3 tools/torch_ref/bench_train.py --threads 1,2 --mode f32,bf16-autocast

bf16-autocast: forward and loss under torch.autocast("cpu", bfloat16) (router logits kept in fp32),
float32 weights, gradients and AdamW. Prints one JSON line per (threads, mode):
train_tps = batch * seq / (mean seconds per timed step).
"""
import argparse
import contextlib
import json
import sys
import time

from bench_common import DEFAULT_CONFIG, HERE, bench_model, blas_in_use, fan_out, int_list, reexec_with_openblas


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int_list, default=[1])
    ap.add_argument("--mode", default="f32")
    ap.add_argument("--config", default=DEFAULT_CONFIG)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4)
    a = ap.parse_args()
    if fan_out(a.threads):
        return
    reexec_with_openblas(a.threads[0])
    import torch
    sys.path.insert(0, HERE)
    from train import backward, compute_loss, expert_loads, make_optimizer, update_bias
    print("blas: %s" % blas_in_use(), file=sys.stderr)
    torch.set_num_threads(a.threads[0])
    alpha, lam, gamma = 0.01, 0.3, 0.001
    g = torch.Generator().manual_seed(1)
    for mode in a.mode.split(","):
        model = bench_model(a.config, with_mtp=True).train()
        opt = make_optimizer(model, lr=1e-4, wd=0.1)
        ctx = {"f32": contextlib.nullcontext,
               "bf16-autocast": lambda: torch.autocast("cpu", dtype=torch.bfloat16)}[mode]
        times = []
        for step in range(a.warmup + a.steps):
            tokens = torch.randint(0, model.cfg.vocab_size, (a.batch, a.seq + 1), generator=g)
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            with ctx():
                losses, log = compute_loss(model, tokens, alpha, lam)
            backward(model, losses["total"])
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            with torch.no_grad():
                update_bias(model, expert_loads(log, model.cfg), gamma)
            times.append(time.perf_counter() - t0)
            print("step %d: %.2fs loss %.4f" % (step, times[-1], losses["main"].item()), file=sys.stderr)
        dt = sum(times[a.warmup:]) / a.steps
        print(json.dumps({"impl": "pytorch", "mode": mode, "threads": a.threads[0], "batch": a.batch,
                          "seq_len": a.seq, "train_tps": round(a.batch * a.seq / dt, 1),
                          "best_step_tps": round(a.batch * a.seq / min(times[a.warmup:]), 1)}), flush=True)


if __name__ == "__main__":
    main()
