"""A tiny deterministic embedder for tests: hashed character bigrams, no model to load."""

from __future__ import annotations

import hashlib

import numpy as np

from madoguchi.text.normalize import normalize


class BigramEmbedder:
    name = "test-bigrams"
    dim = 64
    # Hashed bigrams spread cosines far wider than e5: unrelated questions share a few bigrams
    # (0.2-0.45), paraphrases most (0.75-0.95).
    unrelated_cosine = 0.4
    good_margin = 0.25

    def embed(self, texts: list[str], kind: str = "passage") -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            t = normalize(text)
            for i in range(len(t) - 1):
                h = int.from_bytes(hashlib.md5(t[i : i + 2].encode()).digest()[:4], "little")
                out[row, h % self.dim] += 1.0
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
        return out
