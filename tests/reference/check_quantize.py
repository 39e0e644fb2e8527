#!/usr/bin/env python3
"""Checks of tern's quantization and GGUF writer against the `gguf` package (independent of tern).

Subcommands (each prints one line per check and exits 1 on any failure):

  reader --file F --manifest M
      gguf's GGUFReader must read a GGUF written by tern's GgufWriter, and find exactly the metadata and
      tensors listed in the JSON manifest M (written by the test next to F): every key with its value type and
      value, every tensor with its type, shape (row-major) and bytes (the manifest names a file holding them),
      each tensor's data at a multiple of the alignment.

  bytes --tern BIN --model M --workdir D
      `tern quantize M OUT T` for T in F16 BF16 Q8_0 Q4_0 Q4_1: every tensor tern converted must be
      byte-identical to gguf.quants.quantize() of the F32 source (gguf-py ports ggml's reference quantizers).

  logits --tern BIN --model M [--ids "1 2 3"] [--tol X]
      `tern logits` on M against the numpy float64 forward pass of tests/reference/llama_ref.py, which reads M
      with GGUFReader and dequantizes with gguf.quants: reports the max abs difference of the logits.

    .venv/bin/python tests/reference/check_quantize.py logits --tern build/tern \\
        --model models/SmolLM2-135M-Instruct.Q4_1.gguf --ids "1 2 3"
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

VT_NAMES = {VT.UINT8: "uint8", VT.INT8: "int8", VT.UINT16: "uint16", VT.INT16: "int16", VT.UINT32: "uint32",
            VT.INT32: "int32", VT.FLOAT32: "float32", VT.BOOL: "bool", VT.STRING: "string", VT.ARRAY: "array",
            VT.UINT64: "uint64", VT.INT64: "int64", VT.FLOAT64: "float64"}


def cmd_reader(args) -> int:
    man = json.load(open(args.manifest, encoding="utf-8"))
    r = gguf.GGUFReader(args.file)
    fails = []
    fields = {k: f for k, f in r.fields.items() if not k.startswith("GGUF.")}
    want_keys = [kv["key"] for kv in man["kv"]]
    if list(fields) != want_keys:
        fails.append(f"keys {list(fields)} != manifest {want_keys}")
    for kv in man["kv"]:
        f = fields.get(kv["key"])
        if f is None:
            continue
        types = [VT_NAMES[t] for t in f.types]
        if types != kv["types"]:
            fails.append(f"key {kv['key']}: types {types} != {kv['types']}")
            continue
        got = f.contents()
        want = kv["value"]
        if types[-1] in ("float32", "float64"):  # the manifest prints floats with enough digits to round-trip
            ft = np.float32 if types[-1] == "float32" else np.float64
            ok = np.array_equal(np.asarray(got, dtype=ft), np.asarray(want, dtype=ft))
        else:
            ok = got == want
        if not ok:
            fails.append(f"key {kv['key']}: value {got!r} != {want!r}")
    align = int(man["alignment"])
    tensors = {t.name: t for t in r.tensors}
    if [t.name for t in r.tensors] != [t["name"] for t in man["tensors"]]:
        fails.append(f"tensor order {[t.name for t in r.tensors]} != manifest")
    for mt in man["tensors"]:
        t = tensors.get(mt["name"])
        if t is None:
            fails.append(f"tensor {mt['name']} missing")
            continue
        shape = [int(n) for n in reversed(t.shape)]
        if t.tensor_type.name != mt["type"] or shape != mt["shape"]:
            fails.append(f"tensor {mt['name']}: {t.tensor_type.name} {shape} != {mt['type']} {mt['shape']}")
        data = np.ascontiguousarray(t.data).tobytes()
        want = open(mt["data_file"], "rb").read()
        if data != want or int(t.n_bytes) != mt["bytes"]:
            fails.append(f"tensor {mt['name']}: bytes differ ({t.n_bytes} vs {mt['bytes']})")
        if t.data_offset % align:
            fails.append(f"tensor {mt['name']}: data at {t.data_offset}, not a multiple of {align}")
    for f in fails:
        print("FAIL", f)
    print(f"reader: {len(man['kv'])} keys, {len(man['tensors'])} tensors: {'OK' if not fails else 'FAILED'}")
    return 1 if fails else 0


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout


def cmd_bytes(args) -> int:
    src = gguf.GGUFReader(args.model)
    src_t = {t.name: t for t in src.tensors}
    os.makedirs(args.workdir, exist_ok=True)
    n_fail = 0
    for name in ("F16", "BF16", "Q8_0", "Q4_0", "Q4_1"):
        qt = QT[name]
        out = os.path.join(args.workdir, f"bytes_{name}.gguf")
        run([args.tern, "quantize", args.model, out, name])
        r = gguf.GGUFReader(out)
        checked, bad = 0, []
        for t in r.tensors:
            s = src_t[t.name]
            if t.tensor_type != qt or s.tensor_type != QT.F32:
                continue
            ref = gguf.quants.quantize(np.asarray(s.data, dtype=np.float32).reshape(
                [int(n) for n in reversed(s.shape)]), qt)
            if np.ascontiguousarray(ref).tobytes() != np.ascontiguousarray(t.data).tobytes():
                bad.append(t.name)
            checked += 1
        ok = checked > 0 and not bad
        n_fail += not ok
        print(f"bytes {name}: {checked} tensors compared with gguf.quants.quantize, {len(bad)} differ "
              f"{bad[:3]} {'OK' if ok else 'FAILED'}")
    return 1 if n_fail else 0


def cmd_logits(args) -> int:
    import llama_ref

    ids = [int(x) for x in args.ids.replace(",", " ").split()]
    cfg, w = llama_ref.load(args.model)
    cfg.seq_len = len(ids)  # the cache only needs the ids we feed
    ref = llama_ref.Model(cfg, w, dtype=np.float64).logits(ids, prefill=True)
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "logits.f32")
        run([args.tern, "logits", "-m", args.model, "--ids", " ".join(map(str, ids)), "-o", out])
        got = np.fromfile(out, dtype=np.float32).reshape(len(ids), -1)
    diff = float(np.max(np.abs(got.astype(np.float64) - ref)))
    scale = float(np.max(np.abs(ref)))
    ok = diff <= args.tol
    print(f"logits {os.path.basename(args.model)} ids={ids}: max_abs_diff={diff:.3g} (max |logit| {scale:.3g}, "
          f"argmax tern {got.argmax(-1).tolist()} ref {ref.argmax(-1).tolist()}; tol {args.tol:g}) "
          f"{'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("reader")
    p.add_argument("--file", required=True)
    p.add_argument("--manifest", required=True)
    p = sub.add_parser("bytes")
    p.add_argument("--tern", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--workdir", required=True)
    p = sub.add_parser("logits")
    p.add_argument("--tern", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--ids", default="1 2 3")
    p.add_argument("--tol", type=float, default=1e-3)
    args = ap.parse_args(argv)
    return {"reader": cmd_reader, "bytes": cmd_bytes, "logits": cmd_logits}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
