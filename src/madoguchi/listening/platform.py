"""Listening rules in the syntax of platforms that filter on their side.

X's filtered stream takes rules of at most 1,024 characters (Pro: 1,024; Basic: 512) where
terms side by side mean AND, `OR` means or, `-term` excludes, quotes make an exact phrase,
`@handle` matches mentions and `lang:xx` narrows the language. Mastodon has no keyword stream
for a whole server, only hashtag timelines, so only a rule's hashtags can be followed there.
Posts that arrive are matched again locally by the same automaton as everything else, so a
platform rule may safely be wider than ours (never narrower).
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from madoguchi.listening.matcher import RuleSpec

X_RULE_MAX = 1024


class UntranslatableRule(ValueError):
    """A rule that X's rule syntax cannot express; the message says why, for the person who wrote it."""


def _x_term(term: str) -> str:
    term = term.strip()
    if term.startswith(("@", "#")) and " " not in term:
        return term
    return '"' + term.replace('"', "") + '"'


def _usable(terms: tuple[str, ...]) -> tuple[str, ...]:
    """Terms that still say something once quotes and spaces are gone."""
    return tuple(t for t in terms if t.replace('"', "").strip() not in {"", "@", "#"})


def x_rule_values(spec: RuleSpec, *, max_length: int = X_RULE_MAX) -> list[str]:
    """The X rule values for one rule, or UntranslatableRule when X would refuse every form of it.

    X needs at least one positive term (a rule of only exclusions or a language is refused), and
    every value must fit in the tier's length; a rule whose fixed part (all-of terms, exclusions,
    language) plus a single any-of term is already too long cannot be split to fit.
    """
    usable = RuleSpec(
        spec.id,
        spec.name,
        accounts=tuple(a if a.strip().startswith("@") else "@" + a.strip() for a in _usable(spec.accounts)),
        any_of=_usable(spec.any_of),
        all_of=_usable(spec.all_of),
        none_of=_usable(spec.none_of),
        languages=spec.languages,
    )
    if not (usable.accounts or usable.any_of or usable.all_of):
        raise UntranslatableRule(_("it has no keyword, phrase, hashtag or account to search for (X needs at least one)"))
    values = x_filter_rules(usable, max_length=max_length)
    too_long = max((len(v) for v in values), default=0)
    if too_long > max_length:
        raise UntranslatableRule(
            _("it needs %(length)s characters even with one term per rule; X allows %(max)s on this plan")
            % {"length": too_long, "max": max_length}
        )
    return values


def x_filter_rules(spec: RuleSpec, *, max_length: int = X_RULE_MAX) -> list[str]:
    """One rule as X filtered-stream rule values; split into several when it is too long."""
    tail = "".join(f" -{_x_term(t)}" for t in spec.none_of)
    languages = sorted(spec.languages)
    if len(languages) == 1:
        tail += f" lang:{languages[0]}"
    elif languages:
        tail += " (" + " OR ".join(f"lang:{lang}" for lang in languages) + ")"
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
