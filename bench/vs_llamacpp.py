#!/usr/bin/env python3
"""tern against llama.cpp on the same GGUF files, same thread count, in one run.

For each model, repetitions alternate between the two engines (tern, llama.cpp, tern, ...) so that a noisy
neighbour slows both alike. Each repetition prefills the same kind of prompt (seeded random token ids) in
one call and then decodes single tokens, timing both phases; the table gives mean tok/s and the ratio
tern / llama.cpp. Run through bench/vs_llamacpp.sh, which installs llama.cpp's Python bindings (built from
source for this CPU) and makes the models.

Each repetition of each engine is its own process: tern as `tern bench ... --json` (its own warm-up
repetition, then one timed one), llama.cpp through llama-cpp-python (a 32-token warm-up eval, then the
timed prompt and tokens). llama.cpp's defaults are kept (f16 KV cache, no flash attention); tern uses
--kv-type f16 to match.
"""
import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_tern(tern, model, prompt, gen, threads, kv, extra):
    cmd = [tern, "bench", "-m", model, "-p", str(prompt), "-n", str(gen), "-r", "1", "-t", str(threads),
           "--kv-type", kv, "--json", "--no-roofline"] + extra
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    j = json.loads(out)
    return j["prefill_tok_s"], j["decode_tok_s"]


LLAMA_CHILD = r"""
import random, sys, time
from llama_cpp import Llama
model, prompt, gen, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
llm = Llama(model_path=model, n_ctx=prompt + gen + 16, n_batch=prompt, n_ubatch=prompt, n_threads=threads,
            n_threads_batch=threads, verbose=False)
vocab = llm.n_vocab()
rng = random.Random(1234)
ids = [rng.randrange(100, vocab - 100) for _ in range(prompt)]
nxt = [rng.randrange(100, vocab - 100) for _ in range(gen)]
llm.eval(ids[:32])  # warm-up: page in the weights, let the library set up
llm.reset()
t0 = time.perf_counter()
llm.eval(ids)
t1 = time.perf_counter()
for tok in nxt:
    llm.eval([tok])
t2 = time.perf_counter()
print(prompt / (t1 - t0), gen / (t2 - t1))
"""


def run_llamacpp(model, prompt, gen, threads):
    # A child process per repetition, as for tern: nothing of one engine (threads, buffers) lingers while the
    # other runs.
    out = subprocess.run([sys.executable, "-c", LLAMA_CHILD, model, str(prompt), str(gen), str(threads)],
                         check=True, capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tern", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--kv-type", default="f16")
    ap.add_argument("--tern-args", default="", help="more flags for tern bench, e.g. '--float-matmul bf16'")
    ap.add_argument("models", nargs="+", help="GGUF files")
    a = ap.parse_args()

    import llama_cpp
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; CPU {cpu_model()}, {os.cpu_count()} CPUs; "
          f"tern {commit}; llama-cpp-python {llama_cpp.__version__}; {a.threads} threads; "
          f"prompt {a.prompt}, decode {a.gen}, {a.reps} alternating repetitions"
          + (f"; tern bench with {a.tern_args}" if a.tern_args else ""))
    print(f"llama.cpp system info: {llama_cpp.llama_print_system_info().decode().strip()}")
    print()
    print("| model | prefill tern | prefill llama.cpp | ratio | decode tern | decode llama.cpp | ratio |")
    print("|---|---|---|---|---|---|---|")
    for model in a.models:
        tp, td, lp, ld = [], [], [], []
        for _ in range(a.reps):
            p, d = run_tern(a.tern, model, a.prompt, a.gen, a.threads, a.kv_type, a.tern_args.split())
            tp.append(p), td.append(d)
            p, d = run_llamacpp(model, a.prompt, a.gen, a.threads)
            lp.append(p), ld.append(d)
        fmt = lambda v: f"{statistics.mean(v):.1f} +- {statistics.stdev(v) if len(v) > 1 else 0:.1f}"
        ratio = lambda x, y: statistics.mean(x) / statistics.mean(y)
        print(f"| {os.path.basename(model)} | {fmt(tp)} | {fmt(lp)} | {ratio(tp, lp):.2f} | {fmt(td)} | {fmt(ld)} | "
              f"{ratio(td, ld):.2f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
