"""Train the shipped triage model from the labelled set: `python -m madoguchi.listening.train`.

Only the training split is used (see `split`), so `python -m madoguchi.listening.evaluate` measures
the shipped model on posts it has never seen. The settings below were chosen by cross-validation
on the training split (`evaluate --cv`), never on the test split.

The dense urgency model (`triage.DenseUrgency`) needs each post's sentence embedding. They are
kept in `eval/embeddings.npz` (float16, with the embedder's name and a hash of each text) so
that evaluation and tests need not embed 900 posts again; a post whose text or embedder changed
is embedded anew (`vectors`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from madoguchi.listening.triage import (
    EMBED_KIND,
    MODEL_PATH,
    DenseUrgency,
    LinearModel,
    Models,
    features,
    kind_extra,
)

EVAL_PATH = Path(__file__).parent / "eval" / "posts.jsonl"
VECTORS_PATH = Path(__file__).parent / "eval" / "embeddings.npz"
# Kind probabilities as urgency features (stacking): 0 = off. See bench/README.md, "Triage
# quality", for what cross-validation said about it.
STACK_KIND = 0.0
L2 = 0.01
# Scale of the centred embedding features of the dense urgency model (mean row norm after
# centring). Cross-validation on the training split: 1 / 2 / 3 gave +0.028 / +0.048 / +0.065
# macro-F1 over the keyword rules (bench/README.md, "Triage quality").
EMBED_SCALE = 3.0


def load() -> list[dict]:
    return [json.loads(line) for line in EVAL_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]


def split(item: dict) -> str:
    """A stable 60/40 train/test split by id."""
    return "test" if int(hashlib.sha256(item["id"].encode()).hexdigest(), 16) % 10 < 4 else "train"


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def vectors(items: list[dict], *, save: bool = False) -> list[list[float]]:
    """Sentence embeddings of the items' texts (EMBED_KIND side), from `eval/embeddings.npz`
    where the embedder and text match, else computed now (and written back with `save`)."""
    import numpy as np

    from madoguchi.text.embeddings import get_embedder

    embedder = get_embedder()
    cached: dict[str, np.ndarray] = {}
    if VECTORS_PATH.exists():
        with np.load(VECTORS_PATH) as data:
            if str(data["embedder"]) == embedder.name:
                cached = dict(zip((str(k) for k in data["keys"]), data["vectors"], strict=True))
    keys = [_text_key(i["text"]) for i in items]
    missing = sorted({k: i["text"] for k, i in zip(keys, items, strict=True) if k not in cached}.items())
    if missing:
        fresh = embedder.embed([t for _, t in missing], EMBED_KIND)
        cached.update({k: v.astype(np.float16) for (k, _), v in zip(missing, fresh, strict=True)})
        if save:
            order = sorted(cached)
            np.savez_compressed(
                VECTORS_PATH, embedder=np.array(embedder.name), keys=np.array(order),
                vectors=np.stack([cached[k] for k in order]).astype(np.float16),
            )
    return [cached[k].astype(np.float32).tolist() for k in keys]


def train_dense(docs: list[list[str]], urgencies: list[str], vecs: list[list[float]], *, l2: float = L2) -> DenseUrgency:
    """The dense urgency model: sparse features plus the centred, scaled embedding."""
    import numpy as np

    from madoguchi.text.embeddings import get_embedder

    x = np.asarray(vecs, dtype=np.float64)
    center = x.mean(axis=0)
    norm = float(np.linalg.norm(x - center, axis=1).mean()) or 1.0
    dense = DenseUrgency(LinearModel([], [], {}), [round(float(c), 6) for c in center], norm, EMBED_SCALE, get_embedder().name)
    model = LinearModel.train(docs, urgencies, extra=[dense.extra(v) for v in vecs], l2=l2)
    return DenseUrgency(model, dense.center, dense.norm, dense.scale, dense.embedder)


def train_models(
    items: list[dict],
    docs: list[list[str]],
    *,
    stack_kind: float = STACK_KIND,
    l2: float = L2,
    vecs: list[list[float]] | None = None,
) -> Models:
    """Kind and urgency models from labelled items and their features (and, with `vecs`, the
    items' embeddings: the dense urgency model too).

    With stacking, the urgency model learns from kind probabilities predicted out of fold (three
    folds inside `items`), so it sees the kind model as it behaves on unseen posts.
    """
    kinds = [i["kind"] for i in items]
    kind_model = LinearModel.train(docs, kinds, l2=l2)
    extra: list[dict[str, float]] | None = None
    if stack_kind:
        extra = [{} for _ in items]
        for k in range(3):
            rows = [n for n in range(len(items)) if n % 3 != k]
            inner = LinearModel.train([docs[n] for n in rows], [kinds[n] for n in rows], l2=l2)
            for n in range(k, len(items), 3):
                extra[n] = kind_extra(inner, docs[n], stack_kind)
    urgency_model = LinearModel.train(docs, [i["urgency"] for i in items], extra=extra, l2=l2)
    dense = train_dense(docs, [i["urgency"] for i in items], vecs, l2=l2) if vecs is not None else None
    return Models(kind_model, urgency_model, stack_kind, dense)


def main() -> None:
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "madoguchi.config.settings")
    django.setup()
    items = load()
    vectors(items, save=True)  # the whole set, so evaluation finds the test posts' vectors too
    train = [i for i in items if split(i) == "train"]
    models = train_models(train, [features(i["text"]) for i in train], vecs=vectors(train))
    MODEL_PATH.parent.mkdir(exist_ok=True)
    payload = {"trained_on": len(train), **models.to_json()}
    MODEL_PATH.write_text(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    print(f"trained on {len(train)} posts -> {MODEL_PATH} ({MODEL_PATH.stat().st_size // 1024} kB)")


if __name__ == "__main__":
    main()
