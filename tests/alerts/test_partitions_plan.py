"""The sharing rule of several rules engines (alerts.partitions.plan), with numbers."""

from __future__ import annotations

import pytest

from alerts.partitions import fair_share, plan


@pytest.mark.parametrize(
    ("partitions", "engines", "share"), [(16, 1, 16), (16, 2, 8), (16, 3, 6), (5, 2, 3), (1, 4, 1)]
)
def test_the_fair_share_is_the_ceiling(partitions: int, engines: int, share: int) -> None:
    assert fair_share(partitions, engines) == share


def test_alone_an_engine_takes_everything() -> None:
    decided = plan(frozenset(), [], 16)
    assert (decided.release, decided.target) == ((), 16)


def test_a_newcomer_gets_the_extras_highest_first() -> None:
    decided = plan(frozenset(range(16)), [0], 16)
    assert decided.release == tuple(range(15, 7, -1)) and decided.target == 8


def test_nobody_short_of_a_share_means_free_partitions_are_taken() -> None:
    # A killed engine's partitions are free while its row still says it holds them.
    decided = plan(frozenset(range(8)), [8], 16)
    assert (decided.release, decided.target) == ((), 16)


def test_three_engines_settle_without_flapping() -> None:
    held = {"a": set(range(8)), "b": set(range(8, 16)), "c": set()}
    for _ in range(4):  # beats, one engine after the other
        for name in held:
            others = [len(h) for n, h in held.items() if n != name]
            decided = plan(frozenset(held[name]), others, 16)
            held[name] -= set(decided.release)
            taken = set().union(*held.values())
            for p in range(16):
                if len(held[name]) >= decided.target:
                    break
                if p not in taken:
                    held[name].add(p)
    assert sorted(len(h) for h in held.values()) == [4, 6, 6]
    assert set().union(*held.values()) == set(range(16))
