"""Business hours: open or not, when the team is back, said in Japanese and English."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.utils import translation
from django.utils.translation import gettext as _

from madoguchi.connectors.webchat.hours import BusinessHours, back_text

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
WEEKDAYS = {"mon": [["09:00", "18:00"]], "tue": [["09:00", "12:00"], ["13:00", "18:00"]], "wed": [["09:00", "18:00"]],
            "thu": [["09:00", "18:00"]], "fri": [["09:00", "17:00"]], "sat": [], "sun": []}
HOURS = BusinessHours.from_config({"business_hours": {"time_zone": "Asia/Tokyo", "weekly": WEEKDAYS, "closed_dates": ["2026-11-26"]}})


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A time in Tokyo in the week of Monday 2026-11-23."""
    return dt.datetime(2026, 11, 23 + day, hour, minute, tzinfo=TOKYO)


def test_open_inside_the_ranges_and_closed_outside():
    assert HOURS.is_open(at(0, 9)) and HOURS.is_open(at(0, 17, 59))
    assert not HOURS.is_open(at(0, 18)) and not HOURS.is_open(at(0, 8, 59))
    assert not HOURS.is_open(at(1, 12, 30))  # the lunch break on Tuesday
    assert not HOURS.is_open(at(3, 10))  # Thursday 2026-11-26 is a closed date
    assert not HOURS.is_open(at(5, 11))  # Saturday


def test_the_time_zone_is_the_teams_not_the_servers():
    utc_morning = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)  # 10:00 in Tokyo
    assert HOURS.is_open(utc_morning)
    assert not HOURS.is_open(dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC))  # 19:00 in Tokyo


def test_next_opening_skips_breaks_closed_dates_and_weekends():
    assert HOURS.next_open(at(0, 10)) == at(0, 10)
    assert HOURS.next_open(at(1, 12, 15)) == at(1, 13)
    assert HOURS.next_open(at(2, 19)) == at(4, 9)  # Wednesday evening -> Friday (Thursday closed)
    assert HOURS.next_open(at(4, 17, 30)) == at(7, 9)  # Friday after 17:00 -> Monday


@pytest.mark.parametrize(
    ("now", "lang", "expected"),
    [
        (at(0, 10), "en", ""),
        (at(1, 12, 15), "en", "today at 13:00 (JST)"),
        (at(0, 19), "en", "tomorrow at 9:00 (JST)"),
        (at(4, 18), "en", "Monday at 9:00 (JST)"),
        (at(4, 18), "ja", "月曜日"),  # Django's own Japanese weekday names
        (at(4, 18), "ja", "9:00"),
    ],
)
def test_visitors_are_told_when_the_team_is_back(now, lang, expected):
    text = back_text(HOURS, now, language=lang)
    if not expected:
        assert text == ""
    else:
        assert expected in text, text


def test_japanese_visitors_get_the_japanese_wording():
    with translation.override("ja"):
        today = _("today at %(time)s") % {"time": "13:00"}
        tomorrow = _("tomorrow at %(time)s") % {"time": "9:00"}
    assert today in back_text(HOURS, at(1, 12, 15), language="ja")
    assert tomorrow in back_text(HOURS, at(0, 19), language="ja")
    assert "Monday" not in back_text(HOURS, at(4, 18), language="ja")


def test_without_hours_the_team_is_always_open_and_bad_values_are_refused():
    always = BusinessHours.from_config({})
    assert always.is_open(at(5, 3)) and back_text(always, at(5, 3)) == ""
    with pytest.raises(ValueError):
        BusinessHours.from_config({"business_hours": {"time_zone": "Mars/Olympus"}})
    with pytest.raises(ValueError):
        BusinessHours.from_config({"business_hours": {"weekly": {"mon": [["18:00", "09:00"]]}}})
    with pytest.raises(ValueError):
        BusinessHours.from_config({"business_hours": {"weekly": {"mon": [["25:00", "26:00"]]}}})
    never = BusinessHours.from_config({"business_hours": {"weekly": {}}})
    assert never.next_open(at(0, 9)) is None and back_text(never, at(0, 9), language="en")
