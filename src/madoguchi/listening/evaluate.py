"""Per-class precision and recall of the shipped model vs the keyword-rule baseline, on the test split.

    python -m madoguchi.listening.evaluate          # the shipped model on the held-out 40 %
    python -m madoguchi.listening.evaluate --cv     # also 5-fold cross-validation on the training 60 %

The cross-validation is how the model's settings (features, l2) were chosen: it never looks at
the test split, so the held-out figures stay an honest estimate.
"""

from __future__ import annotations

from madoguchi.listening.train import load, split
from madoguchi.listening.triage import KINDS, URGENCY_NAMES, baseline, classify


def report(name: str, gold: list[str], pred: dict[str, list[str]], classes: tuple[str, ...]) -> dict[str, float]:
    print(f"\n{name}: per-class precision / recall (n={len(gold)})")
    print(f"{'class':<11}{'support':>8}" + "".join(f"{m + ' P':>13}{m + ' R':>12}" for m in pred))
    macro: dict[str, float] = {}
    for c in classes:
        row = f"{c:<11}{gold.count(c):>8}"
        for p in pred.values():
            tp = sum(1 for g, x in zip(gold, p, strict=True) if g == x == c)
            prec = tp / max(1, p.count(c))
            rec = tp / max(1, gold.count(c))
            row += f"{prec:>13.2f}{rec:>12.2f}"
        print(row)
    for m, p in pred.items():
        acc = sum(g == x for g, x in zip(gold, p, strict=True)) / len(gold)
        f1s = []
        for c in classes:
            tp = sum(1 for g, x in zip(gold, p, strict=True) if g == x == c)
            prec, rec = tp / max(1, p.count(c)), tp / max(1, gold.count(c))
            f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
        macro[m] = sum(f1s) / len(f1s)
        print(f"  {m}: accuracy {acc:.2f}, macro-F1 {macro[m]:.2f}")
    return macro


def cross_validate(folds: int = 5, *, l2: float = 0.01) -> dict[str, dict[str, float]]:
    """Model (retrained on k-1 folds) vs baseline, k-fold over the training split only."""
    import hashlib

    from madoguchi.listening.triage import LinearModel, features

    train = [i for i in load() if split(i) == "train"]
    fold = [int(hashlib.md5(i["id"].encode()).hexdigest(), 16) % folds for i in train]
    docs = [features(i["text"]) for i in train]
    out = {}
    for target, classes in (("kind", KINDS), ("urgency", URGENCY_NAMES)):
        gold = [i[target] for i in train]
        pred = [""] * len(train)
        for f in range(folds):
            rows = [n for n in range(len(train)) if fold[n] != f]
            model = LinearModel.train([docs[n] for n in rows], [gold[n] for n in rows], l2=l2)
            for n in range(len(train)):
                if fold[n] == f:
                    pred[n] = model.predict(docs[n])
        base = [baseline(i["text"])[0] if target == "kind" else URGENCY_NAMES[baseline(i["text"])[1]] for i in train]
        out[target] = report(f"{target}, {folds}-fold cross-validation on the training split", gold, {"model": pred, "baseline": base}, classes)
    return out


def main() -> dict[str, dict[str, float]]:
    import sys

    if "--cv" in sys.argv[1:]:
        cross_validate()
    test = [i for i in load() if split(i) == "test"]
    model = [classify(i["text"]) for i in test]
    base = [baseline(i["text"]) for i in test]
    out = {
        "kind": report(
            "kind, held-out test split", [i["kind"] for i in test],
            {"model": [k for k, _ in model], "baseline": [k for k, _ in base]}, KINDS,
        ),
        "urgency": report(
            "urgency, held-out test split", [i["urgency"] for i in test],
            {"model": [URGENCY_NAMES[u] for _, u in model], "baseline": [URGENCY_NAMES[u] for _, u in base]},
            URGENCY_NAMES,
        ),
    }
    return out


if __name__ == "__main__":
    main()
