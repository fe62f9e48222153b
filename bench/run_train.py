#!/usr/bin/env python3
"""Training benchmark, side by side in one run: dseek (bench_train) and the PyTorch twin
(tools/torch_ref/bench_train.py) on bench-small, batch 8 x 256, full objective (main + MTP + balance loss),
AdamW, at 2 threads (or --threads); F32 and BF16 products (PyTorch: F32 and BF16 autocast). Prints a markdown
table with tokens/s, the ratio to PyTorch's best, and MFU against the measured GEMM peak.

    python3 bench/run_train.py [--build build] [--threads 2] [--no-torch]
"""
import argparse, json, os, subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_ENV = dict(os.environ, LD_LIBRARY_PATH="/usr/lib/x86_64-linux-gnu/openblas-openmp")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-torch", action="store_true")
    a = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    out = subprocess.run([os.path.join(a.build, "bench_train"), "--benchmark_format=json", "--threads", str(a.threads)],
                         check=True, capture_output=True, text=True, env=env)
    rows = {b["name"].split("/")[1]: b for b in json.loads(out.stdout)["benchmarks"]}

    torch = {}
    if not a.no_torch:
        script = os.path.join(ROOT, "tools", "torch_ref", "bench_train.py")
        out = subprocess.run(["/usr/bin/python3", script, "--threads", str(a.threads), "--mode", "f32,bf16-autocast"],
                             check=True, capture_output=True, text=True, env=TORCH_ENV)
        for line in out.stdout.splitlines():
            if line.startswith("{"):
                r = json.loads(line)
                torch[r["mode"]] = r["train_tps"]
    best = max(torch.values()) if torch else 0

    print(f"threads {a.threads}; PyTorch: " + ", ".join(f"{k} {v:.0f} tok/s" for k, v in torch.items()))
    print("| dseek products | tokens/s | vs PyTorch F32 | vs PyTorch best | GEMM peak GFLOP/s | MFU | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for prec, b in rows.items():
        tps = b["tokens_per_s"]
        mfu = tps * b["model_flops_per_token"] / (b["gemm_peak_GFLOPs"] * 1e9)
        ratio = lambda y: f"{tps / y:.2f}x" if y else "-"
        print(f"| {prec} | {tps:.0f} | {ratio(torch.get('f32'))} | {ratio(best)} | {b['gemm_peak_GFLOPs']:.0f} | "
              f"{100 * mfu:.0f}% | {b['peak_rss_MiB']:.0f} |")


if __name__ == "__main__":
    main()
