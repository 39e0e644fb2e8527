#!/usr/bin/env python3
"""llama.cpp against itself: top-1 agreement between llama.cpp runs that differ only in numerics.

tern's target against llama.cpp is 99% top-1 agreement (issue 3, tests/reference/compare_llamacpp.py). This
script asks how far llama.cpp moves from *itself* when only its numerics change (KV cache type, batch split,
thread count, flash attention), on the same GGUF and text, so that the 99% target can be set against the
peer's own numerical noise. tern is not needed (see --tern below).

Install llama-cpp-python into a separate venv once (as for compare_llamacpp.py):

    python3 -m venv .venv-llama
    CMAKE_ARGS="-DGGML_NATIVE=OFF" .venv-llama/bin/pip install llama-cpp-python==0.3.36 numpy

then run (from the repository root):

    .venv-llama/bin/python tests/reference/llamacpp_self_agreement.py \
        --model models/SmolLM2-135M-Instruct.Q4_1.gguf --text tests/reference/data/accuracy_text.txt

The baseline is what compare_llamacpp.py measures against: llama.cpp's defaults (f16 KV cache, flash
attention off, n_batch = n_ubatch = 512 so the whole text is one batch), n_ctx 512, 2 threads, logits of every
position (logits_all). Each other configuration is compared with the baseline over all positions: top-1
agreement, max and mean |logit difference|, and at the positions where the top-1 token differs, the
baseline's own top-1/top-2 margin. The baseline is also run a second time to show it is repeatable.
A configuration the bindings or llama.cpp refuse is reported as SKIPPED with the error. Always exit code 0
(this is a measurement, not a test), unless the model or text cannot be read.

With `--tern build/tern` it also compares every configuration (the baseline included) with `tern logits
--prefill` on the same ids (`--backend`, default reference, the exact fp32 backend), as compare_llamacpp.py
does, so that tern's distance from llama.cpp can be read next to llama.cpp's distance from itself.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import llama_cpp
from llama_cpp import Llama

F16 = llama_cpp.GGML_TYPE_F16
F32 = llama_cpp.GGML_TYPE_F32
Q8_0 = llama_cpp.GGML_TYPE_Q8_0

# name -> keyword arguments for Llama(), on top of the baseline's. Only numerics change, never the model.
BASELINE = dict(n_ctx=512, n_batch=512, n_threads=2, n_threads_batch=2, type_k=F16, type_v=F16, flash_attn=False)
CONFIGS = [
    ("baseline, repeated", {}),
    ("(a) KV cache f32", dict(type_k=F32, type_v=F32)),
    ("(b) n_batch 32", dict(n_batch=32)),
    ("(b) n_batch 2", dict(n_batch=2)),
    ("(b) n_batch 1 (token by token)", dict(n_batch=1)),
    ("(c) 1 thread", dict(n_threads=1, n_threads_batch=1)),
    ("(d) flash attention", dict(flash_attn=True)),
    ("(a+d) KV cache f32, flash attention", dict(type_k=F32, type_v=F32, flash_attn=True)),
    ("(e) KV cache q8_0 K only", dict(type_k=Q8_0)),
    ("(e) KV cache q8_0 K and V (needs flash attention)", dict(type_k=Q8_0, type_v=Q8_0, flash_attn=True)),
    ("(e) KV cache q8_0 K and V, no flash attention", dict(type_k=Q8_0, type_v=Q8_0)),
]


def run_llama(model, ids, kwargs):
    """Logits (n, vocab) of every position of ids evaluated from an empty cache with Llama(**kwargs)."""
    llm = Llama(model_path=model, logits_all=True, verbose=False, **kwargs)
    try:
        llm.reset()
        llm.eval(ids)
        return np.array(llm.scores[:len(ids)], dtype=np.float32)
    finally:
        llm.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--tern", help="also compare every configuration with `tern logits --prefill` (optional)")
    ap.add_argument("--backend", default="reference", help="tern backend for --tern (reference or cpu)")
    ap.add_argument("--kv-type", default="f32", help="tern's KV cache type for --tern")
    ap.add_argument("--only", default="", help="comma-separated prefixes of configuration names to run, e.g. '(a),(c)'")
    args = ap.parse_args()

    text = open(args.text, encoding="utf-8").read()
    # Tokenise exactly as compare_llamacpp.py does.
    tok = Llama(model_path=args.model, vocab_only=True, verbose=False)
    add_bos = tok.metadata.get("tokenizer.ggml.add_bos_token", "true") == "true"
    ids = tok.tokenize(text.encode("utf-8"), add_bos=add_bos, special=False)
    tok.close()
    n = min(len(ids), BASELINE["n_ctx"])
    ids = ids[:n]
    print(f"llama-cpp-python {llama_cpp.__version__}; {n} positions (add_bos {add_bos})")
    print(f"baseline: {BASELINE} (flash_attn False = LLAMA_FLASH_ATTN_TYPE_DISABLED)")

    tern = None
    if args.tern:
        with tempfile.TemporaryDirectory() as tmp:
            out_path = os.path.join(tmp, "logits.f32")
            subprocess.run([args.tern, "logits", "-m", args.model, "--ids", " ".join(map(str, ids)), "-o", out_path,
                            "--prefill", "--backend", args.backend, "--kv-type", args.kv_type], check=True)
            tern = np.fromfile(out_path, dtype=np.float32).reshape(n, -1)
        print(f"tern: {args.tern} logits --prefill --backend {args.backend} --kv-type {args.kv_type}")

    t0 = time.time()
    base = run_llama(args.model, ids, BASELINE)
    print(f"baseline evaluated in {time.time() - t0:.1f} s")
    top2 = np.sort(base, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    print(f"baseline top-1/top-2 margin over all positions: median {np.median(margin):.3f}, "
          f"{int((margin < 0.1).sum())} positions below 0.1, {int((margin < 0.3).sum())} below 0.3")

    def vs_tern(logits):
        if tern is None:
            return None
        return float((tern.argmax(1) == logits.argmax(1)).mean())

    if tern is not None:
        print(f"baseline vs tern: top-1 agreement {vs_tern(base) * 100:.2f}%, "
              f"mean abs diff {np.abs(tern - base).mean():.5f}")

    only = [p.strip() for p in args.only.split(",") if p.strip()]
    rows = []
    for name, extra in CONFIGS:
        if only and not any(name.startswith(p) for p in only):
            continue
        kwargs = dict(BASELINE, **extra)
        t0 = time.time()
        try:
            logits = run_llama(args.model, ids, kwargs)
        except Exception as e:  # noqa: BLE001 -- any refusal by the bindings or llama.cpp is reported, not fatal
            print(f"{name}: SKIPPED ({type(e).__name__}: {e})")
            rows.append((name, None))
            continue
        if not np.isfinite(logits).all():
            print(f"{name}: SKIPPED (non-finite logits)")
            rows.append((name, None))
            continue
        diff = np.abs(logits - base)
        bad = np.nonzero(logits.argmax(1) != base.argmax(1))[0]
        agree = 1.0 - len(bad) / n
        line = (f"{name}: top-1 agreement {agree * 100:.2f}% ({len(bad)} differ), max abs diff {diff.max():.4f}, "
                f"mean abs diff {diff.mean():.5f} [{time.time() - t0:.1f} s]")
        if len(bad):
            line += (f"; baseline margin at the differing positions: max {margin[bad].max():.3f}, "
                     f"median {np.median(margin[bad]):.3f} (positions {', '.join(map(str, bad.tolist()))})")
        t = vs_tern(logits)
        if t is not None:
            line += f"; vs tern: top-1 agreement {t * 100:.2f}%"
        print(line, flush=True)
        rows.append((name, (agree, len(bad), float(diff.max()), float(diff.mean()),
                            float(margin[bad].max()) if len(bad) else None,
                            float(np.median(margin[bad])) if len(bad) else None, t)))

    print()
    tcol = tern is not None
    print(f"| configuration (vs baseline) | top-1 agreement ({n}) | max abs logit diff | mean abs logit diff "
          f"| baseline margin at differing positions: max / median |"
          + (" top-1 agreement with tern |" if tcol else ""))
    print("|---|---|---|---|---|" + ("---|" if tcol else ""))
    if tcol:
        print(f"| baseline | | | | | {vs_tern(base) * 100:.2f}% |")
    for name, r in rows:
        if r is None:
            print(f"| {name} | skipped | | | |" + (" |" if tcol else ""))
            continue
        agree, nbad, dmax, dmean, mmax, mmed, t = r
        m = f"{mmax:.3f} / {mmed:.3f}" if nbad else "-"
        print(f"| {name} | {agree * 100:.2f}% ({nbad} differ) | {dmax:.3f} | {dmean:.4f} | {m} |"
              + (f" {t * 100:.2f}% |" if tcol else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
