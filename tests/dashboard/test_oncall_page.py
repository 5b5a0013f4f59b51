"""The "On call" page: its pure parts, then its callbacks as the browser calls them against the
real app and database: an administrator creates a rotation and adds an override, a viewer reads
who is on call and cannot change anything."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from coldchain.errors import InvalidRecordError
from coldchain.oncall import Rotation, who_is_on_call
from dashboard.pages import admin_people
from dashboard.pages import oncall as page
from security.accounts import Principal
from security.roles import ROLES
from tests.dashboard.callbacks import call
from tests.fixtures.auth import Person
from tests.fixtures.web import LiveServer


def test_the_form_is_parsed_and_a_bad_value_names_its_field() -> None:
    assert page.members_of(" ana, ben  cleo,") == ["ana", "ben", "cleo"]
    assert page.parse_time("07:30", "handover_time").hour == 7
    with pytest.raises(InvalidRecordError) as caught:
        page.parse_time("7h", "handover_time")
    assert caught.value.field == "handover_time"
    with pytest.raises(InvalidRecordError) as caught:
        page.parse_instant("2026-12-24T09:00", "starts_at")  # no offset: which 09:00?
    assert caught.value.field == "starts_at"


def test_everyone_gets_the_link_and_only_admins_the_editor() -> None:
    for role in ROLES:
        person = Principal(kind="user", id=1, name=role, display_name=role, role=role)
        assert [link.to_plotly_json()["props"]["href"] for link in page.nav_links(person)] == [
            page.PATH
        ]
        editor = page.layout(person).children[-1]
        assert (editor.style is None) == (role == "admin")
    assert page.nav_links(None) == []


def _save(server: LiveServer, cookie: str, values: dict[str, Any]) -> Any:
    return call(
        server,
        cookie,
        trigger=f"{page.SAVE}.n_clicks",
        output=f"{page.FEEDBACK}.children",
        values={f"{k}.value": v for k, v in values.items()},
    )


def test_an_admin_edits_a_rotation_and_a_viewer_reads_it(
    web_server: LiveServer, people: dict[str, Person], session_cookie: Any
) -> None:
    members = [people["operator"].username, people["qa"].username]
    start = date.today() - timedelta(days=2)
    form = {
        page.NAME: "qa-oncall",
        page.TEAM: "QA",
        page.ZONE: "Europe/Zurich",
        page.HANDOVER: "09:00",
        page.SHIFT_DAYS: 1,
        page.START: start.isoformat(),
        page.MEMBERS: ", ".join(members),
    }
    viewer = session_cookie(people["viewer"])
    out = _save(web_server, viewer, form)
    assert out[page.FEEDBACK]["className"] == "feedback error"
    assert "admin" in out[page.FEEDBACK]["children"]

    admin = session_cookie(people["admin"])
    out = _save(web_server, admin, {**form, page.ZONE: "Zurich"})
    assert "Not done: time_zone:" in out[page.FEEDBACK]["children"]
    out = _save(web_server, admin, form)
    assert out[page.FEEDBACK]["className"] == "feedback ok", out
    rotation = Rotation(
        "qa-oncall", "QA", "Europe/Zurich", datetime.strptime("09:00", "%H:%M").time(), 1, start
    )
    expected = who_is_on_call(rotation, members, [], datetime.now(UTC))
    assert f"({expected})" in out[page.FEEDBACK]["children"]

    now = datetime.now(UTC)
    out = call(
        web_server,
        admin,
        trigger=f"{page.ADD_OVERRIDE}.n_clicks",
        output=f"{page.FEEDBACK}.children",
        values={
            f"{page.PICK}.value": "qa-oncall",
            f"{page.OVERRIDE_WHO}.value": people["admin"].username,
            f"{page.OVERRIDE_FROM}.value": (now - timedelta(minutes=5)).isoformat(),
            f"{page.OVERRIDE_UNTIL}.value": (now + timedelta(hours=1)).isoformat(),
            f"{page.OVERRIDE_REASON}.value": "audit day",
        },
    )
    assert out[page.FEEDBACK]["className"] == "feedback ok", out

    out = call(web_server, viewer, trigger=f"{page.CHANGED}.data", output=f"{page.LIST}.children")
    text = str(out[page.LIST]["children"])
    assert f"'data-oncall': '{people['admin'].username}'" in text
    assert "audit day" in text
    assert "No e-mail or mobile number: " in text  # nobody has contacts yet

    # The admin people screen sets how a person is reached (services.accounts.set_contacts).
    def contacts(email: str, phone: str) -> Any:
        return call(
            web_server,
            admin,
            trigger=f"{admin_people.SET_CONTACTS}.n_clicks",
            output=f"{admin_people.FEEDBACK}.children",
            values={
                f"{admin_people.PICK}.value": members[0],
                f"{admin_people.EMAIL}.value": email,
                f"{admin_people.PHONE}.value": phone,
            },
        )[admin_people.FEEDBACK]["children"]

    assert contacts("ops@example.com", "+41 79 000 00 01") == (
        f"{members[0]} is reached at ops@example.com and +41790000001 when on call."
    )
    assert contacts("ops@example.com", "079 000 00 01").startswith("Not done: phone:")
    out = call(web_server, viewer, trigger=f"{page.CHANGED}.data", output=f"{page.LIST}.children")
    assert f"No e-mail or mobile number: {members[1]}" in str(out[page.LIST]["children"])
