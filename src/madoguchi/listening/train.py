"""Train the shipped triage model from the labelled set: `python -m madoguchi.listening.train`.

Only the training split is used (see `split`), so `python -m madoguchi.listening.evaluate` measures
the shipped model on posts it has never seen.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from madoguchi.listening.triage import MODEL_PATH, LinearModel, features

EVAL_PATH = Path(__file__).parent / "eval" / "posts.jsonl"


def load() -> list[dict]:
    return [json.loads(line) for line in EVAL_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]


def split(item: dict) -> str:
    """A stable 60/40 train/test split by id."""
    return "test" if int(hashlib.sha256(item["id"].encode()).hexdigest(), 16) % 10 < 4 else "train"


def main() -> None:
    train = [i for i in load() if split(i) == "train"]
    docs = [features(i["text"]) for i in train]
    model = {
        "trained_on": len(train),
        "kind": LinearModel.train(docs, [i["kind"] for i in train]).to_json(),
        "urgency": LinearModel.train(docs, [i["urgency"] for i in train]).to_json(),
    }
    MODEL_PATH.parent.mkdir(exist_ok=True)
    MODEL_PATH.write_text(json.dumps(model, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    print(f"trained on {len(train)} posts -> {MODEL_PATH} ({MODEL_PATH.stat().st_size // 1024} kB)")


if __name__ == "__main__":
    main()
