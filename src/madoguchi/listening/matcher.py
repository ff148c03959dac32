"""The whole rule set of a workspace compiled into one Aho-Corasick automaton.

Every term of every rule (account handles, any-of, all-of and none-of terms) goes into one
automaton, so a post is scanned once whatever the number of rules; rules are then checked only
for the terms that actually occurred. Text and terms are both passed through
`madoguchi.text.normalize` (NFKC, case folding, hiragana as katakana), so 「アイフォン」 and
「ｱｲﾌｫﾝ」 hit a katakana rule. Latin-script terms must sit on word boundaries ("au" must not
fire inside "August"); Japanese has no spaces, so Japanese terms match anywhere.

pyahocorasick rather than ahocorasick-rs: bench/listen.py shows ahocorasick-rs scanning about
1.6x faster on its own, but pyahocorasick keeps our payload (term id, length, boundary flags)
in the automaton and iterates lazily, and the matching step is not the bottleneck of listening
(normalization and storing captured posts are). Switching is local to this module.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field

import ahocorasick

from madoguchi.text.normalize import normalize

SEP = "\x00"  # joins texts scanned together; never in a term


def _is_word_char(ch: str) -> bool:
    # Latin letters, digits and "_" (handles) are word characters; kana and kanji are not,
    # so "auの回線" still hits "au".
    return ch == "_" or (ch.isalnum() and ord(ch) < 0x2E80)


@dataclass(frozen=True)
class RuleSpec:
    """A rule as the matcher needs it (built from a ListeningRule or from YAML)."""

    id: int
    name: str
    brand_id: int | None = None
    accounts: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    all_of: tuple[str, ...] = ()
    none_of: tuple[str, ...] = ()
    languages: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Hit:
    """A rule that matched a post; `mention` when it was one of the brand's own accounts."""

    rule_id: int
    rule_name: str
    mention: bool


@dataclass
class _Compiled:
    spec: RuleSpec
    accounts: frozenset[int]
    any_of: frozenset[int]
    all_of: frozenset[int]
    none_of: frozenset[int]


def normalize_term(term: str) -> str:
    return normalize(term).strip()


@dataclass
class Matcher:
    """One automaton for a rule set; immutable once built, so it can be swapped in atomically."""

    rules: list[_Compiled] = field(default_factory=list)
    # term id -> indexes of rules in which the term is positive (account, any-of, all-of)
    positive: list[list[int]] = field(default_factory=list)
    automaton: ahocorasick.Automaton | None = None

    @classmethod
    def build(cls, specs: Iterable[RuleSpec]) -> Matcher:
        term_ids: dict[str, int] = {}
        m = cls()

        def ids(terms: Iterable[str]) -> frozenset[int]:
            out = set()
            for raw in terms:
                term = normalize_term(raw)
                if not term or SEP in term:
                    continue
                if term not in term_ids:
                    term_ids[term] = len(term_ids)
                    m.positive.append([])
                out.add(term_ids[term])
            return frozenset(out)

        for spec in specs:
            compiled = _Compiled(spec, ids(spec.accounts), ids(spec.any_of), ids(spec.all_of), ids(spec.none_of))
            if not (compiled.accounts or compiled.any_of or compiled.all_of):
                continue  # a rule of exclusions only would match everything: ignore it
            index = len(m.rules)
            m.rules.append(compiled)
            for tid in compiled.accounts | compiled.any_of | compiled.all_of:
                m.positive[tid].append(index)
        if m.rules:
            automaton = ahocorasick.Automaton()
            for term, tid in term_ids.items():
                automaton.add_word(term, (tid, len(term), _is_word_char(term[0]), _is_word_char(term[-1])))
            automaton.make_automaton()
            m.automaton = automaton
        return m

    @property
    def empty(self) -> bool:
        return not self.rules

    def terms_in(self, text: str) -> set[int]:
        """Ids of the terms that occur in already-normalized text, on word boundaries where needed."""
        found: set[int] = set()
        if self.automaton is None:
            return found
        n = len(text)
        for end, (tid, length, left, right) in self.automaton.iter(text):
            if tid in found:
                continue
            start = end - length + 1
            if left and start > 0 and _is_word_char(text[start - 1]):
                continue
            if right and end + 1 < n and _is_word_char(text[end + 1]):
                continue
            found.add(tid)
        return found

    def terms_in_many(self, texts: list[str]) -> dict[int, set[int]]:
        """`terms_in` for many already-normalized texts at once: {index: term ids}, only texts with a term.

        The texts are joined with NUL and scanned in one pass of the automaton, so a text without
        any term costs no Python work at all (99 % of a firehose). NUL is no word character, so
        word boundaries at the joins behave as at the start and end of a text; no term contains
        NUL (`normalize_term` would keep it, but `build` drops such terms), so no hit spans two
        texts. Texts that themselves contain NUL are scanned one by one.
        """
        out: dict[int, set[int]] = {}
        if self.automaton is None or not texts:
            return out
        joined = SEP.join(texts)
        if joined.count(SEP) != len(texts) - 1:
            for i, text in enumerate(texts):
                found = self.terms_in(text)
                if found:
                    out[i] = found
            return out
        starts: list[int] = []
        pos = 0
        for text in texts:
            starts.append(pos)
            pos += len(text) + 1
        n = len(joined)
        for end, (tid, length, left, right) in self.automaton.iter(joined):
            start = end - length + 1
            if left and start > 0 and _is_word_char(joined[start - 1]):
                continue
            if right and end + 1 < n and _is_word_char(joined[end + 1]):
                continue
            out.setdefault(bisect_right(starts, start) - 1, set()).add(tid)
        return out

    def match(self, text: str, *, language: str = "", channel: str = "", normalized: bool = False) -> list[Hit]:
        """The rules a post matches, mentions first, then in rule order."""
        if self.automaton is None:
            return []
        found = self.terms_in(text if normalized else normalize(text))
        if not found:
            return []
        return self.rules_hit(found, language=language, channel=channel)

    def rules_hit(self, found: set[int], *, language: str = "", channel: str = "") -> list[Hit]:
        """The rules satisfied by the terms found in a post (from `terms_in` or `terms_in_many`)."""
        candidates = sorted({r for tid in found for r in self.positive[tid]})
        hits: list[Hit] = []
        for index in candidates:
            rule = self.rules[index]
            spec = rule.spec
            if spec.languages and language not in spec.languages:
                continue
            if spec.channels and channel not in spec.channels:
                continue
            if rule.none_of & found:
                continue
            if rule.accounts & found:
                hits.append(Hit(spec.id, spec.name, True))
                continue
            if rule.any_of and not rule.any_of & found:
                continue
            if not rule.all_of <= found:
                continue
            hits.append(Hit(spec.id, spec.name, False))
        hits.sort(key=lambda h: not h.mention)
        return hits


def normalize_many(texts: list[str]) -> list[str]:
    """`normalize` of each text; ASCII text (most English posts) only needs lower case, since NFKC
    leaves ASCII as it is and case folding of ASCII is lower-casing.

    One by one on purpose: normalizing the joined texts was slower (bench/listen.py), because
    str.translate's ASCII fast path is lost once a single Japanese post joins the batch."""
    return [t.lower() if t.isascii() else normalize(t) for t in texts]
