"""The failed-login limiter (pure, with an injected clock): lockout per account and address,
throttling per address and per account, and atomic counting under parallel attempts."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from security.errors import RateLimitedError
from security.ratelimit import LoginLimiter


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _fail(lim: LoginLimiter, user: str, client: str | None) -> None:
    lim.begin(user=user, client=client)  # counted; never reported as a success


def test_an_account_is_locked_at_one_address_only_and_forgets_with_time() -> None:
    clock = Clock()
    lim = LoginLimiter(max_failures=3, window_s=60, clock=clock)
    for _ in range(3):
        _fail(lim, "ana", "10.0.0.1")
    with pytest.raises(RateLimitedError) as refused:
        lim.begin(user="ANA", client="10.0.0.1")  # names are case-insensitive
    assert refused.value.retry_after == pytest.approx(60)
    assert lim.retry_after(user="ana", client="10.0.0.2") is None  # not from elsewhere
    assert lim.retry_after(user="ben", client="10.0.0.1") is None  # nor other accounts here
    clock.t += 30
    assert lim.retry_after(user="ana", client="10.0.0.1") == pytest.approx(30)
    clock.t += 30.001
    assert lim.retry_after(user="ana", client="10.0.0.1") is None


def test_a_busy_address_is_throttled_not_locked_and_the_admin_gets_a_turn() -> None:
    clock = Clock()
    lim = LoginLimiter(max_failures=2, window_s=60, client_factor=3, clock=clock)
    assert lim.throttle_s == pytest.approx(10)  # 60 s / (2 × 3)
    for i in range(6):  # credential stuffing: one try for each of six accounts
        _fail(lim, f"user{i}", "10.0.0.9")
    wait = lim.retry_after(user="admin", client="10.0.0.9")
    assert wait == pytest.approx(10)  # a turn in 10 s, not the whole window
    assert lim.retry_after(user="admin", client="10.0.0.8") is None  # other addresses: free
    clock.t += 10
    attempt = lim.begin(user="admin", client="10.0.0.9")
    lim.succeeded(attempt)
    # The success is not a failure: turns are measured from the last failure (10 s ago).
    _fail(lim, "user7", "10.0.0.9")
    assert lim.retry_after(user="user8", client="10.0.0.9") == pytest.approx(10)


def test_one_account_guessed_from_many_addresses_is_throttled() -> None:
    clock = Clock()
    lim = LoginLimiter(max_failures=2, window_s=60, client_factor=3, clock=clock)
    for i in range(6):
        _fail(lim, "admin", f"10.0.1.{i}")
    assert lim.retry_after(user="admin", client="10.0.2.1") == pytest.approx(10)
    assert lim.retry_after(user="ana", client="10.0.2.1") is None


def test_success_forgets_the_accounts_failures_at_that_address() -> None:
    clock = Clock()
    lim = LoginLimiter(max_failures=2, window_s=60, clock=clock)
    _fail(lim, "ana", None)
    lim.succeeded(lim.begin(user="ana", client=None))
    _fail(lim, "ana", None)
    assert lim.retry_after(user="ana", client=None) is None  # one failure since the success


def test_parallel_attempts_are_counted_before_any_password_is_checked() -> None:
    lim = LoginLimiter(max_failures=5, window_s=60)
    start = threading.Barrier(40)
    admitted: list[int] = []

    def attempt(i: int) -> None:
        start.wait()
        try:
            lim.begin(user="ana", client="10.0.0.1")
        except RateLimitedError:
            return
        admitted.append(i)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 5


@settings(max_examples=50)
@given(st.lists(st.floats(min_value=0, max_value=200), max_size=30))
def test_an_account_at_an_address_never_gets_more_than_max_failures_in_a_window(
    gaps: list[float],
) -> None:
    clock = Clock()
    lim = LoginLimiter(max_failures=4, window_s=100, client_factor=100, clock=clock)
    accepted: list[float] = []
    for gap in gaps:
        clock.t += gap
        try:
            lim.begin(user="x", client="10.0.0.1")
        except RateLimitedError:
            continue
        accepted.append(clock.t)
    for t in accepted:
        assert sum(1 for u in accepted if t - 100 < u <= t) <= 4
