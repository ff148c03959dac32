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

from collections.abc import Iterable
from dataclasses import dataclass, field

import ahocorasick

from madoguchi.text.normalize import normalize


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
                if not term:
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

    def match(self, text: str, *, language: str = "", channel: str = "", normalized: bool = False) -> list[Hit]:
        """The rules a post matches, mentions first, then in rule order."""
        if self.automaton is None:
            return []
        found = self.terms_in(text if normalized else normalize(text))
        if not found:
            return []
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
