"""Does "good result" mean the search found an answer? On LocalgovFAQ and StackFAQ.

    .venv/bin/python bench/kb_good_result.py [--data ../shared/data]

The knowledge base calls a search's best result "good" or not (`kb/queries.py: _quality`): the
managers' report lists searches with no good result as questions nobody answers, the help site
puts clear answers first, similar conversations and FAQ candidates depend on it. For every dev
query this ranks the corpus twice: as it is (the best result should be good when it is a right
answer), and without the query's right answers (nothing should be good: the customer's question
has no answer here). It prints, for the fixed cutoff used before and the margin over the query's
baseline used now, the share of right first results called good and the share of unanswerable
searches called good. Passage vectors come from kb_eval.py's cache.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import kb_eval  # noqa: E402

from madoguchi.kb.search import analyze  # noqa: E402
from madoguchi.text.embeddings import E5Embedder  # noqa: E402


def judge(name: str, docs, queries, qrels, cache) -> None:
    embedder = E5Embedder()
    index, _ = kb_eval.build(docs, cache, 2, embedder)
    vectors = embedder.embed(queries, kind="query")
    right, unanswerable = [], []  # (cosine, baseline, coverage)
    for q, v, rels in zip(queries, vectors, qrels, strict=True):
        hits = index.search(q, limit=40, query_vector=v)
        baseline = index.dense_baseline(v)
        terms = set(analyze(q))
        if hits and rels.get(hits[0].id, 0) > 0:
            right.append((hits[0].dense, baseline, index.coverage(hits[0].id, terms)))
        wrong = next((h for h in hits if rels.get(h.id, 0) <= 0), None)
        if wrong is not None:  # the best result once the right answers are gone
            unanswerable.append((wrong.dense, baseline, index.coverage(wrong.id, terms)))
    r, u = np.array(right, dtype=float), np.array(unanswerable, dtype=float)
    print(f"\n== {name}: {len(r)} queries with a right first result, {len(u)} made unanswerable")
    print(f"   median cosine of a query to the corpus {np.median(u[:, 1]):.3f}")
    margin = embedder.good_margin  # what kb.queries._quality uses with this embedder
    rules = {
        "before: cosine >= 0.85 or words >= 0.7": lambda x: (x[:, 0] >= 0.85) | (x[:, 2] >= 0.7),
        f"now: cosine >= baseline + {margin}": lambda x: x[:, 0] - x[:, 1] >= margin,
    }
    for label, rule in rules.items():
        print(f"   {label:42s} right answers called good {rule(r).mean():.3f}   unanswerable called good {rule(u).mean():.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "madoguchi-kb-cache")
    args = parser.parse_args()
    kb_eval.ARGS = argparse.Namespace(passage_chars=kb_eval.PASSAGE_CHARS, embedder="e5")
    cache = kb_eval.VectorCache(args.cache, E5Embedder.name)
    judge("LocalgovFAQ", *kb_eval.localgov(args.data), cache)
    judge("StackFAQ", *kb_eval.stackfaq(args.data), cache)


if __name__ == "__main__":
    main()
