from __future__ import annotations

import pytest

from madoguchi.kb import queries
from madoguchi.text import embeddings


@pytest.fixture(autouse=True)
def fake_embedder(settings):
    """Tests use a hashed-bigram embedder (instant) and start with empty in-process indexes."""
    settings.MADOGUCHI_EMBEDDER = "madoguchi.kb.tests.fakes.BigramEmbedder"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    embeddings._default = None
    _clear()
    yield
    embeddings._default = None
    _clear()


def _clear() -> None:
    # Test databases reuse primary keys, so every per-process cache keyed by them is dropped.
    for cache in (queries._indexes, queries._versions, queries._terms, queries._priors_at, queries._query_vectors):
        cache.clear()
