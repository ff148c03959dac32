"""The team's business hours on a web chat account: whether it is open now, and when it is back.

Stored in the account's config as
``{"time_zone": "Asia/Tokyo", "weekly": {"mon": [["09:00", "18:00"]], …}, "closed_dates": ["2026-12-31"]}``.
A day without ranges is closed; no "weekly" at all means always open. Ranges may not cross
midnight (write "22:00"-"24:00" and "00:00"-"02:00" on the next day instead).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass, field

from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$|^24:00$")


def _minutes(value: str) -> int:
    if not _TIME.match(value):
        raise ValueError(_("%(value)s is not a time like 09:00.") % {"value": value})
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class BusinessHours:
    """Weekly opening ranges (minutes from midnight, per weekday 0=Monday) in one time zone."""

    time_zone: str = "UTC"
    weekly: dict[int, list[tuple[int, int]]] | None = None  # None: always open
    closed_dates: frozenset[dt.date] = field(default_factory=frozenset)

    @classmethod
    def from_config(cls, config: dict) -> BusinessHours:
        """Parse the account config's "business_hours"; raises ValueError on a bad value."""
        raw = config.get("business_hours") or {}
        tz = str(raw.get("time_zone") or "UTC")
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(_("Unknown time zone %(tz)s.") % {"tz": tz}) from None
        weekly_raw = raw.get("weekly")
        weekly = None
        if weekly_raw is not None:
            weekly = {}
            for index, day in enumerate(DAYS):
                ranges = []
                for start, end in weekly_raw.get(day) or []:
                    a, b = _minutes(start), _minutes(end)
                    if a >= b:
                        raise ValueError(_("Opening hours must end after they start (%(start)s-%(end)s).") % {"start": start, "end": end})
                    ranges.append((a, b))
                weekly[index] = sorted(ranges)
        closed = frozenset(dt.date.fromisoformat(d) for d in raw.get("closed_dates") or [])
        return cls(tz, weekly, closed)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def _ranges(self, day: dt.date) -> list[tuple[int, int]]:
        if self.weekly is None:
            return [(0, 24 * 60)]
        if day in self.closed_dates:
            return []
        return self.weekly.get(day.weekday(), [])

    def is_open(self, at: dt.datetime | None = None) -> bool:
        local = (at or timezone.now()).astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        return any(a <= minute < b for a, b in self._ranges(local.date()))

    def next_open(self, at: dt.datetime | None = None) -> dt.datetime | None:
        """When the team is next on duty (now if open); None if it never opens (no hours at all)."""
        local = (at or timezone.now()).astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        for offset in range(0, 15):  # two weeks covers any weekly schedule plus closed dates
            day = local.date() + dt.timedelta(days=offset)
            for a, b in self._ranges(day):
                if offset == 0 and minute >= b:
                    continue
                if offset == 0 and a <= minute:
                    return local
                start = dt.datetime.combine(day, dt.time(a // 60, a % 60), tzinfo=self.zone)
                return start
        return None


def back_text(hours: BusinessHours, at: dt.datetime | None = None, language: str | None = None) -> str:
    """When the team is back, as the visitor reads it ("tomorrow at 9:00 (JST)"), or "" if open now.

    Times are the team's own, with the zone's abbreviation: the visitor may be elsewhere.
    """
    now = (at or timezone.now()).astimezone(hours.zone)
    with translation.override(language or translation.get_language()):
        if hours.is_open(now):
            return ""
        back = hours.next_open(now)
        if back is None:
            return _("The team is away. Leave a message and we will answer as soon as we can.")
        time_text = f"{back.hour}:{back.minute:02d}"
        zone_name = back.tzname() or hours.time_zone
        days = (back.date() - now.date()).days
        if days == 0:
            when = _("today at %(time)s") % {"time": time_text}
        elif days == 1:
            when = _("tomorrow at %(time)s") % {"time": time_text}
        elif days < 7:
            when = _("%(weekday)s at %(time)s") % {"weekday": formats.date_format(back, "l"), "time": time_text}
        else:
            when = _("%(date)s at %(time)s") % {"date": formats.date_format(back, "SHORT_DATE_FORMAT"), "time": time_text}
        return _("We're away right now. We'll be back %(when)s (%(zone)s). Leave a message and we'll reply then.") % {
            "when": when,
            "zone": zone_name,
        }
