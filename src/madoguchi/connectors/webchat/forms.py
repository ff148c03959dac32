"""The admins' settings form: allowed origins, business hours, limits."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from madoguchi.connectors.webchat.hours import DAYS, BusinessHours
from madoguchi.connectors.webchat.widget import DEFAULT_UPLOAD_BYTES, normalize_origin

DAY_LABELS = {
    "mon": _("Monday"),
    "tue": _("Tuesday"),
    "wed": _("Wednesday"),
    "thu": _("Thursday"),
    "fri": _("Friday"),
    "sat": _("Saturday"),
    "sun": _("Sunday"),
}


class WidgetSettingsForm(forms.Form):
    allowed_origins = forms.CharField(
        label=_("Websites allowed to show the widget"),
        help_text=_("One origin per line, e.g. https://www.example.com (http://localhost:* allows any port)."),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
    )
    always_open = forms.BooleanField(label=_("Always open (no business hours)"), required=False)
    time_zone = forms.CharField(label=_("Time zone"), initial="Asia/Tokyo", max_length=64)
    closed_dates = forms.CharField(
        label=_("Closed on these dates"),
        help_text=_("One date per line, e.g. 2026-12-31."),
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
    )
    visitor_per_minute = forms.IntegerField(label=_("Messages per visitor per minute"), min_value=1, max_value=1000, initial=20)
    ip_per_minute = forms.IntegerField(label=_("Requests per IP address per minute"), min_value=1, max_value=100000, initial=60)
    max_upload_mb = forms.IntegerField(
        label=_("Largest file a visitor may send (MB)"),
        min_value=1,
        max_value=max(1, settings.ATTACHMENT_MAX_BYTES // (1024 * 1024)),
        initial=DEFAULT_UPLOAD_BYTES // (1024 * 1024),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for day in DAYS:
            self.fields[f"hours_{day}"] = forms.CharField(
                label=DAY_LABELS[day],
                required=False,
                max_length=200,
                help_text=_("e.g. 09:00-18:00, or 09:00-12:00, 13:00-18:00; empty: closed"),
            )

    def day_fields(self) -> list[forms.BoundField]:
        return [self[f"hours_{day}"] for day in DAYS]

    @staticmethod
    def initial_from(config: dict[str, Any]) -> dict[str, Any]:
        hours = config.get("business_hours") or {}
        limits = config.get("rate_limits") or {}
        initial: dict[str, Any] = {
            "allowed_origins": "\n".join(config.get("allowed_origins") or []),
            "always_open": hours.get("weekly") is None,
            "time_zone": hours.get("time_zone") or "Asia/Tokyo",
            "closed_dates": "\n".join(hours.get("closed_dates") or []),
            "visitor_per_minute": limits.get("visitor_per_minute", 20),
            "ip_per_minute": limits.get("ip_per_minute", 60),
            "max_upload_mb": max(1, int(config.get("max_upload_bytes") or DEFAULT_UPLOAD_BYTES) // (1024 * 1024)),
        }
        for day in DAYS:
            ranges = (hours.get("weekly") or {}).get(day) or []
            initial[f"hours_{day}"] = ", ".join(f"{a}-{b}" for a, b in ranges)
        return initial

    def clean_allowed_origins(self) -> list[str]:
        origins = []
        for line in self.cleaned_data["allowed_origins"].split():
            origin = normalize_origin(line)
            if not origin:
                raise forms.ValidationError(_("%(value)s is not a website origin like https://www.example.com.") % {"value": line})
            origins.append(origin)
        return list(dict.fromkeys(origins))

    def clean_closed_dates(self) -> list[str]:
        dates = []
        for line in self.cleaned_data["closed_dates"].split():
            try:
                dates.append(dt.date.fromisoformat(line).isoformat())
            except ValueError:
                raise forms.ValidationError(_("%(value)s is not a date like 2026-12-31.") % {"value": line}) from None
        return sorted(set(dates))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        weekly: dict[str, list[list[str]]] = {}
        for day in DAYS:
            ranges = []
            for part in (data.get(f"hours_{day}") or "").replace("、", ",").split(","):
                part = part.strip().replace("〜", "-").replace("~", "-").replace("–", "-")
                if not part:
                    continue
                start, sep, end = part.partition("-")
                if not sep:
                    self.add_error(f"hours_{day}", _("Write hours as 09:00-18:00."))
                    break
                ranges.append([start.strip(), end.strip()])
            weekly[day] = ranges
        hours: dict[str, Any] = {
            "time_zone": (data.get("time_zone") or "").strip(),
            "weekly": None if data.get("always_open") else weekly,
            "closed_dates": data.get("closed_dates") or [],
        }
        if not self.errors:
            try:
                BusinessHours.from_config({"business_hours": hours})
            except ValueError as exc:
                raise forms.ValidationError(str(exc)) from None
        data["business_hours"] = hours
        return data

    def to_config(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {
            "allowed_origins": d["allowed_origins"],
            "business_hours": d["business_hours"],
            "rate_limits": {"visitor_per_minute": d["visitor_per_minute"], "ip_per_minute": d["ip_per_minute"]},
            "max_upload_bytes": d["max_upload_mb"] * 1024 * 1024,
        }
