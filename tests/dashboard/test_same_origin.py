"""The dashboard's cross-site request check (pure)."""

from __future__ import annotations

import pytest

from dashboard.pages.login import same_origin


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        (None, "127.0.0.1:8050", True),  # not a browser's cross-site POST
        ("http://127.0.0.1:8050", "127.0.0.1:8050", True),
        ("https://cc.example.com", "cc.example.com", True),  # behind a TLS-terminating proxy
        ("https://CC.example.com", "cc.example.com", True),
        ("http://127.0.0.1:9999", "127.0.0.1:8050", False),  # another port: same site, not origin
        ("https://evil.example", "cc.example.com", False),
        ("null", "cc.example.com", False),  # sandboxed frame or file: page
    ],
)
def test_only_the_dashboards_own_origin_may_post(
    origin: str | None, host: str, allowed: bool
) -> None:
    assert same_origin(origin, host) is allowed
