"""The dashboard's security headers (issue 11, point 17), against the real app and in the real
headless Chromium: every answer forbids framing and sniffing, and the pages still work under the
Content-Security-Policy with no violation in the browser's console."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from dashboard.app import security_headers
from tests.dashboard.test_browser import (
    _login_as,
    _open,
    _seed,
    _text_of,
    _wait,
    wait_for_markers,
)
from tests.fixtures.auth import Person
from tests.fixtures.web import LiveServer

pytestmark = [pytest.mark.integration, pytest.mark.browser]

# What a blocked script, style, worker, image or frame logs in Chromium.
CSP_WORDS = ("Content Security Policy", "Refused to")


def _log(driver: WebDriver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser")]  # type: ignore[attr-defined]


def _inline_scripts(html: str) -> list[str]:
    """The bodies of the page's inline scripts that a browser would run (not JSON data, not the
    Internet Explorer comment)."""
    html = re.sub(r"<!--.*?-->", "", html, flags=re.S)
    found = []
    for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S):
        if "src=" in attrs or "application/json" in attrs:
            continue
        found.append(body)
    return found


def test_every_dashboard_answer_carries_the_headers(web_server: LiveServer) -> None:
    for path in ("/login", "/_dash-layout", "/assets/style.css", "/no-such-page"):
        r = httpx.get(web_server.url + path, timeout=30)
        assert r.headers["X-Frame-Options"] == "DENY", path
        assert r.headers["X-Content-Type-Options"] == "nosniff", path
        assert r.headers["Referrer-Policy"] == "same-origin", path
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"], path


def test_the_policy_allows_exactly_the_inline_scripts_dash_writes(web_server: LiveServer) -> None:
    r = httpx.get(web_server.url + "/login", timeout=30)
    policy = dict(
        part.strip().split(" ", 1) for part in r.headers["Content-Security-Policy"].split(";")
    )
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    scripts = _inline_scripts(r.text)
    assert scripts, "Dash writes its renderer as an inline script"
    for body in scripts:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy["script-src"]


def test_security_headers_name_the_tile_origin_only_when_there_are_tiles() -> None:
    with_tiles = security_headers(["'sha256-abc'"], "https://tiles.example/{z}/{x}/{y}.png")
    assert (
        "img-src 'self' data: blob: https://tiles.example;"
        in (with_tiles["Content-Security-Policy"])
    )
    assert "script-src 'self' 'sha256-abc';" in with_tiles["Content-Security-Policy"]
    without = security_headers([], None)["Content-Security-Policy"]
    assert "connect-src 'self';" in without and "script-src 'self';" in without


def test_pages_work_under_the_policy_with_no_violation(
    web_server: LiveServer,
    browser: WebDriver,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
) -> None:
    seeded = _seed(db_dsn)
    _login_as(browser, web_server, session_cookie(people["operator"]))
    seen: list[str] = []
    _open(browser, web_server.url + "/")
    row = '#fleet-table tr.fleet-row[data-reference="SHP-COOL"]'
    _wait(browser).until(lambda d: _text_of(d, f"{row} td.cell-temp") == "4.5 °C")
    # MapLibre draws in blob workers with WebGL: the markers prove the workers ran.
    wait_for_markers(browser, 2)
    seen += _log(browser)
    _open(browser, web_server.url + "/shipments/SHP-HOT")
    _wait(browser).until(lambda d: _text_of(d, "#shipment-header h1") == "SHP-HOT")
    _wait(browser).until(
        lambda d: d.execute_script(
            "return !!document.querySelector('#shipment-temp-graph .js-plotly-plot .scatterlayer');"
        )
    )
    seen += _log(browser)
    _open(browser, web_server.url + "/alerts")
    alert = f'tr.alert-row[data-alert-id="{seeded["alert"]}"]'
    _wait(browser).until(lambda d: d.execute_script(f"return !!document.querySelector('{alert}');"))
    seen += _log(browser)
    assert [m for m in seen if any(w in m for w in CSP_WORDS)] == []


@contextlib.contextmanager
def _attacker_site(victim: str) -> Iterator[str]:
    """Another origin (its own port on the loopback) whose page frames ``victim``."""
    page = f'<html><body><iframe id="victim" src="{victim}"></iframe></body></html>'.encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_another_site_cannot_frame_the_dashboard(
    web_server: LiveServer, browser: WebDriver
) -> None:
    # Clickjacking: a page of another origin puts the dashboard in a frame. The browser must
    # show its own error page in the frame instead of the dashboard.
    with _attacker_site(web_server.url + "/login") as attacker:
        _open(browser, attacker)
        browser.switch_to.frame("victim")
        try:
            location = _wait(browser).until(
                lambda d: (
                    (href := d.execute_script("return location.href;")) != "about:blank" and href
                )
            )
            assert location.startswith("chrome-error://"), location
            assert not browser.find_elements(By.CSS_SELECTOR, "input[type=password]")
        finally:
            browser.switch_to.default_content()
