"""The API's documentation pages work with no internet (issue 14): Swagger UI comes
from the app's own files, the pages have no inline script and a strict policy, and in the real
headless Chromium (this machine has no internet) Swagger UI renders the operations with no error
in the console."""

from __future__ import annotations

import re

import httpx
import pytest
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from api.docs import ASSETS_URL, DOCS_URL, OWN_ASSETS_URL
from tests.fixtures.web import LiveServer, screenshot

pytestmark = [pytest.mark.integration]


def _sources(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_the_docs_page_loads_only_from_this_origin(web_server: LiveServer) -> None:
    path = DOCS_URL
    r = httpx.get(web_server.url + path, timeout=30)
    assert r.status_code == 200
    sources = _sources(r.text)
    assert sources, "the page loads its bundle"
    for src in sources:
        assert src.startswith("/"), f"{path} loads {src} from another origin"
        asset = httpx.get(web_server.url + src, timeout=30)
        assert asset.status_code == 200, src
        assert len(asset.content) > 100, src
    assert not re.search(r"<script>(?!\s*</script>)", r.text), "no inline script"
    policy = r.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    assert r.headers["X-Frame-Options"] == "DENY"


def test_the_bundles_are_the_ones_the_pages_name(web_server: LiveServer) -> None:
    js = httpx.get(f"{web_server.url}{ASSETS_URL}/swagger-ui-bundle.js", timeout=30)
    assert "SwaggerUIBundle" in js.text
    init = httpx.get(f"{web_server.url}{OWN_ASSETS_URL}/swagger-init.js", timeout=30)
    assert "data-openapi-url" in init.text
    assert httpx.get(f"{web_server.url}{ASSETS_URL}/no-such.js", timeout=30).status_code == 404


@pytest.mark.browser
def test_swagger_ui_renders_offline_without_console_errors(
    browser: WebDriver, web_server: LiveServer
) -> None:
    browser.get_log("browser")  # type: ignore[attr-defined]  # drop earlier pages' entries
    browser.get(web_server.url + DOCS_URL)
    # An operation block of the API (shipments are the first resource) is drawn from the
    # OpenAPI document: Swagger UI loaded, ran and read /api/openapi.json.
    WebDriverWait(browser, 30, poll_frequency=0.2).until(
        lambda d: d.execute_script(
            "return document.querySelectorAll('.opblock').length"
            " && document.querySelector('.opblock-summary-path[data-path=\"/api/v1/shipments\"]')"
            " !== null"
        )
    )
    count = browser.execute_script("return document.querySelectorAll('.opblock').length")
    assert count > 50, f"only {count} operations drawn"
    title = browser.execute_script("return document.querySelector('.title').textContent")
    assert "Cold chain API" in title
    screenshot(browser, "api-docs")
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]  # type: ignore[attr-defined]
    assert severe == []
