#!/usr/bin/env python3
"""tern against llama.cpp on the same GGUF: tokens, next-token logits and perplexity.

llama.cpp runs through its Python bindings (llama-cpp-python), which build llama.cpp from source. They are
not a test dependency; install them into a separate venv once:

    python3 -m venv .venv-llama
    CMAKE_ARGS="-DGGML_NATIVE=OFF" .venv-llama/bin/pip install llama-cpp-python==0.3.36 numpy

then run (from the repository root, after scripts/setup.sh):

    .venv-llama/bin/python tests/reference/compare_llamacpp.py --tern build/tern \
        --model models/SmolLM2-135M-Instruct.Q4_1.gguf --text tests/reference/data/accuracy_text.txt

It checks that both tokenise the text identically, compares the logits at every position (top-1 agreement,
max and mean absolute difference), and compares `tern perplexity` with the same scoring computed from
llama.cpp's logits (chunks of --ctx tokens, second half of each chunk scored). Exit code 1 when top-1
agreement is below 99% or the perplexities differ by more than 1%.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
from llama_cpp import Llama


def perplexity_from_logits(logits, ids, n_ctx):
    """llama.cpp's perplexity scoring, given logits of each chunk evaluated from an empty cache."""
    nll, count = 0.0, 0
    first = n_ctx // 2
    for c, lg in enumerate(logits):
        for i in range(first, n_ctx - 1):
            row = lg[i].astype(np.float64)
            m = row.max()
            lse = m + np.log(np.exp(row - m).sum())
            nll += lse - row[ids[c * n_ctx + i + 1]]
            count += 1
    return float(np.exp(nll / count)), count


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tern", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--backend", default="reference", help="tern backend for the logits (reference or cpu)")
    ap.add_argument("--kv-type", default="f32",
                    help="tern's KV cache type (f32, f16, q8_0); llama.cpp's default cache is f16")
    args = ap.parse_args()

    text = open(args.text, encoding="utf-8").read()
    llm = Llama(model_path=args.model, n_ctx=max(512, args.ctx), logits_all=True, verbose=False, n_threads=2)
    add_bos = llm.metadata.get("tokenizer.ggml.add_bos_token", "true") == "true"
    ids_llama = llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=False)

    out = subprocess.run([args.tern, "tokenize", "-m", args.model, "--file", args.text] +
                         ([] if add_bos else ["--no-bos"]), capture_output=True, text=True, check=True)
    ids_tern = [int(x) for x in out.stdout.split()]
    print(f"tokens: tern {len(ids_tern)}, llama.cpp {len(ids_llama)}, identical: {ids_tern == ids_llama}")
    if ids_tern != ids_llama:
        return 1
    ids = ids_tern

    # Next-token logits over the whole text in one sequence (as many positions as fit in 512).
    n = min(len(ids), 512)
    llm.reset()
    llm.eval(ids[:n])
    ref = np.array(llm.scores[:n], dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        out_path = os.path.join(tmp, "logits.f32")
        subprocess.run([args.tern, "logits", "-m", args.model, "--ids", " ".join(map(str, ids[:n])), "-o", out_path,
                        "--prefill", "--backend", args.backend, "--kv-type", args.kv_type], check=True)
        mine = np.fromfile(out_path, dtype=np.float32).reshape(n, -1)
    diff = np.abs(mine - ref)
    top1 = float((mine.argmax(1) == ref.argmax(1)).mean())
    print(f"logits over {n} positions: top-1 agreement {top1 * 100:.2f}%, max abs diff {diff.max():.4f}, "
          f"mean abs diff {diff.mean():.5f} (logit range {ref.min():.1f} .. {ref.max():.1f})")
    # Where the two disagree, how close were llama.cpp's own top two? (Near-ties flip under tiny differences.)
    top2 = np.sort(ref, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    bad = np.nonzero(mine.argmax(1) != ref.argmax(1))[0]
    if len(bad):
        print(f"  disagreements at {len(bad)} positions; llama.cpp's top-1/top-2 margin there: max "
              f"{margin[bad].max():.3f}, median {np.median(margin[bad]):.3f} (median over all positions "
              f"{np.median(margin):.3f})")

    # Perplexity with llama.cpp's scoring.
    n_chunks = len(ids) // args.ctx
    chunk_logits = []
    for c in range(n_chunks):
        chunk = ids[c * args.ctx:(c + 1) * args.ctx]
        if add_bos:
            chunk = [llm.token_bos()] + chunk[1:]
        llm.reset()
        llm.eval(chunk)
        chunk_logits.append(np.array(llm.scores[:args.ctx], dtype=np.float32))
    ppl_llama, scored = perplexity_from_logits(chunk_logits, ids, args.ctx)
    out = subprocess.run([args.tern, "perplexity", "-m", args.model, "-f", args.text, "-c", str(args.ctx),
                          "--backend", args.backend, "--kv-type", args.kv_type],
                         capture_output=True, text=True, check=True)
    ppl_tern = float(re.search(r"perplexity: ([0-9.]+)", out.stdout).group(1))
    rel = abs(ppl_tern - ppl_llama) / ppl_llama
    print(f"perplexity (ctx {args.ctx}, {n_chunks} chunks, {scored} tokens scored): tern {ppl_tern:.4f}, "
          f"llama.cpp {ppl_llama:.4f}, relative difference {rel * 100:.3f}%")
    ok = top1 >= 0.99 and rel <= 0.01
    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
