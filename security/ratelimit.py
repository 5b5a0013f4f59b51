"""A limiter for failed logins (and failed signature passwords), per user name and per client.

Sliding window: at most ``max_failures`` failures per user name within ``window_s``, and
``max_failures × client_factor`` per client address (one address trying many user names). While
over the limit every attempt is refused without checking the password, so a guessing attack gets
a handful of tries per window, and the hasher's cost cannot be used to load the server. A
success clears the user name's failures.

In memory, per process: a deployment with several web processes allows that many times the
attempts (README "Security" says so). The clock is injected, for tests.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class LoginLimiter:
    """Counts failures per key in a sliding window (thread-safe)."""

    def __init__(
        self,
        *,
        max_failures: int,
        window_s: float,
        client_factor: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.client_factor = client_factor
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _limits(self, user: str | None, client: str | None) -> list[tuple[str, int]]:
        keys = []
        if user is not None:
            keys.append(("user:" + user.lower(), self.max_failures))
        if client is not None:
            keys.append(("client:" + client, self.max_failures * self.client_factor))
        return keys

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def retry_after(self, *, user: str | None, client: str | None) -> float | None:
        """Seconds until an attempt for ``user`` from ``client`` is considered; None: now."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key, limit in self._limits(user, client):
                failures = self._recent(key, now)
                if len(failures) >= limit:
                    # Allowed again when enough old failures leave the window.
                    wait = max(wait, failures[len(failures) - limit] + self.window_s - now)
        return wait if wait > 0 else None

    def failed(self, *, user: str | None, client: str | None) -> None:
        """Record a failed attempt."""
        now = self._clock()
        with self._lock:
            for key, _ in self._limits(user, client):
                self._recent(key, now)
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, *, user: str) -> None:
        """A successful login forgets the user name's failures (not the client's)."""
        with self._lock:
            self._failures.pop("user:" + user.lower(), None)
