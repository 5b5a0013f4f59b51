"""A limiter for failed logins (and failed signature passwords): per account and address, per
address, and per account.

The policy (README "Security"), over a sliding window of ``window_s``:

* **Account at one address** (user name × client address): at most ``max_failures`` attempts
  that did not succeed; then that account is refused *from that address* until old attempts leave
  the window. This is the lockout: it stops guessing one person's password, and it cannot lock
  the person out from anywhere else, so an attacker behind a shared address (a NAT, a proxy)
  cannot lock out the admin.
* **Address** (any account): after ``max_failures × client_factor`` unsuccessful attempts, the
  address is *throttled*, not locked: one attempt per ``throttle_s`` (by default the window
  divided by that limit, so one address keeps the same long-run rate as before but nobody behind
  it waits longer than ``throttle_s`` for a turn). This slows credential stuffing (one
  password per account, many accounts) from one address.
* **Account** (any address): the same throttle after ``max_failures × client_factor``
  unsuccessful attempts from anywhere, against guessing one password from many addresses.

Atomic: :meth:`LoginLimiter.begin` checks the limits *and* counts the attempt in one step under a
lock, before the (slow) password check; an attempt counts as a failure unless it is reported as
:meth:`~LoginLimiter.succeeded`. So parallel attempts cannot all pass the check before any of
them is counted (40 at once: at most ``max_failures`` are checked).

In memory, per process: a deployment with several web processes allows that many times the
attempts (README "Security" says so). The clock is injected, for tests.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from security.errors import RateLimitedError


@dataclass(frozen=True, slots=True)
class Attempt:
    """An attempt counted by :meth:`LoginLimiter.begin`: the keys it was counted under, and when."""

    keys: tuple[str, ...]
    at: float
    pair: str


class LoginLimiter:
    """Counts unsuccessful attempts per key in a sliding window (thread-safe)."""

    def __init__(
        self,
        *,
        max_failures: int,
        window_s: float,
        client_factor: int = 4,
        throttle_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.client_factor = client_factor
        self.throttle_s = (
            throttle_s if throttle_s is not None else window_s / (max_failures * client_factor)
        )
        self._clock = clock
        self._attempts: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(user: str, client: str | None) -> tuple[str, str, str]:
        name, address = user.strip().lower(), client or "?"
        return f"pair:{name}\x00{address}", f"client:{address}", f"user:{name}"

    def _recent(self, key: str, now: float) -> deque[float]:
        attempts = self._attempts.get(key)
        if attempts is None:
            return deque()
        while attempts and attempts[0] <= now - self.window_s:
            attempts.popleft()
        if not attempts:
            del self._attempts[key]
        return attempts

    def _wait(self, keys: tuple[str, str, str], now: float) -> float:
        pair, *throttled = keys
        wait = 0.0
        attempts = self._recent(pair, now)
        if len(attempts) >= self.max_failures:
            # Locked: allowed again when enough old attempts leave the window.
            wait = attempts[len(attempts) - self.max_failures] + self.window_s - now
        for key in throttled:
            attempts = self._recent(key, now)
            if len(attempts) >= self.max_failures * self.client_factor:
                # Throttled: one attempt per throttle_s.
                wait = max(wait, attempts[-1] + self.throttle_s - now)
        return wait

    def retry_after(self, *, user: str, client: str | None) -> float | None:
        """Seconds until an attempt for ``user`` from ``client`` is considered; None: now."""
        now = self._clock()
        with self._lock:
            wait = self._wait(self._keys(user, client), now)
        return wait if wait > 0 else None

    def begin(self, *, user: str, client: str | None) -> Attempt:
        """Count an attempt for ``user`` from ``client`` now, before its password is checked;
        RateLimitedError (nothing counted) when it is over a limit."""
        now = self._clock()
        keys = self._keys(user, client)
        with self._lock:
            wait = self._wait(keys, now)
            if wait <= 0:
                for key in keys:
                    self._attempts.setdefault(key, deque()).append(now)
        if wait > 0:
            raise RateLimitedError(
                f"too many failed attempts; try again in {max(1, round(wait))} s",
                retry_after=wait,
            )
        return Attempt(keys=keys, at=now, pair=keys[0])

    def succeeded(self, attempt: Attempt) -> None:
        """The attempt succeeded: it is not a failure, and the account's failures from that
        address are forgotten (not the address's nor the account's elsewhere)."""
        with self._lock:
            self._attempts.pop(attempt.pair, None)
            for key in attempt.keys[1:]:
                attempts = self._attempts.get(key)
                if attempts is not None:
                    with contextlib.suppress(ValueError):  # it may have left the window
                        attempts.remove(attempt.at)
                    if not attempts:
                        del self._attempts[key]
