"""Triage of a captured post: language, kind, sentiment, urgency, influence and priority.

Kind and urgency come from a small logistic-regression model over the post's search tokens
(Latin words, Japanese character bigrams) plus lexicon signals (`lexicon.SIGNALS`) and the keyword rules' own verdict. The model is
trained by `python -m madoguchi.listening.train` from the training half of the labelled set in
`eval/posts.jsonl` and shipped as `model/triage.json` (a few hundred kB of weights):
CPU only, nothing downloaded at run time. A linear model of our own instead of scikit-learn: the
scoring is ten lines, and it spares the project scipy and a pickled model tied to one library
version. `baseline` is the keyword-rule classifier the model must beat (see eval/README.md).
`Models` can also feed the kind model's probabilities to the urgency model (stacking,
`train.STACK_KIND`); cross-validation found no gain from it, so the shipped model has it off
(bench/README.md, "Triage quality").

Urgency is decided in two steps. Inline, at capture, the sparse model above (microseconds a
post, so the ingest path keeps its 10,000 posts/s). Then `listening.tasks.refine_urgency`, in
the background, re-scores recent captured posts with `DenseUrgency`: the same features plus the
post's sentence embedding (`madoguchi.text.embeddings`, multilingual, CPU), which is the urgency
classifier that beats the keyword rules (eval/README.md, bench/README.md). Embedding costs tens
of milliseconds a post, far too slow for the ingest path, hence the second step.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from madoguchi.listening.lexicon import HIGH_SIGNALS, MEDIUM_SIGNALS, SIGNALS
from madoguchi.listening.matcher import Matcher, RuleSpec
from madoguchi.text.normalize import detect_language, normalize, search_tokens

if TYPE_CHECKING:
    from collections.abc import Sequence

MODEL_PATH = Path(__file__).parent / "model" / "triage.json"
KINDS = ("question", "complaint", "request", "praise", "other", "spam")
URGENCY_NAMES = ("low", "medium", "high")
_URL_RE = re.compile(r"https?://\S+")
_CAPS_RE = re.compile(r"\b[A-Z]{4,}\b")


@cache
def _signal_matcher() -> Matcher:
    return Matcher.build(
        RuleSpec(id=i, name=name, any_of=terms) for i, (name, terms) in enumerate(SIGNALS.items())
    )


def signals(text: str) -> set[str]:
    """The lexicon signals present in a post ("outage", "anger", ...)."""
    found = {hit.rule_name for hit in _signal_matcher().match(text)}
    if _CAPS_RE.search(text) and len(_CAPS_RE.findall(text)) >= 2:
        found.add("anger")
    if _URL_RE.search(text):
        found.add("url")
    return found


def features(text: str) -> list[str]:
    """What the model sees: tokens of the text without links and handles, and its signals."""
    bare = _URL_RE.sub(" ", text)
    bare = re.sub(r"@\w+", " ", bare)
    tokens = search_tokens(bare)
    found = signals(text)
    tokens.extend(f"sig:{s}" for s in sorted(found))
    kind, urgency = _rules(found)
    tokens.extend((f"rule-kind:{kind}", f"rule-urgency:{urgency}"))
    return tokens


class LinearModel:
    """Multinomial logistic regression over binary features, stored as plain JSON.

    Scoring is a sum of per-feature weights, so it needs no numerical library at run time;
    `train` (build time only) uses numpy.
    """

    def __init__(self, classes: list[str], bias: list[float], weights: dict[str, list[float]]):
        self.classes = classes
        self.bias = bias
        self.weights = weights

    @classmethod
    def train(
        cls,
        docs: list[list[str]],
        labels: list[str],
        *,
        extra: list[dict[str, float]] | None = None,
        l2: float = 0.01,
        epochs: int = 400,
        rate: float = 0.5,
    ) -> LinearModel:
        """`docs`: binary features; `extra`: real-valued ones (a feature absent from a dict is 0)."""
        import numpy as np

        classes = sorted(set(labels))
        extras = extra or [{} for _ in docs]
        vocab = sorted({t for d in docs for t in d} | {t for e in extras for t in e})
        index = {t: i for i, t in enumerate(vocab)}
        x = np.zeros((len(docs), len(vocab)))
        for row, doc in enumerate(docs):
            for t in set(doc):
                x[row, index[t]] = 1.0
            for t, v in extras[row].items():
                x[row, index[t]] = v
        y = np.zeros((len(docs), len(classes)))
        for row, label in enumerate(labels):
            y[row, classes.index(label)] = 1.0
        # Balanced class weights: rare kinds (spam, praise) must not be drowned by complaints.
        weight = (len(labels) / (len(classes) * y.sum(axis=0)))[None, :] * y
        sample_weight = weight.sum(axis=1, keepdims=True)
        w = np.zeros((len(vocab), len(classes)))
        b = np.zeros(len(classes))
        for _ in range(epochs):
            z = x @ w + b
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            g = (p - y) * sample_weight / len(docs)
            w -= rate * (x.T @ g + l2 * w)
            b -= rate * g.sum(axis=0)
        weights = {t: [round(float(v), 4) for v in w[i]] for t, i in index.items() if np.abs(w[i]).max() > 1e-3}
        return cls(classes, [round(float(v), 4) for v in b], weights)

    def scores(self, doc: list[str], extra: dict[str, float] | None = None) -> list[float]:
        out = list(self.bias)
        for t in set(doc):
            ws = self.weights.get(t)
            if ws is not None:
                for i, v in enumerate(ws):
                    out[i] += v
        for t, x in (extra or {}).items():
            ws = self.weights.get(t)
            if ws is not None:
                for i, v in enumerate(ws):
                    out[i] += v * x
        return out

    def probabilities(self, doc: list[str], extra: dict[str, float] | None = None) -> list[float]:
        s = self.scores(doc, extra)
        top = max(s)
        e = [math.exp(v - top) for v in s]
        return [v / sum(e) for v in e]

    def predict(self, doc: list[str], extra: dict[str, float] | None = None) -> str:
        s = self.scores(doc, extra)
        return self.classes[max(range(len(s)), key=s.__getitem__)]

    def to_json(self) -> dict:
        return {"classes": self.classes, "bias": self.bias, "weights": self.weights}

    @classmethod
    def from_json(cls, data: dict) -> LinearModel:
        return cls(data["classes"], data["bias"], data["weights"])


# The embedding side ("query" or "passage") the dense urgency model was trained on.
EMBED_KIND: Literal["query", "passage"] = "query"


@dataclass(frozen=True)
class DenseUrgency:
    """Urgency from the post's sparse features plus its sentence embedding.

    The embedding is centred on the training posts' mean and divided by their mean distance to
    it, then multiplied by `scale`, and fed to the linear model as 384 real-valued features
    ("emb:<i>"). Only valid for vectors of the embedder it was trained with (`embedder`).
    """

    model: LinearModel
    center: list[float]
    norm: float
    scale: float
    embedder: str

    def extra(self, vector: Sequence[float]) -> dict[str, float]:
        k = self.scale / self.norm
        return {f"emb:{j}": k * (float(x) - c) for j, (x, c) in enumerate(zip(vector, self.center, strict=True))}

    def predict(self, doc: list[str], vector: Sequence[float]) -> int:
        return URGENCY_NAMES.index(self.model.predict(doc, self.extra(vector)))

    def to_json(self) -> dict:
        return {
            "model": self.model.to_json(), "center": self.center, "norm": self.norm,
            "scale": self.scale, "embedder": self.embedder,
        }

    @classmethod
    def from_json(cls, data: dict) -> DenseUrgency:
        return cls(LinearModel.from_json(data["model"]), data["center"], data["norm"], data["scale"], data["embedder"])


@dataclass(frozen=True)
class Models:
    """The kind and urgency models, and how urgency uses the kind model (see train.py)."""

    kind: LinearModel
    urgency: LinearModel
    # Weight of the kind model's class probabilities as real-valued urgency features
    # ("kind-p:<kind>"); 0 when the urgency model was trained without them.
    stack_kind: float = 0.0
    # The background (refining) urgency model; None when trained without embeddings.
    urgency_dense: DenseUrgency | None = None

    def to_json(self) -> dict:
        out = {"kind": self.kind.to_json(), "urgency": self.urgency.to_json(), "stack_kind": self.stack_kind}
        if self.urgency_dense is not None:
            out["urgency_dense"] = self.urgency_dense.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict) -> Models:
        dense = DenseUrgency.from_json(data["urgency_dense"]) if data.get("urgency_dense") else None
        return cls(
            LinearModel.from_json(data["kind"]), LinearModel.from_json(data["urgency"]), data.get("stack_kind", 0.0), dense
        )


def kind_extra(kind_model: LinearModel, doc: list[str], scale: float) -> dict[str, float]:
    """The kind model's probabilities as urgency features, or nothing when stacking is off."""
    if not scale:
        return {}
    return {f"kind-p:{c}": scale * p for c, p in zip(kind_model.classes, kind_model.probabilities(doc), strict=True)}


def predict(models: Models, doc: list[str], vector: Sequence[float] | None = None) -> tuple[str, int]:
    """Kind and urgency level of a post's features under `models`; with the post's embedding
    (`vector`) and a dense model, urgency comes from the dense model (the refined verdict)."""
    if vector is not None and models.urgency_dense is not None:
        return models.kind.predict(doc), models.urgency_dense.predict(doc, vector)
    urgency = models.urgency.predict(doc, kind_extra(models.kind, doc, models.stack_kind))
    return models.kind.predict(doc), URGENCY_NAMES.index(urgency)


@cache
def _models() -> Models:
    return Models.from_json(json.loads(MODEL_PATH.read_text(encoding="utf-8")))


def classify(text: str) -> tuple[str, int]:
    """Kind and urgency level (0 low, 1 medium, 2 high) from the shipped model."""
    return predict(_models(), features(text))


def refined_urgencies(texts: list[str]) -> list[int] | None:
    """Urgency levels of `texts` from the shipped dense model (sentence embeddings), or None
    when the shipped model has none or was trained with another embedder than the current one."""
    from madoguchi.text.embeddings import get_embedder

    dense = _models().urgency_dense
    embedder = get_embedder()
    if dense is None or embedder.name != dense.embedder:
        return None
    vectors = embedder.embed(texts, EMBED_KIND)
    return [dense.predict(features(t), v.tolist()) for t, v in zip(texts, vectors, strict=True)]


def baseline(text: str) -> tuple[str, int]:
    """The keyword-rule classifier: lexicon signals only, in a fixed order of precedence."""
    return _rules(signals(text))


def _rules(found: set[str]) -> tuple[str, int]:
    if "spam" in found and "url" in found:
        kind = "spam"
    elif found & {"outage", "anger", "legal", "safety", "security", "negative", "cancel"}:
        kind = "complaint"
    elif "question" in found:
        kind = "question"
    elif "request" in found:
        kind = "request"
    elif "thanks" in found:
        kind = "praise"
    else:
        kind = "other"
    urgency = 2 if found & set(HIGH_SIGNALS) else 1 if found & set(MEDIUM_SIGNALS) else 0
    return kind, urgency


def sentiment(text: str, kind: str) -> float:
    """-1 (negative) .. 1 (positive), from lexicon signals and the kind."""
    found = signals(text)
    positive = ("thanks" in found) + (kind == "praise")
    negative = sum(s in found for s in ("negative", "anger", "outage", "legal", "safety")) + (kind == "complaint")
    if positive == negative == 0:
        return 0.0
    return round((positive - negative) / (positive + negative), 2)


def influence(followers: int | None, *, verified: bool = False, engagement: float = 0.0) -> int:
    """A Klout-like 0-100 score of the author's reach.

    reach      up to 60: 60 * log10(1 + followers) / 7, so 10 followers ~9, 10k ~34, 10M = 60
    verified   15 for a platform's verified mark
    engagement up to 25: 25 * log10(1 + e) / 4, where e is the average likes + reposts + replies
               per post (10 ~6, 100 ~12, 10k = 25)
    """
    reach = 60 * min(1.0, math.log10(1 + max(0, followers or 0)) / 7)
    engaged = 25 * min(1.0, math.log10(1 + max(0.0, engagement)) / 4)
    return max(0, min(100, round(reach + (15 if verified else 0) + engaged)))


def priority(urgency: int, influence_score: int, kind: str) -> int:
    """Urgency first, influence second (KDDI's order); spam and mere chatter sink."""
    if kind == "spam":
        return 0
    return urgency * 1000 + influence_score * 5 + (0 if kind == "other" else 1)


@dataclass(frozen=True)
class Triage:
    """Every field a captured post carries."""

    language: str
    kind: str
    urgency: int
    sentiment: float
    influence: int
    priority: int


def triage(
    text: str,
    *,
    language: str = "",
    followers: int | None = None,
    verified: bool = False,
    engagement: float = 0.0,
    repeats: int = 0,
) -> Triage:
    """Triage one post. `repeats`: how many earlier posts the author sent in the last day."""
    kind, urgency = classify(text)
    if kind == "spam":
        urgency = 0
    elif repeats >= 2:
        urgency = min(2, urgency + 1)
    score = influence(followers, verified=verified, engagement=engagement)
    return Triage(
        language=language or detect_language(text),
        kind=kind,
        urgency=urgency,
        sentiment=sentiment(text, kind),
        influence=score,
        priority=priority(urgency, score, kind),
    )


def normalized_text(text: str) -> str:
    return normalize(text)
