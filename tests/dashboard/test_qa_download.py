"""QA downloads a shipment's excursion report from the review page, in a real Chromium."""

from __future__ import annotations

import re
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.dashboard.test_browser import _login_as, _open, _seed, _text_of, _wait
from tests.fixtures.auth import Person
from tests.fixtures.web import LiveServer, screenshot

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def _downloaded(folder: Path, name: str, within_s: float = 20.0) -> Path:
    deadline = time.monotonic() + within_s
    path = folder / name
    while not path.exists() or path.stat().st_size == 0:  # Chromium writes *.crdownload first
        assert time.monotonic() < deadline, f"{name} not downloaded; {list(folder.iterdir())}"
        time.sleep(0.1)
    return path


def test_qa_downloads_the_pdf_report_of_the_hot_shipment(
    web_server: LiveServer,
    browser: WebDriver,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
    tmp_path: Path,
) -> None:
    _seed(db_dsn)
    browser.execute_cdp_cmd(  # Chrome-only API
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
    )
    _login_as(browser, web_server, session_cookie(people["qa"]))
    _open(browser, web_server.url + "/qa/SHP-HOT")
    _wait(browser).until(lambda d: len(_text_of(d, "#qa-content-hash") or "") == 64)
    shown_hash = _text_of(browser, "#qa-content-hash")
    browser.execute_script("document.querySelector('button[data-fmt=\"pdf\"]').click();")
    pdf = _downloaded(tmp_path, "report-SHP-HOT.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert b"/Title (Excursion report SHP-HOT)" in pdf
    screenshot(browser, "qa-review-download")
    # It is the report on screen: the content hash the page shows is printed in the PDF.
    assert shown_hash is not None and len(shown_hash) == 64
    assert shown_hash.encode() in _page_text(pdf)


def _page_text(pdf: bytes) -> bytes:
    """The PDF's content streams, inflated (enough to find a string the report printed)."""
    out = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            out.append(zlib.decompress(match.group(1)))
        except zlib.error:
            out.append(match.group(1))
    return b"\n".join(out)
