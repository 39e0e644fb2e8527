#!/usr/bin/env python3
"""Regenerates tests/golden/spm_cases.json: Llama 2 tokenizer golden cases from the `sentencepiece` library.

Usage (from the repository root):
    .venv/bin/python tests/reference/make_spm_golden.py \
        --model ../shared/models/llama2-tokenizer/tokenizer.model \
        --out tests/golden/spm_cases.json

Each case records the text, the ids SentencePiece gives without and with BOS, and SentencePiece's own decode of
those ids. The corpus lives in this file (CORPUS below, plus a few generated cases) so that one file says what is
tested. The output is deterministic: same corpus and sentencepiece version -> same bytes.
"""

import argparse
import json
import random
import sys

import sentencepiece as spm

# Hand-written cases, grouped by what they exercise. Keep texts valid Unicode (no lone surrogates): the
# C++ tests read them as UTF-8.
CORPUS = [
    # Empty and whitespace: the dummy prefix is added only to non-empty text; runs of spaces are kept.
    "",
    " ",
    "  ",
    "   ",
    "    ",
    "         ",
    "a",
    " a",
    "a ",
    " a ",
    "  a  ",
    "hello world",
    "hello  world",
    "hello   world",
    "hello    world",
    "   leading spaces",
    "trailing spaces   ",
    "\n",
    "\n\n",
    "line one\nline two",
    "line one\n\nline two\n",
    "\tindented with a tab",
    "tabs\tbetween\twords",
    "mixed \t \n whitespace",
    "\r\n windows line ending\r\n",
    "\u00a0non-breaking\u00a0space",
    "ideographic\u3000space",
    "em\u2003space and thin\u2009space",
    "zero\u200bwidth\u200djoiner",
    # Plain English and prompts.
    "I believe the meaning of life is",
    "The quick brown fox jumps over the lazy dog.",
    "Once upon a time, there was a little girl named Lily.",
    "She loved to play outside in the sunshine.",
    "Hello, how are you doing today?",
    "It's a beautiful day, isn't it?",
    "Don't stop believing!",
    "UPPERCASE TEXT AND lowercase text And Title Case",
    "supercalifragilisticexpialidocious",
    "antidisestablishmentarianism",
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    "Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch",
    # Digits and numbers.
    "0",
    "42",
    "1234567890",
    "3.14159265358979",
    "-273.15",
    "1,000,000",
    "1e-10",
    "0x1F 0b1010 0o17",
    "phone: +1 (555) 123-4567",
    "2024-01-15T12:34:56Z",
    "The year 1969 and the year 2001.",
    "12 apples + 34 oranges = 46 fruits",
    # Punctuation and symbols.
    "!",
    "?!?!",
    "...",
    "Hello... world!!!",
    "\"quoted\" and 'single' and `backtick`",
    "(parentheses) [brackets] {braces} <angles>",
    "a/b\\c|d",
    "~!@#$%^&*()_+-=",
    "email@example.com",
    "https://www.example.com/path?query=value&x=1#frag",
    "50% off! $19.99 \u20ac5 \u00a33 \u00a5100",
    "\u201csmart quotes\u201d \u2018single\u2019 \u2014 em dash \u2013 en dash \u2026",
    "\u00a9 \u00ae \u2122 \u00b0 \u00b1 \u00d7 \u00f7",
    "<s>not a control token</s>",
    "<unk> <0x0A> <0xFF>",
    "[INST] hello [/INST]",
    # Code.
    "def main():\n    print('hello')\n",
    "int main(int argc, char** argv) {\n  return 0;\n}",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
    "if x == 1:\n\tpass\nelif x != 2:\n\t\treturn None",
    "const std::vector<int>& ids = tok.encode(text);",
    "SELECT * FROM users WHERE id = 42;",
    "<html><body><p class=\"x\">Hi</p></body></html>",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
    "x = lambda y: y ** 2  # square",
    "    four spaces\n        eight spaces\n",
    # Accented Latin, composed and decomposed.
    "caf\u00e9",
    "cafe\u0301",
    "na\u00efve r\u00e9sum\u00e9 fa\u00e7ade",
    "\u00c0 bient\u00f4t, gar\u00e7on!",
    "Stra\u00dfe \u00fcber \u00e4\u00f6\u00fc \u00c4\u00d6\u00dc",
    "\u00bfQu\u00e9 tal? \u00a1Muy bien!",
    "ma\u00f1ana el ni\u00f1o",
    "\u0141\u00f3d\u017a Krak\u00f3w \u017bycie",
    "\u010ce\u0161tina \u0159e\u0161\u00ed",
    "Pha\u0323m \u0111\u01b0\u1ee3c Vi\u1ec7t Nam",
    "\u00de\u00f3r \u00f0 \u00e6 \u00f8 \u00e5",
    # Non-Latin scripts.
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!",
    "\u0417\u0434\u0440\u0430\u0432\u0441\u0442\u0432\u0443\u0439\u0442\u0435",
    "\u0393\u03b5\u03b9\u03b1 \u03c3\u03bf\u03c5 \u03ba\u03cc\u03c3\u03bc\u03b5",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u0634\u0643\u0631\u0627\u064b \u062c\u0632\u064a\u0644\u0627\u064b",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "\u0939\u093f\u0928\u094d\u0926\u0940 \u092d\u093e\u0937\u093e",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a",
    "\u10d2\u10d0\u10db\u10d0\u10e0\u10ef\u10dd\u10d1\u10d0",
    "\u0532\u0561\u0580\u0565\u0582",
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01",
    "\u6211\u7231\u5317\u4eac\u5929\u5b89\u95e8",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002",
    "\u3053\u3093\u306b\u3061\u306f \u30ab\u30bf\u30ab\u30ca",
    "\uc548\ub155\ud558\uc138\uc694 \uc138\uacc4",
    "\u9f98\u9f49\u7228",
    "\U00020000\U00020001 rare CJK extension B",
    "\u13a0\u13a1\u13a2 Cherokee",
    "\u1200\u1208\u121d Ethiopic",
    "\u0f40\u0f41\u0f42 Tibetan",
    # Emoji and other astral characters (byte fallback).
    "\U0001f600",
    "I love \U0001f999 llamas \U0001f999\U0001f999",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family",
    "\U0001f1eb\U0001f1f7 flag",
    "\U0001f44d\U0001f3fd thumbs",
    "\u2764\ufe0f heart",
    "\U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522",
    "\U00010348 gothic",
    "\U0010fffd last plane",
    # Control characters and rare code points.
    "\x00",
    "a\x00b",
    "\x01\x02\x03\x07\x1b[0m",
    "\x7f delete",
    "\ufeffbyte order mark",
    "\ufffd replacement",
    "\u2581 lower one eighth block",
    "\u2581\u2581\u2581",
    "private \ue000 use",
    "\uffff noncharacter",
    # Mixed.
    "English, \u0440\u0443\u0441\u0441\u043a\u0438\u0439, \u4e2d\u6587, \u0627\u0644\u0639\u0631\u0628\u064a\u0629 and \U0001f30d",
    "Temperature: 23\u00b0C (73\u00b0F) \u2014 sunny \u2600\ufe0f",
    "A brief message congratulating the team on the launch:\n\n        Hi everyone,\n\n        I just ",
    "Translate English to French:\n\n        sea otter => loutre de mer\n        cheese =>",
    "Q: What is 2+2?\nA: 4\n\nQ: What is the capital of France?\nA: Paris",
    "[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\nWrite a poem. [/INST]",
]


def generated_cases():
    """Longer cases built from a fixed seed: very long words, long whitespace runs, random mixtures."""
    out = [
        "a" * 300,
        "ab" * 200,
        "the " * 100,
        " " * 64,
        "\n" * 20,
        "word " * 50 + "end",
        "x" * 17 + " " * 17 + "y" * 17,
        "\u00e9" * 40,
        "\u4e2d" * 40,
        "\U0001f999" * 10,
    ]
    rng = random.Random(20240115)
    alphabet = (
        list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        + list(" \n\t.,;:!?'\"()-_")
        + ["\u00e9", "\u00fc", "\u00f1", "\u0436", "\u03bb", "\u4e2d", "\u6587", "\u0639", "\u05d0", "\u0915"]
        + ["\U0001f600", "\U0001f999", "\u2603", "\u00a0", "\u3000"]
    )
    for n in (5, 10, 20, 40, 80, 160, 320, 640):
        out.append("".join(rng.choice(alphabet) for _ in range(n)))
    words = "the of and to in is was that for on with as by at from it this be are or an".split()
    for n in (10, 50, 200):
        out.append(" ".join(rng.choice(words) for _ in range(n)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="SentencePiece tokenizer.model (Llama 2)")
    ap.add_argument("--out", required=True, help="where to write the JSON golden file")
    args = ap.parse_args()

    sp = spm.SentencePieceProcessor(model_file=args.model)
    texts = CORPUS + generated_cases()
    seen = set()
    cases = []
    for text in texts:
        if text in seen:
            sys.exit(f"duplicate case {text!r}")
        seen.add(text)
        ids = sp.encode(text)
        ids_bos = sp.encode(text, add_bos=True)
        cases.append({"text": text, "ids": ids, "ids_bos": ids_bos, "decoded": sp.decode(ids)})

    doc = {
        "about": "Llama 2 tokenizer golden cases from the sentencepiece library; regenerate with "
        "tests/reference/make_spm_golden.py (see its header). 'ids' without BOS, 'ids_bos' with BOS, "
        "'decoded' is sentencepiece's decode of 'ids'.",
        "sentencepiece_version": spm.__version__,
        "bos_id": sp.bos_id(),
        "eos_id": sp.eos_id(),
        "cases": cases,
    }
    with open(args.out, "w", encoding="utf-8") as f:
        # One case per line keeps diffs readable when the corpus changes.
        f.write("{\n")
        for key in ("about", "sentencepiece_version", "bos_id", "eos_id"):
            f.write(f" {json.dumps(key)}: {json.dumps(doc[key], ensure_ascii=False)},\n")
        f.write(' "cases": [\n')
        for i, c in enumerate(cases):
            sep = "," if i + 1 < len(cases) else ""
            f.write("  " + json.dumps(c, ensure_ascii=False) + sep + "\n")
        f.write(" ]\n}\n")
    print(f"wrote {len(cases)} cases to {args.out}")


if __name__ == "__main__":
    main()
