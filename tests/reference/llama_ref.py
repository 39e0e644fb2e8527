#!/usr/bin/env python3
"""An independent numpy forward pass for Llama-family models: the oracle tern's logits are checked against.

Written from the model's math (and llama2.c's run.c for the conventions), sharing no code with tern.
Loads llama2.c legacy `.bin` checkpoints and GGUF files (via the `gguf` PyPI package). Computes in float64
by default, so that a comparison measures tern's float32 rounding, not ours; `dtype=np.float32` gives a
float32 run whose distance from the float64 one shows how much float32 noise to expect.

Self-check, no tern needed (greedy 200 tokens from BOS must reproduce llama2.c's output byte for byte):
    .venv/bin/python tests/reference/llama_ref.py --greedy ../shared/models/stories260K/stories260K.bin \
        --tokenizer ../shared/models/stories260K/tok512.bin --steps 200
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field

import numpy as np

BOS = 1


@dataclass
class Config:
    dim: int            # residual stream width
    hidden_dim: int     # SwiGLU inner width
    n_layers: int
    n_heads: int
    n_kv_heads: int     # < n_heads: grouped-query attention; each kv head serves n_heads/n_kv_heads q heads
    vocab_size: int
    seq_len: int        # KV cache capacity
    head_dim: int = 0   # 0: dim // n_heads
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    # How RoPE pairs the dimensions of a head it rotates together:
    #   "adjacent": (2i, 2i+1)            llama2.c, GGUF (llama.cpp permutes HF's Q/K rows into this layout)
    #   "half":     (i, i + head_dim/2)   Hugging Face "rotate_half"
    # Both rotate pair i by the angle pos * theta^(-2i/head_dim).
    rope_pairing: str = "adjacent"

    def __post_init__(self):
        if self.head_dim == 0:
            self.head_dim = self.dim // self.n_heads
        assert self.n_heads % self.n_kv_heads == 0, "n_heads must be a multiple of n_kv_heads"
        assert self.head_dim % 2 == 0, "RoPE needs an even head_dim"
        assert self.rope_pairing in ("adjacent", "half"), self.rope_pairing

    @property
    def q_dim(self):
        return self.n_heads * self.head_dim

    @property
    def kv_dim(self):
        return self.n_kv_heads * self.head_dim


@dataclass
class Weights:
    """Matrices are (out, in), row-major: y = W @ x. Per-layer tensors are stacked on a leading L axis."""
    token_embedding: np.ndarray   # (vocab, dim)
    rms_att: np.ndarray           # (L, dim)
    wq: np.ndarray                # (L, n_heads*head_dim, dim)
    wk: np.ndarray                # (L, n_kv_heads*head_dim, dim)
    wv: np.ndarray                # (L, n_kv_heads*head_dim, dim)
    wo: np.ndarray                # (L, dim, n_heads*head_dim)
    rms_ffn: np.ndarray           # (L, dim)
    w1: np.ndarray                # (L, hidden, dim)   gate
    w2: np.ndarray                # (L, dim, hidden)   down
    w3: np.ndarray                # (L, hidden, dim)   up
    rms_final: np.ndarray         # (dim,)
    wcls: np.ndarray | None = None  # (vocab, dim); None: tied to token_embedding

    def check(self, c: Config):
        L, d, h, v = c.n_layers, c.dim, c.hidden_dim, c.vocab_size
        want = dict(token_embedding=(v, d), rms_att=(L, d), wq=(L, c.q_dim, d), wk=(L, c.kv_dim, d),
                    wv=(L, c.kv_dim, d), wo=(L, d, c.q_dim), rms_ffn=(L, d), w1=(L, h, d), w2=(L, d, h),
                    w3=(L, h, d), rms_final=(d,))
        if self.wcls is not None:
            want["wcls"] = (v, d)
        for name, shape in want.items():
            got = getattr(self, name).shape
            if got != shape:
                raise ValueError(f"weight {name}: shape {got}, expected {shape}")

    def astype(self, dtype) -> "Weights":
        conv = {k: (None if a is None else np.asarray(a, dtype=dtype)) for k, a in self.__dict__.items()}
        return Weights(**conv)


# ----------------------------------------------------------------------------------------------------------
# The forward pass


def rmsnorm(x, w, eps):
    # x: (T, dim), w: (dim,)
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, pos, theta, pairing):
    """Rotates x: (T, n_heads, head_dim) at positions pos: (T,)."""
    hd = x.shape[-1]
    freq = theta ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)        # (hd/2,)
    ang = pos.astype(np.float64)[:, None] * freq[None, :]                 # (T, hd/2)
    cos = np.cos(ang).astype(x.dtype)[:, None, :]                         # (T, 1, hd/2)
    sin = np.sin(ang).astype(x.dtype)[:, None, :]
    if pairing == "adjacent":
        a, b = x[..., 0::2], x[..., 1::2]
    else:
        a, b = x[..., : hd // 2], x[..., hd // 2:]
    ra, rb = a * cos - b * sin, a * sin + b * cos
    out = np.empty_like(x)
    if pairing == "adjacent":
        out[..., 0::2], out[..., 1::2] = ra, rb
    else:
        out[..., : hd // 2], out[..., hd // 2:] = ra, rb
    return out


def silu(x):
    return x / (1.0 + np.exp(-x))


def softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


class Model:
    def __init__(self, cfg: Config, w: Weights, dtype=np.float64):
        w.check(cfg)
        self.c, self.dtype = cfg, dtype
        self.w = w.astype(dtype)
        self.reset()

    def reset(self):
        c = self.c
        # KV cache: (L, seq_len, n_kv_heads, head_dim); positions < self.pos are filled.
        self.k_cache = np.zeros((c.n_layers, c.seq_len, c.n_kv_heads, c.head_dim), self.dtype)
        self.v_cache = np.zeros_like(self.k_cache)
        self.pos = 0

    def forward(self, tokens) -> np.ndarray:
        """Appends tokens (T of them) at positions self.pos.. to the cache; returns logits (T, vocab).
        T = 1 is the decode step; T > 1 is a prefill chunk with a causal mask inside it."""
        c, w = self.c, self.w
        tokens = np.asarray(tokens, dtype=np.int64)
        T, p0 = len(tokens), self.pos
        if p0 + T > c.seq_len:
            raise ValueError(f"sequence of {p0 + T} exceeds seq_len {c.seq_len}")
        pos = np.arange(p0, p0 + T)                                           # (T,)
        S = p0 + T                                                            # keys visible to the last query
        group = c.n_heads // c.n_kv_heads
        # causal mask: query t (at p0+t) sees keys s <= p0+t
        mask = np.where(np.arange(S)[None, :] <= pos[:, None], 0.0, -np.inf).astype(self.dtype)  # (T, S)

        x = w.token_embedding[tokens]                                         # (T, dim)
        for l in range(c.n_layers):
            # attention
            xb = rmsnorm(x, w.rms_att[l], c.norm_eps)                          # (T, dim)
            q = (xb @ w.wq[l].T).reshape(T, c.n_heads, c.head_dim)            # (T, n_heads, hd)
            k = (xb @ w.wk[l].T).reshape(T, c.n_kv_heads, c.head_dim)         # (T, n_kv, hd)
            v = (xb @ w.wv[l].T).reshape(T, c.n_kv_heads, c.head_dim)         # (T, n_kv, hd)
            q = rope(q, pos, c.rope_theta, c.rope_pairing)
            k = rope(k, pos, c.rope_theta, c.rope_pairing)
            self.k_cache[l, p0:S] = k
            self.v_cache[l, p0:S] = v
            # q head h reads kv head h // group
            keys = np.repeat(self.k_cache[l, :S], group, axis=1)              # (S, n_heads, hd)
            vals = np.repeat(self.v_cache[l, :S], group, axis=1)              # (S, n_heads, hd)
            att = np.einsum("thd,shd->hts", q, keys) / np.sqrt(c.head_dim)    # (n_heads, T, S)
            att = softmax(att + mask[None], axis=-1)
            o = np.einsum("hts,shd->thd", att, vals).reshape(T, c.q_dim)      # (T, n_heads*hd)
            x = x + o @ w.wo[l].T                                             # (T, dim)
            # SwiGLU feed-forward: w2(silu(w1 x) * w3 x)
            xb = rmsnorm(x, w.rms_ffn[l], c.norm_eps)
            hb = silu(xb @ w.w1[l].T) * (xb @ w.w3[l].T)                      # (T, hidden)
            x = x + hb @ w.w2[l].T                                            # (T, dim)

        x = rmsnorm(x, w.rms_final, c.norm_eps)
        wcls = w.token_embedding if w.wcls is None else w.wcls
        self.pos = S
        return x @ wcls.T                                                     # (T, vocab)

    def logits(self, tokens, prefill=True) -> np.ndarray:
        """Logits (len(tokens), vocab) from an empty cache: one chunk, or one token at a time."""
        self.reset()
        if prefill:
            return self.forward(tokens)
        return np.concatenate([self.forward([t]) for t in tokens])


# ----------------------------------------------------------------------------------------------------------
# Loaders


def load_llama2c(path) -> tuple[Config, Weights]:
    """llama2.c legacy (v0) checkpoint: 7 int32 header, then float32 tensors in run.c's order."""
    raw = open(path, "rb").read()
    if len(raw) < 28:
        raise ValueError(f"{path}: too short for a llama2.c header")
    hdr = [int(v) for v in np.frombuffer(raw, "<i4", 7)]
    if hdr[0] == 0x616B3432:  # "ak42": the versioned export format
        raise ValueError(f"{path}: versioned llama2.c export (magic ak42) is not the legacy format")
    dim, hidden, L, nh, nkv, vocab, seq = hdr
    shared = vocab > 0
    cfg = Config(dim=dim, hidden_dim=hidden, n_layers=L, n_heads=nh, n_kv_heads=nkv,
                 vocab_size=abs(vocab), seq_len=seq)
    hd, kv, v = cfg.head_dim, cfg.kv_dim, cfg.vocab_size
    f = np.frombuffer(raw, "<f4", offset=28)
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        if off + n > f.size:
            raise ValueError(f"{path}: truncated (need {n} more floats at float offset {off})")
        a = f[off:off + n].reshape(shape)
        off += n
        return a

    tok = take(v, dim)
    rms_att = take(L, dim)
    wq, wk, wv, wo = take(L, dim, dim), take(L, kv, dim), take(L, kv, dim), take(L, dim, dim)
    rms_ffn = take(L, dim)
    w1, w2, w3 = take(L, hidden, dim), take(L, dim, hidden), take(L, hidden, dim)
    rms_final = take(dim)
    take(seq, hd // 2), take(seq, hd // 2)  # freq_cis_real / freq_cis_imag: legacy, unused
    wcls = None if shared else take(v, dim)
    if off != f.size or (len(raw) - 28) % 4:
        raise ValueError(f"{path}: {len(raw) - 28 - 4 * off} trailing bytes")
    return cfg, Weights(tok, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, wcls)


def load_gguf(path) -> tuple[Config, Weights]:
    """GGUF, llama architecture; F32/F16 tensors (other ggml types dequantized by the gguf package)."""
    import gguf

    r = gguf.GGUFReader(path)

    def meta(key, default=None):
        fld = r.fields.get(key)
        return default if fld is None else fld.contents()

    arch = meta("general.architecture")
    if arch != "llama":
        raise ValueError(f"{path}: general.architecture is {arch!r}, expected 'llama'")
    tensors = {t.name: t for t in r.tensors}

    def tensor(name):
        t = tensors.get(name)
        if t is None:
            raise ValueError(f"{path}: missing tensor {name}")
        shape = tuple(int(n) for n in reversed(t.shape))  # GGUF stores ne innermost-first
        if t.tensor_type in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            a = np.asarray(t.data, dtype=np.float32)
        else:
            a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        return a.reshape(shape)

    dim = int(meta("llama.embedding_length"))
    nh = int(meta("llama.attention.head_count"))
    head_dim = int(meta("llama.attention.key_length", dim // nh))
    if int(meta("llama.attention.value_length", head_dim)) != head_dim:
        raise ValueError(f"{path}: value_length != key_length is not supported")
    if int(meta("llama.rope.dimension_count", head_dim)) != head_dim:
        raise ValueError(f"{path}: partial rotary (rope.dimension_count != head_dim) is not supported")
    tok = tensor("token_embd.weight")
    cfg = Config(
        dim=dim,
        hidden_dim=int(meta("llama.feed_forward_length")),
        n_layers=int(meta("llama.block_count")),
        n_heads=nh,
        n_kv_heads=int(meta("llama.attention.head_count_kv", nh)),
        vocab_size=int(meta("llama.vocab_size", tok.shape[0])),
        seq_len=int(meta("llama.context_length")),
        head_dim=head_dim,
        rope_theta=float(meta("llama.rope.freq_base", 10000.0)),
        norm_eps=float(meta("llama.attention.layer_norm_rms_epsilon", 1e-5)),
        rope_pairing="adjacent",
    )
    L = cfg.n_layers

    def stack(suffix):
        return np.stack([tensor(f"blk.{i}.{suffix}.weight") for i in range(L)])

    w = Weights(tok, stack("attn_norm"), stack("attn_q"), stack("attn_k"), stack("attn_v"),
                stack("attn_output"), stack("ffn_norm"), stack("ffn_gate"), stack("ffn_down"),
                stack("ffn_up"), tensor("output_norm.weight"),
                tensor("output.weight") if "output.weight" in tensors else None)
    w.check(cfg)
    return cfg, w


def load(path) -> tuple[Config, Weights]:
    with open(path, "rb") as fh:
        magic = fh.read(4)
    return load_gguf(path) if magic == b"GGUF" else load_llama2c(path)


# ----------------------------------------------------------------------------------------------------------
# llama2.c tokenizer (decode only) and greedy generation, for the self-check


def load_llama2c_vocab(path) -> list[bytes]:
    """tokenizer.bin: int32 max_token_length, then per token: float32 score, int32 len, len bytes."""
    raw = open(path, "rb").read()
    off, pieces = 4, []
    while off < len(raw):
        (n,) = np.frombuffer(raw, "<i4", 1, off + 4)
        pieces.append(raw[off + 8: off + 8 + int(n)])
        off += 8 + int(n)
    return pieces


_BYTE_PIECE = re.compile(rb"<0x([0-9A-Fa-f]{2})>")


def decode_piece(pieces, prev, tok) -> bytes:
    """As llama2.c's decode + safe_printf: drop the leading space after BOS, <0xXX> is a raw byte,
    a lone unprintable byte prints nothing."""
    p = pieces[tok]
    if prev == BOS and p.startswith(b" "):
        p = p[1:]
    m = _BYTE_PIECE.match(p)
    if m:
        p = bytes([int(m.group(1), 16)])
    if len(p) == 1 and not (0x20 <= p[0] < 0x7F or p[0] in b" \t\n\v\f\r"):
        return b""
    return p


def greedy(model: Model, steps: int, prompt=(BOS,)) -> list[int]:
    """llama2.c `generate` with temperature 0: returns the tokens it prints (stops early at BOS)."""
    model.reset()
    out, token = [], prompt[0]
    for pos in range(steps):
        logits = model.forward([token])[0]
        nxt = prompt[pos + 1] if pos + 1 < len(prompt) else int(np.argmax(logits))
        if nxt == BOS:
            break
        out.append(nxt)
        token = nxt
    return out


def greedy_text(model: Model, pieces, steps: int) -> bytes:
    toks = greedy(model, steps)
    prev, text = BOS, b""
    for t in toks:
        text += decode_piece(pieces, prev, t)
        prev = t
    return text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--greedy", metavar="MODEL", required=True, help="llama2.c .bin or GGUF")
    ap.add_argument("--tokenizer", required=True, help="llama2.c tokenizer .bin (e.g. tok512.bin)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--expect", help="file the output must equal byte for byte")
    ap.add_argument("--float32", action="store_true", help="compute in float32 instead of float64")
    a = ap.parse_args(argv)
    cfg, w = load(a.greedy)
    text = greedy_text(Model(cfg, w, np.float32 if a.float32 else np.float64),
                       load_llama2c_vocab(a.tokenizer), a.steps)
    sys.stdout.buffer.write(text + b"\n")
    if a.expect:
        ok = text == open(a.expect, "rb").read()
        print("MATCH" if ok else "MISMATCH", file=sys.stderr)
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
