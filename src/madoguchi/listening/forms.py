"""The rule editor's form: one field per rule part, terms one per line, errors shown on their field."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from madoguchi.accounts.models import Brand
from madoguchi.connectors.models import ChannelKind
from madoguchi.listening import actions
from madoguchi.listening.models import ListeningRule

TERM_FIELDS = ("accounts", "any_of", "all_of", "none_of")
_QUOTES = (('"', '"'), ("“", "”"), ("「", "」"), ("'", "'"))


def split_terms(value: str) -> list[str]:
    """One word or exact phrase per line; surrounding quotes ("..." or 「...」) are dropped."""
    terms = []
    for line in (value or "").splitlines():
        term = line.strip()
        for left, right in _QUOTES:
            if len(term) > 2 and term.startswith(left) and term.endswith(right):
                term = term[1:-1].strip()
                break
        if term:
            terms.append(term)
    return terms


class TermsField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autocapitalize": "off"})

    def __init__(self, **kwargs: Any):
        super().__init__(required=False, max_length=100_000, strip=False, **kwargs)

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(value) if isinstance(value, list) else value


class RuleForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    brand = forms.ModelChoiceField(label=_("Brand"), queryset=Brand.objects.none(), empty_label=None)
    is_active = forms.BooleanField(label=_("Active"), required=False, initial=True)
    accounts = TermsField(
        label=_("Own accounts"),
        help_text=_("Handles such as @acme_support: a post that mentions one always becomes a conversation."),
    )
    any_of = TermsField(label=_("Any of"), help_text=_("At least one of these words or exact phrases."))
    all_of = TermsField(label=_("All of"), help_text=_("Every one of these words or exact phrases."))
    none_of = TermsField(label=_("None of"), help_text=_("Exclusions: a post with any of these is not captured."))
    languages = forms.CharField(
        label=_("Languages"), required=False, max_length=200, help_text=_("Language codes such as ja en; empty for every language.")
    )
    channels = forms.MultipleChoiceField(
        label=_("Channels"), required=False, choices=ChannelKind.choices, widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every channel."),
    )

    def __init__(self, *args: Any, workspace_id: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["brand"].queryset = Brand.objects.filter(workspace_id=workspace_id).order_by("name")  # type: ignore[attr-defined]

    @classmethod
    def initial_for(cls, rule: ListeningRule) -> dict[str, Any]:
        data: dict[str, Any] = {f: list(getattr(rule, f)) for f in TERM_FIELDS}
        data.update(name=rule.name, brand=rule.brand_id, is_active=rule.is_active,
                    languages=" ".join(rule.languages), channels=list(rule.channels))
        return data

    def _terms(self, name: str) -> list[str]:
        try:
            return actions.clean_terms(split_terms(self.cleaned_data.get(name, "")), name)
        except actions.RuleError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_accounts(self) -> list[str]:
        return self._terms("accounts")

    def clean_any_of(self) -> list[str]:
        return self._terms("any_of")

    def clean_all_of(self) -> list[str]:
        return self._terms("all_of")

    def clean_none_of(self) -> list[str]:
        return self._terms("none_of")

    def clean_languages(self) -> list[str]:
        codes = [c.lower() for c in re.split(r"[\s,、]+", self.cleaned_data.get("languages", "")) if c]
        bad = [c for c in codes if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})?", c)]
        if bad:
            raise forms.ValidationError(_("Not a language code: %(codes)s") % {"codes": ", ".join(bad)})
        return codes

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not any(data.get(f) for f in ("accounts", "any_of", "all_of")) and not any(
            f in self.errors for f in ("accounts", "any_of", "all_of")
        ):
            raise forms.ValidationError(_("Give own accounts, or words in Any of or All of: exclusions alone match nothing."))
        return data

    def rule_data(self) -> dict[str, Any]:
        """What `actions.do_save_rule` takes."""
        data = self.cleaned_data
        out = {f: data.get(f) or [] for f in (*TERM_FIELDS, "languages", "channels")}
        out.update(name=data.get("name", ""), active=data.get("is_active", False))
        return out
