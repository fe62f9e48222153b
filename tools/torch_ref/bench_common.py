"""Shared set-up of the benchmark scripts: OpenMP OpenBLAS, thread count, the bench model."""
import os
import sys

OPENBLAS_OMP = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONFIG = os.path.join(HERE, "../../../shared/configs/bench-small.json")


def reexec_with_openblas(max_threads):
    """Restart the interpreter with the OpenMP OpenBLAS first on LD_LIBRARY_PATH (the dynamic linker only
    reads it at start-up) and OMP_NUM_THREADS set, unless that is already the case."""
    env = dict(os.environ)
    paths = env.get("LD_LIBRARY_PATH", "").split(":")
    want = str(max_threads)
    need_blas = os.path.isdir(OPENBLAS_OMP) and OPENBLAS_OMP not in paths
    if need_blas or env.get("OMP_NUM_THREADS") != want:
        if need_blas:
            env["LD_LIBRARY_PATH"] = ":".join([OPENBLAS_OMP] + [p for p in paths if p])
        env["OMP_NUM_THREADS"] = want
        os.execve(sys.executable, [sys.executable] + sys.argv, env)


def blas_in_use():
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "blas" in line}
    return sorted(libs)


def bench_model(config_path, with_mtp, seed=0):
    """Random weights: normal(0, 0.02) matrices, ones for norms, zero routing bias."""
    sys.path.insert(0, HERE)
    from model import Config, DeepseekModel, init_weights
    model = DeepseekModel(Config.load(config_path), with_mtp=with_mtp)
    init_weights(model, seed=seed, std=0.02)
    return model


def int_list(s):
    return [int(x) for x in s.split(",")]


def fan_out(threads):
    """Several thread counts: run this script once per count in a fresh process (switching the count inside one
    process leaves the OpenMP OpenBLAS slower at 2 threads after a 1-thread run). Returns True if it did."""
    if len(threads) == 1:
        return False
    import subprocess
    argv, skip = [], False
    for x in sys.argv:                                     # drop "--threads L" / "--threads=L"
        if skip or x.startswith("--threads="):
            skip = False
            continue
        if x == "--threads":
            skip = True
            continue
        argv.append(x)
    for n in threads:
        subprocess.run([sys.executable] + argv + ["--threads", str(n)], check=True)
    return True
