"""The one time formatter: the person's zone from their cookie, always labelled, and a site's
local time beside it where it matters."""

from __future__ import annotations

from datetime import UTC, date, datetime

import flask

from dashboard.pages import (
    ZONE_COOKIE,
    fmt_clock,
    fmt_site_ts,
    fmt_site_ts_in,
    fmt_ts,
    fmt_ts_in,
    fmt_ts_short_in,
    zone_choice,
)

WINTER = datetime(2026, 12, 5, 14, 5, 9, tzinfo=UTC)
SUMMER = datetime(2026, 7, 1, 14, 5, tzinfo=UTC)


def test_labelled_in_the_zone_given() -> None:
    assert fmt_ts_in(WINTER, "UTC") == "2026-12-05 14:05 UTC"
    assert fmt_ts_in(WINTER, "Europe/Zurich") == "2026-12-05 15:05 CET"
    assert fmt_ts_in(SUMMER, "Europe/Zurich") == "2026-07-01 16:05 CEST"
    assert fmt_ts_in(WINTER, "America/New_York") == "2026-12-05 09:05 EST"
    assert fmt_ts_in(None, "Europe/Zurich") == "—"
    assert fmt_ts_in(date(2027, 6, 30), "Asia/Tokyo") == "2027-06-30"


def test_short_form_for_table_cells_is_the_time_of_day_today() -> None:
    assert fmt_ts_short_in(WINTER, "UTC", WINTER.replace(hour=23)) == "14:05 UTC"
    assert fmt_ts_short_in(WINTER, "UTC", WINTER.replace(day=4)) == "5 Dec 14:05 UTC"
    assert fmt_ts_short_in(SUMMER, "Europe/Zurich", WINTER) == "1 Jul 16:05 CEST"
    assert fmt_ts_short_in(WINTER, "UTC", datetime(2027, 1, 2, tzinfo=UTC)) == fmt_ts_in(
        WINTER, "UTC"
    )
    # "today" is the person's day: 23:30 UTC is already the next day in Zurich
    late = WINTER.replace(hour=23, minute=30)
    assert fmt_ts_short_in(late, "UTC", WINTER) == "23:30 UTC"
    assert fmt_ts_short_in(late, "Europe/Zurich", WINTER) == "6 Dec 00:30 CET"
    assert fmt_ts_short_in(None, "UTC", WINTER) == "—"


def test_site_time_beside_the_persons() -> None:
    assert (
        fmt_site_ts_in(WINTER, "Europe/Zurich", "UTC", "Basel")
        == "2026-12-05 14:05 UTC (15:05 Basel, CET)"
    )
    # The site's date is given when it is another day there.
    assert (
        fmt_site_ts_in(WINTER, "Australia/Sydney", "UTC")
        == "2026-12-05 14:05 UTC (2026-12-06 01:05 Sydney, AEDT)"
    )
    # Nothing to add when the site is in the person's zone or has none.
    assert fmt_site_ts_in(WINTER, "Europe/Zurich", "Europe/Zurich") == "2026-12-05 15:05 CET"
    assert fmt_site_ts_in(WINTER, None, "UTC") == "2026-12-05 14:05 UTC"
    assert fmt_site_ts_in(None, "Europe/Zurich", "UTC") == "—"


def test_the_cookie_chooses_the_zone() -> None:
    assert zone_choice(None) == ("UTC", "UTC")
    assert zone_choice("Asia/Tokyo") == ("Asia/Tokyo", "Asia/Tokyo")
    assert zone_choice("browser%3AEurope%2FZurich") == ("browser", "Europe/Zurich")
    # A forged or stale value falls back to UTC instead of breaking the page.
    assert zone_choice("Europe/Nowhere") == ("UTC", "UTC")
    assert zone_choice("browser:<script>") == ("UTC", "UTC")


def test_the_formatters_read_the_request_cookie() -> None:
    app = flask.Flask(__name__)
    assert fmt_ts(WINTER) == "2026-12-05 14:05 UTC"  # outside a request
    with app.test_request_context(headers={"Cookie": f"{ZONE_COOKIE}=America/New_York"}):
        assert fmt_ts(WINTER) == "2026-12-05 09:05 EST"
        assert fmt_clock(WINTER) == "09:05:09 EST"
        assert fmt_site_ts(WINTER, "Europe/Zurich", "Basel") == (
            "2026-12-05 09:05 EST (15:05 Basel, CET)"
        )
    with app.test_request_context():
        assert fmt_clock(WINTER) == "14:05:09 UTC"
