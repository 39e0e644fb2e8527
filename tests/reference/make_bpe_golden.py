#!/usr/bin/env python3
"""Regenerates tests/golden/bpe_cases/*.json: token ids from the reference tokenizers on the corpus in
bpe_corpus.py, for tern's byte-level BPE and tokenizer.json loaders (tests/unit/test_bpe.cpp,
tests/unit/test_chat_tokens.cpp).

Two references, each in its own venv (see tests/reference/requirements-tok.txt):

  # Hugging Face `tokenizers` / `transformers`: llama3.json, qwen2.json, mistral-v0.3.json, chat.json,
  # and smollm2_hf.json (SmolLM2's vocabulary rebuilt as a tokenizer.json from its GGUF)
  .venv-hf/bin/python tests/reference/make_bpe_golden.py hf \
      --shared ../shared --gguf models/SmolLM2-135M-Instruct.Q4_1.gguf --out tests/golden/bpe_cases

  # llama.cpp through llama-cpp-python: smollm2.json (SmolLM2-135M-Instruct's GGUF tokenizer, invalid UTF-8
  # included, and its ChatML prompts)
  .venv-llama/bin/python tests/reference/make_bpe_golden.py llama \
      --gguf models/SmolLM2-135M-Instruct.Q4_1.gguf --out tests/golden/bpe_cases

Each case holds the text, "ids" without special-token parsing (HF: encode_special_tokens=True, llama.cpp:
special=False) and, only where they differ, "ids_special" with it (HF's default, llama.cpp special=True); no
BOS/EOS. Byte strings that are not UTF-8 are stored as "hex". The output is deterministic.
"""

import argparse
import hashlib
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe_corpus  # noqa: E402

CHATS = [
    {"messages": [{"role": "user", "content": "This is a test sentence."}]},
    {"messages": [{"role": "system", "content": "You are a helpful assistant."},
                  {"role": "user", "content": "What is the capital of France?"}]},
    {"messages": [{"role": "user", "content": "Hi!"},
                  {"role": "assistant", "content": "Hello! How can I help?"},
                  {"role": "user", "content": "Tell me a joke."}]},
    {"messages": [{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "Hi"},
                  {"role": "assistant", "content": "Hello."},
                  {"role": "user", "content": "Bye \u2014 \u00e0 bient\u00f4t \U0001f44b"}]},
    {"messages": [{"role": "user", "content": "  spaces around  "}]},
    {"messages": [{"role": "user", "content": "Line one\nLine two\n\n12345 + 678"}]},
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_doc(path, header, cases, extra_lists=()):
    """One case per line keeps diffs readable when the corpus changes."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n")
        for k, v in header.items():
            f.write(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)},\n")
        for name, items in extra_lists:
            f.write(f' {json.dumps(name)}: [\n')
            for i, c in enumerate(items):
                f.write("  " + json.dumps(c, ensure_ascii=False) + ("," if i + 1 < len(items) else "") + "\n")
            f.write(" ],\n")
        f.write(' "cases": [\n')
        for i, c in enumerate(cases):
            f.write("  " + json.dumps(c, ensure_ascii=False) + ("," if i + 1 < len(cases) else "") + "\n")
        f.write(" ]\n}\n")
    print(f"wrote {len(cases)} cases to {path}")


def case(text, ids, ids_special):
    c = {"text": text, "ids": ids}
    if ids_special != ids:
        c["ids_special"] = ids_special
    return c


# ---------------------------------------------------------------------------------------------------------
# A minimal GGUF metadata reader (no dependency on the gguf package): enough for the tokenizer keys.

def read_gguf_metadata(path):
    with open(path, "rb") as f:
        data = f.read(64 << 20)  # metadata sits at the start; 64 MiB is far more than any vocabulary needs
    off = 0

    def take(fmt):
        nonlocal off
        v = struct.unpack_from("<" + fmt, data, off)
        off += struct.calcsize("<" + fmt)
        return v[0]

    def string():
        nonlocal off
        n = take("Q")
        s = data[off:off + n].decode("utf-8", errors="surrogateescape")
        off += n
        return s

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et = take("I")
            n = take("Q")
            return [value(et) for _ in range(n)]
        return take(scalar[t])

    if data[:4] != b"GGUF":
        raise SystemExit(f"{path}: not a GGUF file")
    off = 4
    take("I")  # version
    take("Q")  # tensor count
    n_kv = take("Q")
    kv = {}
    for _ in range(n_kv):
        k = string()
        kv[k] = value(take("I"))
    return kv


# ---------------------------------------------------------------------------------------------------------

def hf_cases(tok, texts):
    from tokenizers import Tokenizer  # noqa: F401
    cases = []
    for text in texts:
        tok.encode_special_tokens = True
        ids = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = False
        ids_special = tok.encode(text, add_special_tokens=False).ids
        cases.append(case(text, ids, ids_special))
    return cases


def smollm2_hf_tokenizer(gguf_path):
    """SmolLM2's tokenizer.json as Hugging Face builds it: BPE with the GGUF's vocabulary and merges,
    Digits(individual) then ByteLevel(use_regex) pre-tokenizer, ByteLevel decoder, its 17 special tokens."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    kv = read_gguf_metadata(gguf_path)
    tokens = kv["tokenizer.ggml.tokens"]
    types = kv["tokenizer.ggml.token_type"]
    merges = [tuple(m.split(" ", 1)) for m in kv["tokenizer.ggml.merges"]]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3])
    return tok


def run_hf(args):
    import tokenizers
    import transformers
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    texts = bpe_corpus.all_texts()
    os.makedirs(args.out, exist_ok=True)
    version = f"tokenizers {tokenizers.__version__}"
    for name, folder in (("llama3", "llama3-tokenizer"), ("qwen2", "qwen2-tokenizer"), ("mistral-v0.3", "mistral-v0.3")):
        path = os.path.join(args.shared, "models", folder, "tokenizer.json")
        tok = Tokenizer.from_file(path)
        header = {
            "about": f"Golden ids of ../shared/models/{folder}/tokenizer.json from Hugging Face tokenizers; "
                     "regenerate with tests/reference/make_bpe_golden.py (see its header). 'ids': special tokens "
                     "in the text not parsed (encode_special_tokens=True); 'ids_special', only where different: "
                     "parsed (the library's default). No BOS/EOS.",
            "reference": version,
            "tokenizer": f"models/{folder}/tokenizer.json",
            "sha256": sha256(path),
        }
        write_doc(os.path.join(args.out, f"{name}.json"), header, hf_cases(tok, texts))

    # The same Mistral vocabulary in the older Llama 2 style of tokenizer.json: a Prepend("▁") + Replace(" ", "▁")
    # normalizer instead of the Metaspace pre-tokenizer (every fragment between added tokens gets the "▁").
    path = os.path.join(args.shared, "models", "mistral-v0.3", "tokenizer.json")
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    doc["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
    doc["pre_tokenizer"] = None
    header = {
        "about": "Golden ids of ../shared/models/mistral-v0.3/tokenizer.json with its Metaspace pre-tokenizer "
                 "replaced by a Prepend + Replace normalizer (the Llama 2 style of tokenizer.json), from Hugging "
                 "Face tokenizers; regenerate with tests/reference/make_bpe_golden.py.",
        "reference": version,
        "tokenizer": "models/mistral-v0.3/tokenizer.json (normalizer and pre_tokenizer replaced)",
        "sha256": sha256(path),
    }
    write_doc(os.path.join(args.out, "mistral-v0.3-prepend.json"), header,
              hf_cases(Tokenizer.from_str(json.dumps(doc)), texts))

    if args.gguf and os.path.exists(args.gguf):
        tok = smollm2_hf_tokenizer(args.gguf)
        header = {
            "about": "Golden ids of SmolLM2-135M-Instruct's vocabulary rebuilt as a Hugging Face tokenizer "
                     "(BPE, Digits(individual_digits) + ByteLevel(use_regex) pre-tokenizer) from "
                     "models/SmolLM2-135M-Instruct.Q4_1.gguf, by Hugging Face tokenizers; compare smollm2.json "
                     "(llama.cpp on the same GGUF). Regenerate with tests/reference/make_bpe_golden.py.",
            "reference": version,
            "gguf": "models/SmolLM2-135M-Instruct.Q4_1.gguf",
            "sha256": sha256(args.gguf),
        }
        write_doc(os.path.join(args.out, "smollm2_hf.json"), header, hf_cases(tok, texts))

    # Chat prompts: the model's own Jinja template through transformers, tokenized as apply_chat_template
    # does (special tokens parsed, no BOS added beyond what the template writes).
    chats = []
    for name, folder in (("llama3", "llama3-tokenizer"), ("qwen2", "qwen2-tokenizer"), ("mistral", "mistral-v0.3")):
        tok = AutoTokenizer.from_pretrained(os.path.join(args.shared, "models", folder))
        for c in CHATS:
            for gen in (True, False):
                text = tok.apply_chat_template(c["messages"], tokenize=False, add_generation_prompt=gen)
                if not gen and chats[-1]["text"] == text:
                    continue  # the template ignores add_generation_prompt
                ids = tok.apply_chat_template(c["messages"], tokenize=True, add_generation_prompt=gen)
                if isinstance(ids, dict) or hasattr(ids, "keys"):
                    ids = ids["input_ids"]
                chats.append({"tokenizer": folder, "template": name, "messages": c["messages"],
                              "add_generation_prompt": gen, "text": text, "ids": list(ids)})
    header = {
        "about": "Chat prompts rendered by each model's own Jinja chat template and tokenized by transformers' "
                 "apply_chat_template(tokenize=True); regenerate with tests/reference/make_bpe_golden.py.",
        "reference": f"transformers {transformers.__version__}, {version}",
    }
    write_doc(os.path.join(args.out, "chat.json"), header, chats)


def run_llama(args):
    import jinja2
    import llama_cpp
    from llama_cpp import Llama

    llm = Llama(model_path=args.gguf, vocab_only=True, verbose=False)

    def tok(b, special):
        return llm.tokenize(b, add_bos=False, special=special)

    cases = [case(t, tok(t.encode("utf-8"), False), tok(t.encode("utf-8"), True)) for t in bpe_corpus.all_texts()]
    invalid = []
    for b in bpe_corpus.INVALID_UTF8:
        c = {"hex": b.hex(), "ids": tok(b, False)}
        s = tok(b, True)
        if s != c["ids"]:
            c["ids_special"] = s
        invalid.append(c)

    kv = read_gguf_metadata(args.gguf)
    template = jinja2.Environment().from_string(kv["tokenizer.chat_template"])
    chats = []
    for c in CHATS:
        for gen in (True, False):
            text = template.render(messages=c["messages"], add_generation_prompt=gen)
            chats.append({"template": "chatml", "messages": c["messages"], "add_generation_prompt": gen,
                          "text": text, "ids": tok(text.encode("utf-8"), True)})
    header = {
        "about": "Golden ids of SmolLM2-135M-Instruct's GGUF tokenizer (gpt2 model, pre 'smollm') from llama.cpp "
                 "via llama-cpp-python (tokenize(add_bos=False, special=False/True)); 'invalid' holds byte "
                 "strings that are not UTF-8, as hex; 'chat' holds prompts rendered by the GGUF's own chat "
                 "template (jinja2) and tokenized with special=True. Regenerate with "
                 "tests/reference/make_bpe_golden.py (see its header).",
        "reference": f"llama-cpp-python {llama_cpp.__version__}",
        "gguf": "models/SmolLM2-135M-Instruct.Q4_1.gguf",
        "sha256": sha256(args.gguf),
    }
    write_doc(os.path.join(args.out, "smollm2.json"), header, cases, (("invalid", invalid), ("chat", chats)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("backend", choices=["hf", "llama"])
    ap.add_argument("--shared", default="../shared", help="the shared folder holding models/")
    ap.add_argument("--gguf", default="models/SmolLM2-135M-Instruct.Q4_1.gguf", help="SmolLM2 GGUF")
    ap.add_argument("--out", default="tests/golden/bpe_cases")
    args = ap.parse_args()
    if args.backend == "hf":
        run_hf(args)
    else:
        run_llama(args)


if __name__ == "__main__":
    main()
