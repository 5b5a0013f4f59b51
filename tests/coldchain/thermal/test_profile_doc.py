"""The stored document of a stability profile: a profile survives the round trip, and a bad
document is refused naming its field."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from coldchain.errors import InvalidRecordError
from coldchain.thermal.profile_doc import PROFILE_FIELDS, profile_from_doc, profile_to_doc
from coldchain.thermal.stability import Allowance, StabilityProfile

TWO_BANDS = StabilityProfile(
    2.0,
    8.0,
    (Allowance(8.0, 25.0, timedelta(hours=72)), Allowance(None, 2.0, timedelta(hours=12))),
    max_freeze_thaw_cycles=2,
    mkt_limit_c=8.0,
)


def test_a_profile_survives_its_document() -> None:
    doc = profile_to_doc(TWO_BANDS)
    assert tuple(doc) == PROFILE_FIELDS
    assert profile_from_doc(doc) == TWO_BANDS


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"allowances": [{"low_c": 8, "high_c": 25}]}, "allowances[0].budget_s"),
        ({"allowances": [{"low_c": 8, "high_c": 2, "budget_s": 1}]}, "allowances[0]"),
        ({"allowances": [{"low_c": "8", "budget_s": 1}]}, "allowances[0].low_c"),
        ({"storage_low_c": 9.0}, "storage_low_c"),
        ({"max_freeze_thaw_cycles": -1}, "max_freeze_thaw_cycles"),
        ({"max_freez_thaw_cycles": 1}, "max_freez_thaw_cycles"),
    ],
)
def test_a_bad_document_names_its_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRecordError) as refused:
        profile_from_doc({**profile_to_doc(TWO_BANDS), **change})
    assert refused.value.field == field
