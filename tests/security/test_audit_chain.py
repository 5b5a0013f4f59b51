"""The audit hash chain in Python (pure): what verify accepts and what it catches."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from security.audit import GENESIS_HASH, AuditEntry, audit_material, entry_hash, verify_chain

T0 = datetime(2026, 11, 26, 3, 4, 5, 123456, tzinfo=UTC)


def chain(n: int) -> list[AuditEntry]:
    entries, prev = [], GENESIS_HASH
    for i in range(1, n + 1):
        e = AuditEntry(
            id=100 + i,
            seq=i,
            at=T0 + timedelta(seconds=i),
            actor="ana.ruiz",
            actor_role="operator",
            action="update",
            entity="alerts",
            entity_id=str(i),
            before='{"state": "open"}',
            after='{"state": "acknowledged"}',
            reason=None if i % 2 else "reefer reset",
            source="127.0.0.1",
            prev_hash=prev,
            hash="",
        )
        e = dataclasses.replace(e, hash=entry_hash(e, prev))
        entries.append(e)
        prev = e.hash
    return entries


def test_material_is_length_prefixed_and_versioned() -> None:
    e = chain(1)[0]
    text = audit_material(e, GENESIS_HASH)
    assert text.startswith("coldchain-audit-v1|1|2026-11-26T03:04:06.123456Z|8:ana.ruiz|")
    assert "|-|" in text  # NULL reason
    assert text.endswith("|" + GENESIS_HASH)


def test_an_intact_chain_verifies_and_an_empty_one_too() -> None:
    entries = chain(5)
    verdict = verify_chain(entries)
    assert verdict.ok and verdict.entries == 5 and verdict.head == entries[-1].hash
    assert "intact" in verdict.summary()
    assert verify_chain([]).ok and verify_chain([]).head == GENESIS_HASH


def test_an_edited_entry_is_named() -> None:
    entries = chain(5)
    entries[2] = dataclasses.replace(entries[2], actor="mallory")
    verdict = verify_chain(entries)
    assert not verdict.ok and verdict.broken_seq == 3 and verdict.broken_id == 103
    assert "edited" in (verdict.problem or "")
    assert "seq 3" in verdict.summary()


def test_a_deleted_entry_breaks_the_next_one() -> None:
    entries = chain(5)
    del entries[1]
    verdict = verify_chain(entries)
    assert not verdict.ok and verdict.broken_seq == 3
    assert "missing" in (verdict.problem or "")


def test_a_recomputed_entry_still_breaks_the_link_of_the_next() -> None:
    entries = chain(4)
    forged = dataclasses.replace(entries[1], after='{"state": "resolved"}')
    entries[1] = dataclasses.replace(forged, hash=entry_hash(forged, forged.prev_hash))
    verdict = verify_chain(entries)
    assert verdict.broken_seq == 3 and "link" in (verdict.problem or "")


FIELDS = [
    "actor",
    "actor_role",
    "action",
    "entity",
    "entity_id",
    "before",
    "after",
    "reason",
    "source",
]


@given(st.sampled_from(FIELDS), st.text(max_size=20), st.integers(0, 3))
def test_any_change_of_any_field_is_caught(field: str, value: str, index: int) -> None:
    entries = chain(4)
    if getattr(entries[index], field) == value:
        return
    changes: dict[str, Any] = {field: value}
    entries[index] = dataclasses.replace(entries[index], **changes)
    assert verify_chain(entries).broken_seq == index + 1


@pytest.mark.parametrize("delta", [timedelta(microseconds=1), timedelta(hours=-1)])
def test_a_changed_time_is_caught(delta: timedelta) -> None:
    entries = chain(3)
    entries[0] = dataclasses.replace(entries[0], at=entries[0].at + delta)
    assert verify_chain(entries).broken_seq == 1
