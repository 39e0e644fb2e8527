#!/usr/bin/env python3
"""Writes tests/golden/quant_blocks.gguf: ggml blocks and what the `gguf` package (an implementation
independent of tern) makes of them. tests/unit/test_quant.cpp reads it with tern's GgufFile.

Tensors (all written with gguf's GGUFWriter):
  deq.<T>      for T in Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K F16 BF16: blocks of random bytes, shape
               (2, n). Every f16 scale field (d, m, dmin) is overwritten with a finite value: block 0 gets 0,
               block 1 a subnormal half, the rest random signs and magnitudes 10^U(-4, 0.5). F16/BF16 are
               random finite bit patterns (subnormals and -0 included).
  deq.<T>.f32  gguf.quants.dequantize(deq.<T>) as F32, same shape.
  src          F32 (8, 256): seeded rows with the corner cases of the quantizers (see make_source()).
  q.<T>        for T in F16 BF16 Q8_0 Q4_0 Q4_1: gguf.quants.quantize(src, T), gguf-py's port of ggml's
               reference quantizers.

Run from the repository root (deterministic: the same bytes every time):
    .venv/bin/python tests/reference/make_quant_fixture.py [--out tests/golden/quant_blocks.gguf]
"""
from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

SEED = 20240611

# Byte offsets of the f16 scale fields inside one block, per the ggml block layouts.
HALF_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
N_BLOCKS = {32: 16, 256: 6}  # blocks per tensor, by block size


def random_halves(rng, n):
    mag = 10.0 ** rng.uniform(-4, 0.5, n)
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return (sign * mag).astype(np.float16)


def make_quant_blocks(rng, qtype):
    block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    nb = N_BLOCKS[block_elems]
    raw = rng.integers(0, 256, size=(nb, block_bytes), dtype=np.uint8)
    for off in HALF_FIELDS[qtype]:
        h = random_halves(rng, nb)
        h[0] = 0.0
        h[1] = np.float16(2.0 ** -20)  # subnormal half
        raw[:, off:off + 2] = h.view(np.uint8).reshape(nb, 2)
    return raw.reshape(2, nb // 2 * block_bytes)


def make_float_bits(rng, qtype, n):
    bits = rng.integers(0, 1 << 16, size=n, dtype=np.uint32).astype(np.uint16)
    if qtype == T.F16:
        exp = (bits >> 10) & 0x1F
        bits = np.where(exp == 0x1F, bits & ~np.uint16(0x4000), bits).astype(np.uint16)  # inf/nan -> finite
    else:
        exp = (bits >> 7) & 0xFF
        bits = np.where(exp == 0xFF, bits & ~np.uint16(0x4000), bits).astype(np.uint16)
    bits[:4] = [0x0000, 0x8000, 0x0001, 0x8001]  # +0, -0, the smallest subnormals
    return bits.reshape(2, n // 2)


def make_source(rng):
    """(8, 256) float32 rows of 8 blocks of 32; each row a case the quantizers must agree on."""
    src = np.zeros((8, 256), dtype=np.float32)
    src[0] = rng.standard_normal(256) * 0.02                      # weight-like
    src[1] = rng.uniform(-1, 1, 256)
    blocks = np.zeros((8, 32), dtype=np.float32)
    blocks[0] = 0.0                                               # all zero: d = 0
    blocks[1] = 0.5                                               # constant: Q4_1 d = 0
    blocks[2] = -0.25
    ties = np.arange(32, dtype=np.float32) - 16.5                 # Q8_0: d = 1, x * id on exact .5 ties
    ties[0] = 127.0
    blocks[3] = ties
    b4 = rng.uniform(-2, 2, 32).astype(np.float32)
    b4[5], b4[9] = -3.0, 3.0                                      # max |x| twice, negative first
    blocks[4] = b4
    b5 = rng.uniform(-2, 2, 32).astype(np.float32)
    b5[5], b5[9] = 3.0, -3.0                                      # positive first
    blocks[5] = b5
    blocks[6] = rng.standard_normal(32) * 1e-6                    # d below the f16 normal range
    blocks[7] = rng.standard_normal(32) * 1e3
    src[2] = blocks.reshape(-1)
    src[3] = rng.standard_normal(256) * 0.05
    src[3, rng.integers(0, 256, 6)] = rng.uniform(-1.5, 1.5, 6)   # outliers
    f16_edges = np.array([65504, 65519, 65520, 7e4, 6.1e-5, 6.0e-5, 5.96e-8, 2.98e-8, 2.9e-8, 1e-9,
                          1 + 2 ** -11, 1 + 3 * 2 ** -11, -(1 + 2 ** -11), 2049, 2051, 1 + 2 ** -8 + 2 ** -16],
                         dtype=np.float32)
    src[4] = np.resize(np.concatenate([f16_edges, -f16_edges]), 256)
    for r in range(5, 8):
        src[r] = rng.standard_normal(256) * (10.0 ** rng.uniform(-3, 1, 256))
    return src


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tests/golden/quant_blocks.gguf")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(SEED)
    w = gguf.GGUFWriter(args.out, arch="quant_fixture")
    w.add_string("fixture.generator", "tests/reference/make_quant_fixture.py")
    w.add_string("fixture.gguf_version", getattr(gguf, "__version__", "0.19.0"))

    for qtype in HALF_FIELDS:
        raw = make_quant_blocks(rng, qtype)
        deq = gguf.quants.dequantize(raw, qtype).astype(np.float32, copy=False)
        assert np.all(np.isfinite(deq)), qtype.name
        w.add_tensor(f"deq.{qtype.name}", raw, raw_dtype=qtype)
        w.add_tensor(f"deq.{qtype.name}.f32", deq)
    for qtype in (T.F16, T.BF16):
        bits = make_float_bits(rng, qtype, 512)
        raw = bits.view(np.uint8)
        deq = gguf.quants.dequantize(raw if qtype == T.BF16 else bits.view(np.float16), qtype).astype(np.float32)
        assert deq.shape == (2, 256) and np.all(np.isfinite(deq)), qtype.name
        w.add_tensor(f"deq.{qtype.name}", raw, raw_dtype=qtype)
        w.add_tensor(f"deq.{qtype.name}.f32", deq)

    src = make_source(rng)
    w.add_tensor("src", src)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # F16 overflow to inf in the edge row is intended
        for qtype in (T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1):
            q = gguf.quants.quantize(src, qtype)
            if qtype == T.F16:
                w.add_tensor(f"q.{qtype.name}", q)
            else:
                w.add_tensor(f"q.{qtype.name}", q.view(np.uint8), raw_dtype=qtype)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
