#!/usr/bin/env python3
"""Regenerates tests/golden/hf/: tiny random-weight Hugging Face checkpoints saved by transformers, and
transformers' own fp32 logits for them. tern's tests (tests/unit/test_hf_model.cpp) load each folder and
must reproduce the logits within 1e-4 max abs at all 32 positions.

    python3 -m venv .venv-hf && .venv-hf/bin/pip install -r tests/reference/requirements-hf.txt
    .venv-hf/bin/python tests/reference/make_hf_fixtures.py            # writes tests/golden/hf/
    .venv-hf/bin/python tests/reference/make_hf_fixtures.py --check    # only compares with what is there

(torch and transformers are large and only needed here: they are kept out of scripts/requirements.txt.)

Each fixture folder holds what `save_pretrained` writes (config.json, model.safetensors or shards plus
model.safetensors.index.json, generation_config.json) and two files of ours:
    ids.txt     32 token ids, space separated
    logits.f32  float32 little-endian, shape (32, vocab): model(ids).logits[0] in fp32, eager attention

Weights are re-drawn from a seeded generator at scales that keep activations O(1) and spread the logits over a
few units (transformers' default init, std 0.02, gives logits near 0 that any bug would still match):
embeddings N(0, 0.25^2), projections N(0, 1/fan_in), norm weights 1 + N(0, 0.1^2), biases N(0, 0.1^2). For the
F16/BF16 fixtures the weights are rounded to that type first, so the reference is the fp32 forward pass of
exactly the weights in the file.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "..", "golden", "hf")
N_IDS = 32

BASE = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=96, max_position_embeddings=64, rms_norm_eps=1e-5,
            hidden_act="silu")

# name -> (class, config overrides, saved dtype, max_shard_size or None, seed)
FIXTURES = {
    # GQA 4:2, tied embeddings (no lm_head.weight in the file), one model.safetensors.
    "llama_gqa_tied": ("llama", dict(tie_word_embeddings=True, rope_theta=10000.0), torch.float32, None, 1),
    # Separate lm_head, GQA 4:1, head_dim 16 != hidden/heads, llama3 RoPE scaling chosen so that the 8 pairs
    # fall in all three regimes (kept, blended, slowed by `factor`), sharded with an index.
    "llama_llama3_untied_sharded": ("llama", dict(
        tie_word_embeddings=False, num_key_value_heads=1, head_dim=16, rope_theta=500000.0,
        max_position_embeddings=512,
        rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                          original_max_position_embeddings=64)), torch.float32, "40KB", 2),
    # attention_bias and mlp_bias, MHA (kv heads = heads), tied.
    "llama_bias_mha": ("llama", dict(tie_word_embeddings=True, num_key_value_heads=4, attention_bias=True,
                                     mlp_bias=True, rope_theta=10000.0), torch.float32, None, 3),
    # MistralForCausalLM without a sliding window, GQA, separate lm_head.
    "mistral_gqa": ("mistral", dict(tie_word_embeddings=False, sliding_window=None, rope_theta=10000.0),
                    torch.float32, None, 4),
    # Half-precision files: BF16 (sharded) and F16.
    "llama_bf16": ("llama", dict(tie_word_embeddings=False, rope_theta=10000.0), torch.bfloat16, "30KB", 5),
    "llama_f16": ("llama", dict(tie_word_embeddings=True, rope_theta=10000.0), torch.float16, None, 6),
}


def build(kind: str, overrides: dict, dtype: torch.dtype, seed: int):
    torch.manual_seed(seed)
    cfg_kw = dict(BASE, **overrides)
    cfg = LlamaConfig(**cfg_kw) if kind == "llama" else MistralConfig(**cfg_kw)
    cfg._attn_implementation = "eager"  # plain softmax(QK^T)V in fp32; not written to config.json
    model = (LlamaForCausalLM if kind == "llama" else MistralForCausalLM)(cfg)
    g = torch.Generator().manual_seed(1000 + seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                v = 1.0 + 0.1 * torch.randn(p.shape, generator=g)
            elif name.endswith(".bias"):
                v = 0.1 * torch.randn(p.shape, generator=g)
            elif "embed_tokens" in name:
                v = 0.25 * torch.randn(p.shape, generator=g)
            else:  # a projection (out, in)
                v = torch.randn(p.shape, generator=g) / np.sqrt(p.shape[1])
            p.copy_(v.to(dtype).to(torch.float32))  # rounded to the saved type: the reference uses these values
    model.eval()
    return model


def reference_logits(model, ids: list[int]) -> np.ndarray:
    with torch.no_grad():
        out = model(torch.tensor([ids], dtype=torch.long), use_cache=False)
    return out.logits[0].to(torch.float32).numpy()


def make(name: str, dest_root: str) -> None:
    kind, overrides, dtype, shard, seed = FIXTURES[name]
    model = build(kind, overrides, dtype, seed)
    rng = np.random.default_rng(seed)
    ids = [int(x) for x in rng.integers(0, model.config.vocab_size, size=N_IDS)]
    logits = reference_logits(model, ids)
    dest = os.path.join(dest_root, name)
    if os.path.exists(dest):
        shutil.rmtree(dest)
    saved = model.to(dtype) if dtype != torch.float32 else model
    kw = dict(safe_serialization=True)
    if shard:
        kw["max_shard_size"] = shard
    saved.save_pretrained(dest, **kw)
    with open(os.path.join(dest, "ids.txt"), "w") as f:
        f.write(" ".join(map(str, ids)) + "\n")
    logits.astype("<f4").tofile(os.path.join(dest, "logits.f32"))
    spread = float(logits.max() - logits.min())
    print(f"{name}: {sorted(os.listdir(dest))} logits spread {spread:.2f}")


def check(name: str, root: str) -> float:
    """Reloads a committed fixture with transformers and compares with its stored logits."""
    kind = FIXTURES[name][0]
    cls = LlamaForCausalLM if kind == "llama" else MistralForCausalLM
    path = os.path.join(root, name)
    model = cls.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    ids = [int(x) for x in open(os.path.join(path, "ids.txt")).read().split()]
    want = np.fromfile(os.path.join(path, "logits.f32"), dtype="<f4").reshape(len(ids), -1)
    got = reference_logits(model, ids)
    return float(np.abs(got - want).max())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=OUT_DIR)
    ap.add_argument("--check", action="store_true", help="only reload the fixtures and compare their logits")
    args = ap.parse_args()
    torch.set_num_threads(1)  # deterministic reductions
    if not args.check:
        os.makedirs(args.out, exist_ok=True)
        for name in FIXTURES:
            make(name, args.out)
    bad = 0
    for name in FIXTURES:
        d = check(name, args.out)
        ok = d < 1e-5
        bad += not ok
        print(f"{name}: reload max abs diff {d:.2e} {'OK' if ok else 'FAIL'}")
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(args.out) for f in fs)
    print(f"total fixture size: {total} bytes")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
