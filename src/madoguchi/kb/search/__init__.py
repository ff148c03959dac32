"""The knowledge-base retrieval engine: one small interface over lexical, dense and fused search.

    index = SearchIndex(embedder)            # or SearchIndex(None) for lexical only
    index.add([Doc(id=1, title=..., body=..., lang="ja")], vectors=...)
    hits = index.search("返品したい", limit=10, lang="ja")   # [Hit(id, score, lexical, dense)]

It knows nothing about Django: kb.queries feeds it published articles and caches one per
workspace; bench/kb_eval.py feeds it the evaluation corpora.
"""

from madoguchi.kb.search.analysis import analyze, index_terms, passage_text
from madoguchi.kb.search.engine import Doc, Hit, SearchIndex

__all__ = ["Doc", "Hit", "SearchIndex", "analyze", "index_terms", "passage_text"]
