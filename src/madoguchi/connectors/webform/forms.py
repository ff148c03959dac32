"""The contact form a visitor fills in: fields, limits, and the edge checks (header injection).

The honeypot and the minimum fill time are checked in `inbound.spam_reason`, not here: spam is
quarantined with its reason and the visitor sees the usual thank-you page, so a robot learns
nothing, while a person who typed a line break into the name gets a clear error to fix.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from madoguchi.connectors.models import ChannelAccount

HONEYPOT = "website"  # a field people never see; robots fill every field they find
TOKEN = "token"  # signed render time and nonce (see inbound.new_token)
DEFAULT_MAX_ATTACHMENTS = 3
DEFAULT_MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
HEADER_INJECTION = "header_injection"


def categories(account: ChannelAccount, language: str) -> list[tuple[str, str]]:
    """(value, label in `language`) of the categories configured on the webform account.

    `config["categories"]` holds plain strings or {"name": "Billing", "ja": "お支払い", "en": …};
    `name` is what agents see as the conversation's label.
    """
    out = []
    for entry in account.config.get("categories") or []:
        if isinstance(entry, str) and entry.strip():
            out.append((entry.strip()[:64], entry.strip()[:64]))
        elif isinstance(entry, dict) and str(entry.get("name") or "").strip():
            name = str(entry["name"]).strip()[:64]
            out.append((name, str(entry.get(language) or entry.get("en") or name)[:120]))
    return out


def attachment_limits(account: ChannelAccount) -> tuple[int, int]:
    """(how many files, bytes per file) a visitor may attach."""
    count = int(account.config.get("max_attachments", DEFAULT_MAX_ATTACHMENTS))
    size = int(account.config.get("max_attachment_bytes") or DEFAULT_MAX_ATTACHMENT_BYTES)
    return max(0, min(count, 10)), min(size, settings.ATTACHMENT_MAX_BYTES)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input (Django's documented recipe)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(d, initial) for d in data if d]
        return [super().clean(data, initial)] if data else []


def _one_line(value: str, label: str) -> str:
    # A CR or LF in a value that ends up in a mail header would start a header of its own.
    if "\r" in value or "\n" in value or "\x00" in value:
        raise forms.ValidationError(
            _("%(field)s must be on one line: line breaks are not allowed.") % {"field": label},
            code=HEADER_INJECTION,
        )
    return value.strip()


class ContactForm(forms.Form):
    """Name, email, category, subject, message, attachments; plus the hidden spam checks."""

    name = forms.CharField(label=_("Name"), max_length=120, strip=False)
    email = forms.CharField(label=_("Email"), max_length=254, strip=False)
    category = forms.ChoiceField(label=_("Category"), required=False)
    subject = forms.CharField(label=_("Subject"), max_length=200, strip=False)
    message = forms.CharField(label=_("Message"), max_length=20_000, widget=forms.Textarea)
    attachments = MultipleFileField(label=_("Attachments"), required=False)
    website = forms.CharField(required=False, max_length=500)  # the honeypot
    token = forms.CharField(required=False, max_length=500)

    def __init__(self, account: ChannelAccount, language: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.account = account
        choices = categories(account, language)
        field = self.fields["category"]
        assert isinstance(field, forms.ChoiceField)
        if choices:
            field.choices = [("", _("Choose…")), *choices]
            field.required = True
        else:
            del self.fields["category"]
        self.max_files, self.max_bytes = attachment_limits(account)
        if not self.max_files:
            del self.fields["attachments"]

    def clean_name(self) -> str:
        return _one_line(self.cleaned_data["name"], str(_("Name")))

    def clean_subject(self) -> str:
        return _one_line(self.cleaned_data["subject"], str(_("Subject")))

    def clean_email(self) -> str:
        value = _one_line(self.cleaned_data["email"], str(_("Email")))
        forms.EmailField().clean(value)
        return value

    def clean_attachments(self) -> list[UploadedFile]:
        files: list[UploadedFile] = self.cleaned_data.get("attachments") or []
        if len(files) > self.max_files:
            raise forms.ValidationError(
                _("Attach at most %(count)s files.") % {"count": self.max_files}
            )
        for f in files:
            if (f.size or 0) > self.max_bytes:
                raise forms.ValidationError(
                    _("%(name)s is too large (at most %(size)s per file).")
                    % {"name": f.name, "size": filesizeformat(self.max_bytes)}
                )
        return files

    def header_injection(self) -> bool:
        """True when a one-line field came with a line break: an attack, not a typo."""
        return any(
            e.code == HEADER_INJECTION
            for name in ("name", "email", "subject")
            for e in self.errors.as_data().get(name, [])
        )
