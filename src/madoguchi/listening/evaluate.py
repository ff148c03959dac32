"""Per-class precision and recall of the shipped model vs the keyword-rule baseline, on the test split.

    python -m madoguchi.listening.evaluate              # the shipped model on the held-out 40 %
    python -m madoguchi.listening.evaluate --cv         # also 5-fold cross-validation on the training 60 %
    python -m madoguchi.listening.evaluate --cv --repeats 4   # ... repeated with 4 different fold draws
    python -m madoguchi.listening.evaluate --cv --no-test     # cross-validation only, test split untouched

The cross-validation is how the model's settings (features, l2) were chosen: it never looks at
the test split, so the held-out figures stay an honest estimate. It prints, besides the pooled
per-class table, the macro-F1 of model and baseline fold by fold and the spread of their
difference: a gain smaller than that spread is noise, not a gain.

For urgency, "model" is the verdict a captured post ends with: the dense model over sparse
features and the sentence embedding (`triage.DenseUrgency`, applied in the background by
`listening.tasks.refine_urgency`); "inline" is the sparse model alone, what a post carries
between its capture and that refinement.
"""

from __future__ import annotations

import hashlib
import statistics

from madoguchi.listening.train import load, split, vectors
from madoguchi.listening.triage import KINDS, URGENCY_NAMES, baseline, classify, features, predict


def macro_f1(gold: list[str], pred: list[str], classes: tuple[str, ...]) -> float:
    f1s = []
    for c in classes:
        tp = sum(1 for g, x in zip(gold, pred, strict=True) if g == x == c)
        prec, rec = tp / max(1, pred.count(c)), tp / max(1, gold.count(c))
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return sum(f1s) / len(f1s)


def report(name: str, gold: list[str], pred: dict[str, list[str]], classes: tuple[str, ...]) -> dict[str, float]:
    """Per-class precision / recall, accuracy, macro-F1 and a confusion matrix for each predictor."""
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
        macro[m] = macro_f1(gold, p, classes)
        print(f"  {m}: accuracy {acc:.2f}, macro-F1 {macro[m]:.2f}")
    for m, p in pred.items():
        print(f"  {m} confusion (rows gold, columns predicted):")
        print(f"  {'':<11}" + "".join(f"{c[:9]:>10}" for c in classes))
        for g in classes:
            counts = [sum(1 for a, b in zip(gold, p, strict=True) if a == g and b == c) for c in classes]
            print(f"  {g:<11}" + "".join(f"{n:>10}" for n in counts))
    return macro


def _label(target: str, verdict: tuple[str, int]) -> str:
    return verdict[0] if target == "kind" else URGENCY_NAMES[verdict[1]]


def cross_validate(folds: int = 5, *, repeats: int = 1) -> dict[str, dict[str, float]]:
    """Model (retrained on k-1 folds) vs baseline, k-fold over the training split only.

    With `repeats` > 1 the folds are drawn again with another salt. Returns, per target, the mean
    macro-F1 over all folds of model and baseline, and the standard deviation of their per-fold
    difference ("spread").
    """
    from madoguchi.listening.train import train_models

    train = [i for i in load() if split(i) == "train"]
    docs = [features(i["text"]) for i in train]
    vecs = vectors(train)
    base = [baseline(i["text"]) for i in train]
    golds = {t: [i[t] for i in train] for t in ("kind", "urgency")}
    per_fold: dict[str, dict[str, list[float]]] = {t: {"model": [], "baseline": []} for t in golds}
    pooled: dict[str, list[str]] = {t: [] for t in golds}
    pooled_gold: dict[str, list[str]] = {t: [] for t in golds}
    pooled_base: dict[str, list[str]] = {t: [] for t in golds}
    pooled_inline: list[str] = []
    inline_fold: list[float] = []
    for r in range(repeats):
        salt = "" if r == 0 else f"repeat{r}:"
        fold = [int(hashlib.md5((salt + i["id"]).encode()).hexdigest(), 16) % folds for i in train]
        for f in range(folds):
            rows = [n for n in range(len(train)) if fold[n] != f]
            held = [n for n in range(len(train)) if fold[n] == f]
            models = train_models([train[n] for n in rows], [docs[n] for n in rows], vecs=[vecs[n] for n in rows])
            verdicts = [predict(models, docs[n], vecs[n]) for n in held]
            inline = [URGENCY_NAMES[predict(models, docs[n])[1]] for n in held]
            pooled_inline.extend(inline)
            inline_fold.append(macro_f1([golds["urgency"][n] for n in held], inline, URGENCY_NAMES))
            for t, classes in (("kind", KINDS), ("urgency", URGENCY_NAMES)):
                gold = [golds[t][n] for n in held]
                mine = [_label(t, v) for v in verdicts]
                theirs = [_label(t, base[n]) for n in held]
                per_fold[t]["model"].append(macro_f1(gold, mine, classes))
                per_fold[t]["baseline"].append(macro_f1(gold, theirs, classes))
                pooled[t] += mine
                pooled_gold[t] += gold
                pooled_base[t] += theirs
    out: dict[str, dict[str, float]] = {}
    for t, classes in (("kind", KINDS), ("urgency", URGENCY_NAMES)):
        predictors = {"model": pooled[t], "baseline": pooled_base[t]}
        if t == "urgency":
            predictors["inline"] = pooled_inline
        report(
            f"{t}, {folds}-fold cross-validation on the training split" + (f" x{repeats}" if repeats > 1 else ""),
            pooled_gold[t], predictors, classes,
        )
        m, b = per_fold[t]["model"], per_fold[t]["baseline"]
        diff = [x - y for x, y in zip(m, b, strict=True)]
        spread = statistics.pstdev(diff)
        won = sum(d > 0 for d in diff)
        print(
            f"  per fold: model macro-F1 {statistics.mean(m):.3f} ± {statistics.pstdev(m):.3f}, "
            f"baseline {statistics.mean(b):.3f} ± {statistics.pstdev(b):.3f}, "
            f"difference {statistics.mean(diff):+.3f} ± {spread:.3f} (model ahead in {won} of {len(diff)} folds)"
        )
        out[t] = {"model": statistics.mean(m), "baseline": statistics.mean(b), "spread": spread}
        if t == "urgency":
            diff = [x - y for x, y in zip(inline_fold, b, strict=True)]
            print(
                f"  inline (sparse model alone): macro-F1 {statistics.mean(inline_fold):.3f}, difference to baseline "
                f"{statistics.mean(diff):+.3f} ± {statistics.pstdev(diff):.3f} (ahead in {sum(d > 0 for d in diff)} of {len(diff)} folds)"
            )
    return out


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    import os
    import sys

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "madoguchi.config.settings")
    django.setup()
    args = sys.argv[1:] if argv is None else argv
    if "--cv" in args:
        repeats = int(args[args.index("--repeats") + 1]) if "--repeats" in args else 1
        cross_validate(repeats=repeats)
    if "--no-test" in args:
        return {}
    from madoguchi.listening.triage import _models

    test = [i for i in load() if split(i) == "test"]
    model = [predict(_models(), features(i["text"]), v) for i, v in zip(test, vectors(test), strict=True)]
    inline = [classify(i["text"]) for i in test]
    base = [baseline(i["text"]) for i in test]
    out = {
        "kind": report(
            "kind, held-out test split", [i["kind"] for i in test],
            {"model": [k for k, _ in model], "baseline": [k for k, _ in base]}, KINDS,
        ),
        "urgency": report(
            "urgency, held-out test split", [i["urgency"] for i in test],
            {
                "model": [URGENCY_NAMES[u] for _, u in model], "baseline": [URGENCY_NAMES[u] for _, u in base],
                "inline": [URGENCY_NAMES[u] for _, u in inline],
            },
            URGENCY_NAMES,
        ),
    }
    return out


if __name__ == "__main__":
    main()
