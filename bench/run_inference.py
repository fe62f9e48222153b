#!/usr/bin/env python3
"""Inference benchmark, side by side in one run: dseek (bench_inference) and the PyTorch twin
(tools/torch_ref/bench_inference.py) on bench-small with random weights, prefill of 512 tokens and batch-1
decode at 512 tokens of context, 1 and 2 threads, F32 and BF16; plus the machine's read bandwidth and the
GEMM FLOP/s of oneDNN. Prints a markdown table.

    python3 bench/run_inference.py [--build build] [--no-torch]
"""
import argparse, json, os, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_ENV = dict(os.environ, LD_LIBRARY_PATH="/usr/lib/x86_64-linux-gnu/openblas-openmp")


def gbench(binary, flt, threads):
    out = subprocess.run([binary, f"--benchmark_filter={flt}", "--benchmark_format=json", "--threads", str(threads)],
                         check=True, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
    return json.loads(out.stdout)["benchmarks"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--no-torch", action="store_true")
    a = ap.parse_args()
    inf, mach = os.path.join(a.build, "bench_inference"), os.path.join(a.build, "bench_machine")

    machine = {}
    for t in (1, 2):
        for b in gbench(mach, ".", t):
            parts = [x for x in b["name"].split("/") if not x.startswith(("min_time", "real_time"))]
            key = parts[0] + ("/" + "x".join(parts[1:]) if len(parts) > 1 else "")
            machine[(key, t)] = b.get("GB_per_s") or b.get("GFLOP_per_s")

    rows = {}
    for dt in ("f32", "bf16"):
        for t in (1, 2):
            pre = gbench(inf, f"BM_Prefill/{dt}/", t)[0]
            dec = gbench(inf, f"BM_Decode/{dt}/", t)[0]
            rows[(dt, t)] = dict(prefill=pre["tokens_per_s"], decode=dec["tokens_per_s"],
                                 rss=max(pre["peak_rss_MiB"], dec["peak_rss_MiB"]),
                                 kv=dec["kv_bytes_per_token"], mha=dec["mha_kv_bytes_per_token"])

    torch = {}
    if not a.no_torch:
        script = os.path.join(ROOT, "tools", "torch_ref", "bench_inference.py")
        out = subprocess.run(["/usr/bin/python3", script, "--threads", "1,2", "--dtype", "f32,bf16"],
                             check=True, capture_output=True, text=True, env=TORCH_ENV)
        for line in out.stdout.splitlines():
            if line.startswith("{"):
                r = json.loads(line)
                torch[(r["dtype"], int(r["threads"]))] = r

    print("| dtype | threads | dseek prefill tok/s | PyTorch prefill | ratio | dseek decode tok/s | PyTorch decode | ratio | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (dt, t), r in rows.items():
        tp = torch.get((dt, t), {})
        pp, pd = tp.get("prefill_tps"), tp.get("decode_tps")
        ratio = lambda x, y: f"{x / y:.2f}x" if y else "-"
        print(f"| {dt} | {t} | {r['prefill']:.0f} | {pp or 0:.0f} | {ratio(r['prefill'], pp)} | {r['decode']:.0f} | "
              f"{pd or 0:.0f} | {ratio(r['decode'], pd)} | {r['rss']:.0f} |")
    any_row = next(iter(rows.values()))
    print(f"\nKV cache per token: {any_row['kv']:.0f} bytes (latent) vs {any_row['mha']:.0f} bytes for standard MHA "
          f"with the same heads ({any_row['mha'] / any_row['kv']:.1f}x smaller)")
    print("\nMachine limits:")
    for (k, t), v in sorted(machine.items()):
        unit = "GB/s" if "Bandwidth" in k else "GFLOP/s"
        print(f"- {k} at {t} thread(s): {v:.1f} {unit}")


if __name__ == "__main__":
    sys.exit(main())
