#!/usr/bin/env python3
"""tern against llama.cpp on the same GGUF files, same thread count, in one run.

For each model, repetitions alternate between the two engines (tern, llama.cpp, tern, ...) so that a noisy
neighbour slows both alike. Each repetition prefills the same kind of prompt (seeded random token ids) in
one call and then decodes single tokens, timing both phases; the table gives mean tok/s and the ratio
tern / llama.cpp. Run through bench/vs_llamacpp.sh, which installs llama.cpp's Python bindings (built from
source for this CPU) and makes the models.

tern runs as `tern bench ... --json` (its own warm-up repetition, then one timed one); llama.cpp runs in
this process through llama-cpp-python, warmed up once per model. llama.cpp's defaults are kept (f16 KV
cache, no flash attention); tern uses --kv-type f16 to match.
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


def run_tern(tern, model, prompt, gen, threads, kv):
    cmd = [tern, "bench", "-m", model, "-p", str(prompt), "-n", str(gen), "-r", "1", "-t", str(threads),
           "--kv-type", kv, "--json", "--no-roofline"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    j = json.loads(out)
    return j["prefill_tok_s"], j["decode_tok_s"]


class LlamaCpp:
    def __init__(self, model, prompt, gen, threads):
        from llama_cpp import Llama
        self.llm = Llama(model_path=model, n_ctx=prompt + gen + 16, n_batch=prompt, n_ubatch=prompt,
                         n_threads=threads, n_threads_batch=threads, verbose=False)
        vocab = self.llm.n_vocab()
        rng = random.Random(1234)
        self.prompt = [rng.randrange(100, vocab - 100) for _ in range(prompt)]
        self.next = [rng.randrange(100, vocab - 100) for _ in range(gen)]
        self.llm.reset()
        self.llm.eval(self.prompt[:32])  # warm-up: page in the weights, let the library set up

    def run(self):
        self.llm.reset()
        t0 = time.perf_counter()
        self.llm.eval(self.prompt)
        t1 = time.perf_counter()
        for tok in self.next:
            self.llm.eval([tok])
        t2 = time.perf_counter()
        return len(self.prompt) / (t1 - t0), len(self.next) / (t2 - t1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tern", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--kv-type", default="f16")
    ap.add_argument("models", nargs="+", help="GGUF files")
    a = ap.parse_args()

    import llama_cpp
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; CPU {cpu_model()}, {os.cpu_count()} CPUs; "
          f"tern {commit}; llama-cpp-python {llama_cpp.__version__}; {a.threads} threads; "
          f"prompt {a.prompt}, decode {a.gen}, {a.reps} alternating repetitions")
    print(f"llama.cpp system info: {llama_cpp.llama_print_system_info().decode().strip()}")
    print()
    print("| model | prefill tern | prefill llama.cpp | ratio | decode tern | decode llama.cpp | ratio |")
    print("|---|---|---|---|---|---|---|")
    for model in a.models:
        lc = LlamaCpp(model, a.prompt, a.gen, a.threads)
        tp, td, lp, ld = [], [], [], []
        for _ in range(a.reps):
            p, d = run_tern(a.tern, model, a.prompt, a.gen, a.threads, a.kv_type)
            tp.append(p), td.append(d)
            p, d = lc.run()
            lp.append(p), ld.append(d)
        del lc
        fmt = lambda v: f"{statistics.mean(v):.1f} +- {statistics.stdev(v) if len(v) > 1 else 0:.1f}"
        ratio = lambda x, y: statistics.mean(x) / statistics.mean(y)
        print(f"| {os.path.basename(model)} | {fmt(tp)} | {fmt(lp)} | {ratio(tp, lp):.2f} | {fmt(td)} | {fmt(ld)} | "
              f"{ratio(td, ld):.2f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
