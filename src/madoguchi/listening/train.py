"""Train the shipped triage model from the labelled set: `python -m madoguchi.listening.train`.

Only the training split is used (see `split`), so `python -m madoguchi.listening.evaluate` measures
the shipped model on posts it has never seen. The settings below were chosen by cross-validation
on the training split (`evaluate --cv`), never on the test split.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from madoguchi.listening.triage import MODEL_PATH, LinearModel, Models, features, kind_extra

EVAL_PATH = Path(__file__).parent / "eval" / "posts.jsonl"
# Kind probabilities as urgency features (stacking): 0 = off. See bench/README.md, "Triage
# quality", for what cross-validation said about it.
STACK_KIND = 0.0
L2 = 0.01


def load() -> list[dict]:
    return [json.loads(line) for line in EVAL_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]


def split(item: dict) -> str:
    """A stable 60/40 train/test split by id."""
    return "test" if int(hashlib.sha256(item["id"].encode()).hexdigest(), 16) % 10 < 4 else "train"


def train_models(items: list[dict], docs: list[list[str]], *, stack_kind: float = STACK_KIND, l2: float = L2) -> Models:
    """Kind and urgency models from labelled items and their features.

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
    return Models(kind_model, urgency_model, stack_kind)


def main() -> None:
    train = [i for i in load() if split(i) == "train"]
    models = train_models(train, [features(i["text"]) for i in train])
    MODEL_PATH.parent.mkdir(exist_ok=True)
    payload = {"trained_on": len(train), **models.to_json()}
    MODEL_PATH.write_text(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    print(f"trained on {len(train)} posts -> {MODEL_PATH} ({MODEL_PATH.stat().st_size // 1024} kB)")


if __name__ == "__main__":
    main()
