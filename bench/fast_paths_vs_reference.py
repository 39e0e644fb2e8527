#!/usr/bin/env python3
"""How far the cpu backend's fast paths move the logits from the fp32 reference backend, per weight type.

For each type, the model is re-quantized with `tern quantize` (from whatever it is now), then `tern logits`
runs the same token ids through `--backend reference` (scalar fp32, double accumulators) and `--backend cpu`
(int8 activations for Q8_0/Q4_0/Q4_1/Q4_K on AVX-512, fp32 GEMMs for the float types), both as one prefill.
Prints, per type and KV cache type, max and mean |logit difference| and top-1 agreement over the positions.
With --float-matmul f32,bf16 the cpu backend also runs in its bf16 mode (`tern --float-matmul bf16`: F16/BF16
weights multiplied in bf16); those rows are labelled "F16 (bf16)". F32/quantized weights are not affected by it.

    .venv/bin/python bench/fast_paths_vs_reference.py --tern build/tern \
        --model models/SmolLM2-135M-Instruct.Q4_1.gguf --text tests/reference/data/accuracy_text.txt
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tern", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--n", type=int, default=64, help="token positions compared")
    ap.add_argument("--types", default="F16,Q8_0,Q4_0,Q4_1,Q4_K")
    ap.add_argument("--kv-types", default="f32,f16,q8_0")
    ap.add_argument("--float-matmul", default="f32", help="cpu backend modes for F16/BF16 weights: f32, bf16 or both")
    a = ap.parse_args()

    out = subprocess.run([a.tern, "tokenize", "-m", a.model, "--file", a.text], check=True, capture_output=True,
                         text=True).stdout.split()
    ids = " ".join(out[: a.n])
    print("| weights | KV cache | max abs diff | mean abs diff | top-1 agreement |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for t in a.types.split(","):
            model = os.path.join(tmp, f"m-{t}.gguf")
            subprocess.run([a.tern, "quantize", a.model, model, t], check=True, capture_output=True)

            def logits(backend, kv, fm="f32"):
                f = os.path.join(tmp, f"l-{t}-{backend}-{kv}-{fm}.bin")
                mode = ["--float-matmul", fm] if fm != "f32" else []
                subprocess.run([a.tern, "logits", "-m", model, "--ids", ids, "-o", f, "--prefill", "--backend",
                                backend, "--kv-type", kv] + mode, check=True, capture_output=True)
                return np.fromfile(f, dtype=np.float32).reshape(a.n, -1)

            ref = logits("reference", "f32")
            for fm in a.float_matmul.split(","):
                for kv in a.kv_types.split(","):
                    got = logits("cpu", kv, fm)
                    d = np.abs(got.astype(np.float64) - ref)
                    agree = float(np.mean(got.argmax(1) == ref.argmax(1)))
                    label = t if fm == "f32" else f"{t} ({fm})"
                    print(f"| {label} | {kv} | {d.max():.4f} | {d.mean():.5f} | {100 * agree:.1f}% |", flush=True)
            os.remove(model)


if __name__ == "__main__":
    sys.exit(main())
