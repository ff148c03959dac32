"""The article editor's form (new article and edit): errors are shown on their field, input kept."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from madoguchi.accounts.models import Brand
from madoguchi.kb import queries
from madoguchi.kb.actions import MAX_BODY, MAX_TITLE
from madoguchi.kb.models import Category


class CategoryField(forms.ModelChoiceField):
    """A workspace's categories, each shown with its parents ("Parent > Child")."""

    def __init__(self, workspace_id: int, **kwargs: Any):
        self.paths = queries.category_path(workspace_id)
        super().__init__(queryset=Category.objects.filter(workspace_id=workspace_id), **kwargs)

    def label_from_instance(self, obj: Category) -> str:
        return self.paths.get(obj.pk, obj.name)


class ArticleForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=MAX_TITLE)
    language = forms.RegexField(
        label=_("Language"),
        regex=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$",
        max_length=16,
        required=False,
        help_text=_("A language code such as ja or en. Left empty, it is detected from the text."),
        error_messages={"invalid": _("Enter a language code such as ja or en.")},
    )
    body = forms.CharField(label=_("Body (Markdown)"), widget=forms.Textarea(attrs={"rows": 12}), max_length=MAX_BODY, required=False)

    def __init__(self, *args: Any, workspace_id: int, text_only: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if text_only:  # a proposed change: the text only
            del self.fields["language"]
            return
        self.fields["category"] = CategoryField(workspace_id, label=pgettext_lazy("knowledge base", "Category"), required=False, empty_label="—")
        brands = Brand.objects.filter(workspace_id=workspace_id).order_by("name")
        if len(brands) > 1:  # with one brand every article is its own
            self.fields["brand"] = forms.ModelChoiceField(
                brands, label=_("Help site"), required=False, empty_label=_("Every brand's help site")
            )
        self.order_fields(["title", "language", "category", "brand", "body"])
        self.fields["language"].widget.attrs.update({"size": 6, "autocapitalize": "off", "spellcheck": "false"})

    def clean_language(self) -> str:
        return str(self.cleaned_data.get("language") or "").lower()
