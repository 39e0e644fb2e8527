#!/usr/bin/env python3
"""`tern convert` writes a Hugging Face folder's tokenizer as GGUF metadata that gguf-py reads back.

Builds a folder from a fixture's weights (tests/golden/hf/llama_gqa_tied) and a real tokenizer from
../shared/models (symlinks, in --workdir), runs `tern convert`, then reads the output with the `gguf` package
and checks the tokenizer keys against tokenizer.json / tokenizer_config.json, read independently here:
tokenizer.ggml.model/pre, tokens in id order, token types (added special tokens are control = 3), merges in
rank order as "a b", bos/eos ids and the chat template. Exit code 0 on success, 77 (skip) when the shared
tokenizers are absent.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import gguf

CASES = [("llama3-tokenizer", "gpt2", "llama-bpe"), ("qwen2-tokenizer", "gpt2", "qwen2"),
         ("mistral-v0.3", "llama", None)]


def field(reader, key):
    f = reader.fields.get(key)
    if f is None:
        return None
    if f.types[0] == gguf.GGUFValueType.ARRAY:
        if f.types[-1] == gguf.GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        return [f.parts[i][0].item() for i in f.data]
    if f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8")
    return f.parts[f.data[0]][0].item()


def check(tern, src, work, name, model, pre, fixture):
    folder = os.path.join(work, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for f in os.listdir(fixture):
        os.symlink(os.path.join(fixture, f), os.path.join(folder, f))
    for f in ("tokenizer.json", "tokenizer_config.json"):
        if os.path.exists(os.path.join(src, f)):
            os.symlink(os.path.join(src, f), os.path.join(folder, f))
    out = folder + ".gguf"
    res = subprocess.run([tern, "convert", folder, out], capture_output=True, text=True)
    if res.returncode != 0:
        return [f"{name}: tern convert failed: {res.stderr.strip()}"]

    tj = json.load(open(os.path.join(src, "tokenizer.json"), encoding="utf-8"))
    cfg_path = os.path.join(src, "tokenizer_config.json")
    cfg = json.load(open(cfg_path, encoding="utf-8")) if os.path.exists(cfg_path) else {}
    r = gguf.GGUFReader(out)
    errors = []

    def expect(what, got, want):
        if got != want:
            errors.append(f"{name}: {what}: got {str(got)[:120]!r}, expected {str(want)[:120]!r}")

    expect("tokenizer.ggml.model", field(r, "tokenizer.ggml.model"), model)
    if pre:
        expect("tokenizer.ggml.pre", field(r, "tokenizer.ggml.pre"), pre)
    vocab = dict(tj["model"]["vocab"])
    added = {a["id"]: a for a in tj.get("added_tokens", [])}
    n = max(list(vocab.values()) + list(added)) + 1
    by_id = {i: f"[PAD{i}]" for i in range(n)}
    for t, i in vocab.items():
        by_id[i] = t
    for i, a in added.items():
        if i not in vocab.values():
            by_id[i] = a["content"]
    tokens = field(r, "tokenizer.ggml.tokens")
    expect("token count", len(tokens), n)
    expect("tokens", tokens, [by_id[i] for i in range(n)])
    types = field(r, "tokenizer.ggml.token_type")
    unk = tj["model"].get("unk_token")
    for i, a in added.items():
        if types[i] != (2 if a["content"] == unk else 3 if a["special"] else 4):
            errors.append(f"{name}: token {i} {a['content']!r}: type {types[i]}")
            break
    if model == "gpt2":
        merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
        expect("merges", field(r, "tokenizer.ggml.merges"), merges)
    else:
        expect("scores present", len(field(r, "tokenizer.ggml.scores")), n)

    def token_of(key):
        v = cfg.get(key)
        return v.get("content") if isinstance(v, dict) else v

    for key, gkey in (("bos_token", "tokenizer.ggml.bos_token_id"), ("eos_token", "tokenizer.ggml.eos_token_id")):
        t = token_of(key)
        got = field(r, gkey)
        if t:
            want = next((i for i, a in added.items() if a["content"] == t), vocab.get(t))
            expect(gkey, got, want)
    if isinstance(cfg.get("chat_template"), str):
        expect("tokenizer.chat_template", field(r, "tokenizer.chat_template"), cfg["chat_template"])
    print(f"{name}: {len(tokens)} tokens, model {model}" + (f", pre {pre}" if pre else "") +
          (": OK" if not errors else f": {len(errors)} problem(s)"))
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tern", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--source", required=True, help="the project root")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--cases", default=",".join(c[0] for c in CASES),
                    help="comma-separated tokenizer folders to check (default: all)")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    fixture = os.path.abspath(os.path.join(args.source, "tests/golden/hf/llama_gqa_tied"))
    errors, ran = [], 0
    for name, model, pre in CASES:
        if name not in args.cases.split(","):
            continue
        src = os.path.join(args.shared, "models", name)
        if not os.path.exists(os.path.join(src, "tokenizer.json")):
            print(f"{name}: not present in {args.shared}/models, skipped")
            continue
        ran += 1
        errors += check(args.tern, src, args.workdir, name, model, pre, fixture)
    for e in errors:
        print(e)
    if ran == 0:  # a failure under CI=true, where ../shared is always there
        return 1 if os.environ.get("CI") == "true" else 77
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
