#!/usr/bin/env python3
"""Writes small seeded random-weight Llama models, one per shape/format corner tern must get right.

    .venv/bin/python tests/reference/make_models.py --workdir build/reference_work

Each model is written to WORKDIR/<name>.bin or .gguf. `make_all()` also returns the weights exactly as the
reference should use them (for model d: the Hugging Face layout, before the llama.cpp Q/K permutation), so a
test can compute reference logits without going through any file reader. Generated files are never committed.

Scales: embeddings std 0.2 (1.5/sqrt(dim) when tied) times a per-row factor in [10^-2.5, 1], matrices std 1/sqrt(fan_in), norm weights 1 +- 0.1, classifier std 1.5/sqrt(dim):
activations stay O(1), attention is far from uniform and logits spread over a few units.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, replace

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_ref import Config, Weights  # noqa: E402


@dataclass(frozen=True)
class Spec:
    name: str
    fmt: str                  # "llama2c" or "gguf"
    cfg: Config               # as the reference runs it (rope_pairing "half" for the HF-layout model)
    seed: int
    tied: bool = False        # classifier shares token_embedding
    f16: bool = False         # GGUF: 2-D matrices stored as F16 (norms stay F32, as llama.cpp does)
    hf_layout: bool = False   # weights are HF "rotate_half" layout; the GGUF gets llama.cpp's Q/K permutation
    write_head_dim: bool = False  # GGUF: write llama.attention.key_length/value_length
    n_ids: int = 48           # token ids the test feeds
    note: str = ""

    @property
    def path_suffix(self):
        return ".bin" if self.fmt == "llama2c" else ".gguf"


SPECS = [
    # (a) llama2.c checkpoint, GQA ratio 4, head_dim 32, separate classifier (negative vocab in the header)
    Spec("a_llama2c_gqa4_sepcls", "llama2c",
         Config(dim=256, hidden_dim=344, n_layers=2, n_heads=8, n_kv_heads=2, vocab_size=320, seq_len=128),
         seed=101, note="llama2.c .bin, 8 q heads / 2 kv heads, head_dim 32, separate wcls"),
    # (b) GGUF F32, tied classifier, plain multi-head attention, Llama-3 rope theta, eps 1e-6
    Spec("b_gguf_f32_tied_mha_theta500k", "gguf",
         Config(dim=128, hidden_dim=320, n_layers=2, n_heads=4, n_kv_heads=4, vocab_size=384, seq_len=128,
                rope_theta=500000.0, norm_eps=1e-6),
         seed=102, tied=True, note="GGUF F32, tied output, n_heads == n_kv_heads, theta 5e5, eps 1e-6"),
    # (c) GGUF with F16 matrices (token_embd and output too), separate output.weight, GQA 2, head_dim 16
    Spec("c_gguf_f16_gqa2_sepout", "gguf",
         Config(dim=128, hidden_dim=352, n_layers=3, n_heads=8, n_kv_heads=4, vocab_size=448, seq_len=128),
         seed=103, f16=True, note="GGUF F16 matrices, separate output.weight, GQA 2, head_dim 16"),
    # (d) HF-layout weights ("half" RoPE pairing) converted the way llama.cpp's converter does: permuted Q/K
    Spec("d_gguf_hf_permuted_qk", "gguf",
         Config(dim=128, hidden_dim=288, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=300, seq_len=128,
                rope_pairing="half"),
         seed=104, hf_layout=True,
         note="GGUF from an HF rotate_half model via llama.cpp's Q/K row permutation; reference runs 'half'"),
    # (e) head_dim (32) != dim / n_heads (16): llama.attention.key_length / value_length
    Spec("e_gguf_head_dim_key_length", "gguf",
         Config(dim=64, hidden_dim=176, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=272, seq_len=128,
                head_dim=32),
         seed=105, write_head_dim=True, note="GGUF with key_length 32 while dim/n_heads is 16"),
]


def random_weights(cfg: Config, seed: int, tied: bool) -> Weights:
    rng = np.random.default_rng(seed)
    L, d, h, v = cfg.n_layers, cfg.dim, cfg.hidden_dim, cfg.vocab_size

    def mat(*shape):  # (..., out, in), std 1/sqrt(in)
        return (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)

    def norm(*shape):
        return (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)

    # a tied classifier is the embedding itself, so it takes the classifier's scale
    tok = (1.5 / np.sqrt(d) if tied else 0.2) * rng.standard_normal((v, d))
    # Rows spread over 2.5 decades, so some tokens enter the first RMSNorm with a mean square near eps:
    # a wrong eps then moves their logits well beyond the test's tolerance.
    tok = (tok * 10.0 ** rng.uniform(-2.5, 0.0, (v, 1))).astype(np.float32)
    w = Weights(
        token_embedding=tok, rms_att=norm(L, d),
        wq=mat(L, cfg.q_dim, d), wk=mat(L, cfg.kv_dim, d), wv=mat(L, cfg.kv_dim, d), wo=mat(L, d, cfg.q_dim),
        rms_ffn=norm(L, d), w1=mat(L, h, d), w2=mat(L, d, h), w3=mat(L, h, d), rms_final=norm(d),
        wcls=None if tied else (1.5 / np.sqrt(d) * rng.standard_normal((v, d))).astype(np.float32),
    )
    w.check(cfg)
    return w


def round_f16(w: Weights) -> Weights:
    """The weights a reader of F16 storage sees: every 2-D+ matrix rounded to float16 (norm vectors kept)."""
    def r(a):
        return None if a is None else a.astype(np.float16).astype(np.float32)
    return replace(w, token_embedding=r(w.token_embedding), wq=r(w.wq), wk=r(w.wk), wv=r(w.wv), wo=r(w.wo),
                   w1=r(w.w1), w2=r(w.w2), w3=r(w.w3), wcls=r(w.wcls))


def hf_to_gguf_permute(w: np.ndarray, n_heads: int) -> np.ndarray:
    """llama.cpp convert_hf_to_gguf's Q/K permutation, (out, in) -> (out, in): within each head, row
    j*hd/2 + i (HF: pair (i, i+hd/2)) moves to row 2i + j (GGUF: adjacent pair (2i, 2i+1))."""
    out, inp = w.shape
    return w.reshape(n_heads, 2, out // n_heads // 2, inp).swapaxes(1, 2).reshape(out, inp)


def write_llama2c(path, cfg: Config, w: Weights):
    assert cfg.head_dim == cfg.dim // cfg.n_heads and cfg.rope_pairing == "adjacent"
    assert cfg.rope_theta == 10000.0 and cfg.norm_eps == 1e-5, "llama2.c .bin cannot carry theta/eps"
    vocab = cfg.vocab_size if w.wcls is None else -cfg.vocab_size
    hdr = np.array([cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, vocab, cfg.seq_len],
                   "<i4")
    hd = cfg.head_dim
    ang = np.arange(cfg.seq_len)[:, None] * 10000.0 ** (-np.arange(0, hd, 2) / hd)[None, :]  # legacy freq_cis
    parts = [w.token_embedding, w.rms_att, w.wq, w.wk, w.wv, w.wo, w.rms_ffn, w.w1, w.w2, w.w3, w.rms_final,
             np.cos(ang), np.sin(ang)] + ([] if w.wcls is None else [w.wcls])
    with open(path, "wb") as f:
        f.write(hdr.tobytes())
        for a in parts:
            f.write(np.ascontiguousarray(a, "<f4").tobytes())


def write_gguf(path, spec: Spec, cfg: Config, w: Weights):
    import gguf

    wr = gguf.GGUFWriter(path, "llama")  # adds general.architecture
    wr.add_name(spec.name)
    wr.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if spec.f16 else gguf.LlamaFileType.ALL_F32)
    wr.add_context_length(cfg.seq_len)
    wr.add_embedding_length(cfg.dim)
    wr.add_block_count(cfg.n_layers)
    wr.add_feed_forward_length(cfg.hidden_dim)
    wr.add_head_count(cfg.n_heads)
    wr.add_head_count_kv(cfg.n_kv_heads)
    wr.add_rope_freq_base(cfg.rope_theta)
    wr.add_layer_norm_rms_eps(cfg.norm_eps)
    wr.add_rope_dimension_count(cfg.head_dim)
    wr.add_vocab_size(cfg.vocab_size)
    if spec.write_head_dim:
        wr.add_key_length(cfg.head_dim)
        wr.add_value_length(cfg.head_dim)
    # A minimal SentencePiece-style vocabulary, so a loader that insists on one is satisfied.
    TT = gguf.TokenType
    toks = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [TT.UNKNOWN, TT.CONTROL, TT.CONTROL] + [TT.BYTE] * 256
    assert cfg.vocab_size >= len(toks)
    toks += [f"\u2581t{i}" for i in range(cfg.vocab_size - len(toks))]
    types += [TT.NORMAL] * (cfg.vocab_size - len(types))
    wr.add_tokenizer_model("llama")
    wr.add_token_list(toks)
    wr.add_token_scores([-float(i) for i in range(cfg.vocab_size)])
    wr.add_token_types(types)
    wr.add_bos_token_id(1)
    wr.add_eos_token_id(2)
    wr.add_unk_token_id(0)

    mat_t = np.float16 if spec.f16 else np.float32

    def add(name, a, is_matrix=True):
        wr.add_tensor(name, np.ascontiguousarray(a, mat_t if is_matrix else np.float32))

    add("token_embd.weight", w.token_embedding)
    for i in range(cfg.n_layers):
        wq, wk = w.wq[i], w.wk[i]
        if spec.hf_layout:
            wq, wk = hf_to_gguf_permute(wq, cfg.n_heads), hf_to_gguf_permute(wk, cfg.n_kv_heads)
        add(f"blk.{i}.attn_norm.weight", w.rms_att[i], False)
        add(f"blk.{i}.attn_q.weight", wq)
        add(f"blk.{i}.attn_k.weight", wk)
        add(f"blk.{i}.attn_v.weight", w.wv[i])
        add(f"blk.{i}.attn_output.weight", w.wo[i])
        add(f"blk.{i}.ffn_norm.weight", w.rms_ffn[i], False)
        add(f"blk.{i}.ffn_gate.weight", w.w1[i])
        add(f"blk.{i}.ffn_down.weight", w.w2[i])
        add(f"blk.{i}.ffn_up.weight", w.w3[i])
    add("output_norm.weight", w.rms_final, False)
    if w.wcls is not None:
        add("output.weight", w.wcls)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()


def token_ids(spec: Spec) -> list[int]:
    """BOS, then seeded ids over the whole vocabulary."""
    rng = np.random.default_rng(spec.seed + 1000)
    return [1] + [int(t) for t in rng.integers(0, spec.cfg.vocab_size, spec.n_ids - 1)]


def make(spec: Spec, workdir) -> tuple[str, Config, Weights]:
    """Writes one model; returns (path, cfg, weights as the reference uses them)."""
    cfg = spec.cfg
    w = random_weights(cfg, spec.seed, spec.tied)
    if spec.f16:
        w = round_f16(w)
    path = os.path.join(workdir, spec.name + spec.path_suffix)
    if spec.fmt == "llama2c":
        write_llama2c(path, cfg, w)
    else:
        write_gguf(path, spec, cfg, w)
        # GGUF stores eps and theta as float32: the model is what the file says
        cfg = replace(cfg, norm_eps=float(np.float32(cfg.norm_eps)), rope_theta=float(np.float32(cfg.rope_theta)))
    return path, cfg, w


def make_all(workdir):
    os.makedirs(workdir, exist_ok=True)
    return [(spec,) + make(spec, workdir) for spec in SPECS]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args(argv)
    for spec, path, _, _ in make_all(a.workdir):
        print(f"{path}  ({os.path.getsize(path)} bytes)  {spec.note}")
        print("  ids:", " ".join(map(str, token_ids(spec))))


if __name__ == "__main__":
    main()
