"""Listening rules in the syntax of platforms that filter on their side.

X's filtered stream takes rules of at most 1,024 characters (Pro: 1,024; Basic: 512) where
terms side by side mean AND, `OR` means or, `-term` excludes, quotes make an exact phrase,
`@handle` matches mentions and `lang:xx` narrows the language. Mastodon has no keyword stream
for a whole server, only hashtag timelines, so only a rule's hashtags can be followed there.
Posts that arrive are matched again locally by the same automaton as everything else, so a
platform rule may safely be wider than ours (never narrower).
"""

from __future__ import annotations

from madoguchi.listening.matcher import RuleSpec

X_RULE_MAX = 1024


def _x_term(term: str) -> str:
    term = term.strip()
    if term.startswith(("@", "#")) and " " not in term:
        return term
    return '"' + term.replace('"', "") + '"'


def x_filter_rules(spec: RuleSpec, *, max_length: int = X_RULE_MAX) -> list[str]:
    """One rule as X filtered-stream rule values; split into several when it is too long."""
    tail = "".join(f" -{_x_term(t)}" for t in spec.none_of)
    if len(spec.languages) == 1:
        tail += f" lang:{next(iter(spec.languages))}"
    musts = " ".join(_x_term(t) for t in spec.all_of)
    anys = [_x_term(t) for t in (*spec.accounts, *spec.any_of)]
    if not anys:
        return [f"{musts}{tail}".strip()]
    out: list[str] = []
    group: list[str] = []

    def render(terms: list[str]) -> str:
        inner = terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"
        return f"{musts} {inner}{tail}".strip()

    for term in anys:
        if group and len(render([*group, term])) > max_length:
            out.append(render(group))
            group = []
        group.append(term)
    out.append(render(group))
    return out


def mastodon_hashtags(spec: RuleSpec) -> list[str]:
    """The hashtags (without '#') of a rule's any-of terms, for hashtag timelines."""
    return [t.strip()[1:] for t in spec.any_of if t.strip().startswith("#") and len(t.strip()) > 1]
