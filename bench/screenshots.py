"""Screenshots of every dashboard page, as each role that sees it, for the README.

Run: ``make screenshots`` (= ``.venv/bin/python -m bench.screenshots [--out docs/screenshots]``),
about 3 minutes. It starts the demo exactly as ``make demo`` does (``coldchain up``, on free
ports, in a private data directory under ``/tmp``), waits until the demo fleet's first excursion
has raised its alert, logs in through the form as each demo role (viewer, operator, qa, admin:
the passwords ``coldchain up`` prints), and saves each page at 1600×1000 in headless Chromium —
with no internet, so the pictures are what a site without it sees — as
``<out>/<page>-<role>.png``, with an index ``<out>/README.md``. Then it stops the demo (SIGINT,
as Ctrl-C would) and removes its data.

Which pages: :data:`PAGES` (what each role is shown), plus every ``PATH`` a module of
``dashboard.pages`` declares that the table does not name yet (shot as admin, and reported), so
a new page is never left out silently. The pictures are quantised to 256 colours (Pillow) to keep
the repository small.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from launcher.localstack import free_port
from tests.fixtures.web import chromium_options

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1600, 1000
ROLES = ("viewer", "operator", "qa", "admin")
#: ``{shipment}`` is the demo shipment with an open alert (its excursion on the chart).
SHIPMENT = "{shipment}"


@dataclass(frozen=True, slots=True)
class Page:
    """One picture: the path, its file name, the roles it is taken as, and what it shows."""

    path: str
    name: str
    roles: tuple[str, ...]
    caption: str


PAGES = (
    Page("/login", "login", ("anonymous",), "The login page."),
    Page("/", "fleet", ("operator", "viewer"), "Fleet: every shipment, its condition, the map."),
    Page(
        "/alerts",
        "alerts",
        ("operator", "viewer"),
        "Alerts: what is open, acknowledged, escalated (the viewer cannot act).",
    ),
    Page(
        f"/shipments/{SHIPMENT}",
        "shipment",
        ("qa", "operator"),
        "A shipment in excursion: chart, MKT and budget, legs, units.",
    ),
    Page("/qa", "qa", ("qa",), "QA: the shipments to review and their reports."),
    Page(f"/qa/{SHIPMENT}", "qa-review", ("qa",), "QA review of one shipment's report."),
    Page("/passport", "passport", ("viewer",), "Passport: a unit's history by identifier."),
    Page(
        "/insight",
        "insight",
        ("viewer", "admin"),
        "Insight: lane risk, a lane's months, carriers leg by leg, the weekly report.",
    ),
    Page("/products", "products", ("qa",), "Products and their stability profiles."),
    Page("/loggers", "loggers", ("admin",), "Loggers: registration, calibration, battery."),
    Page("/sites", "sites", ("admin",), "Sites (locations) and carriers."),
    Page("/new-shipment", "new-shipment", ("operator",), "Booking a new shipment."),
    Page(
        "/oncall",
        "oncall",
        ("viewer", "admin"),
        "On call: who is on call now in each rotation, the next hand-overs, overrides.",
    ),
    Page("/admin", "admin", ("admin", "qa"), "Admin: the screens each role may open."),
    Page("/admin/people", "admin-people", ("admin",), "People: roles, sessions, passwords."),
    Page("/admin/api-keys", "admin-keys", ("admin",), "API keys: created, used, revoked."),
    Page("/admin/rules", "admin-rules", ("admin",), "Stored rules: versions, who, why, diff."),
    Page("/admin/questions", "admin-questions", ("admin",), "Questions asked and the answers."),
    Page(
        "/admin/system",
        "admin-system",
        ("admin",),
        "System: engine lag, the outbox, test notifications per channel and person.",
    ),
    Page("/api/docs", "api-docs", ("viewer",), "The API's documentation, served offline."),
)


def declared_paths() -> set[str]:
    """Every ``PATH`` (and ``…_PATH``) the dashboard's page modules declare (prefixes such as
    ``/shipments/`` are left out: their pages are in :data:`PAGES` with an example)."""
    import dashboard.pages as pages

    found = set()
    for info in pkgutil.iter_modules(pages.__path__):
        module = importlib.import_module(f"dashboard.pages.{info.name}")
        for name, value in vars(module).items():
            named = name == "PATH" or name.endswith("_PATH")
            if named and isinstance(value, str) and value.startswith("/") and value[-1] != "/":
                found.add(value)
    return found


def all_pages() -> tuple[list[Page], list[str]]:
    """:data:`PAGES` plus the declared paths it does not name (as admin), and those paths."""
    named = {p.path for p in PAGES}
    extra = sorted(declared_paths() - named)
    pages = list(PAGES)
    for path in extra:
        name = path.strip("/").replace("/", "-") or "home"
        pages.append(Page(path, name, ("admin",), f"{path} (not yet described)."))
    return pages, extra


# --- the demo ---------------------------------------------------------------------------------


@dataclass
class Demo:
    url: str
    dsn: str
    passwords: dict[str, str]


@contextlib.contextmanager
def demo(work: Path) -> Iterator[Demo]:
    """``coldchain up`` on free ports in ``work``; stopped with SIGINT (as Ctrl-C) at the end."""
    ports = {k: free_port() for k in ("DB", "MQTT", "WEB")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLDCHAIN_")}
    env |= {
        "COLDCHAIN_STACK__DATA_DIR": str(work / "stack"),
        "COLDCHAIN_DB__PORT": str(ports["DB"]),
        "COLDCHAIN_MQTT__PORT": str(ports["MQTT"]),
        "COLDCHAIN_WEB__PORT": str(ports["WEB"]),
    }
    out_path = work / "up.out"
    with out_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "launcher.cli", "up"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
    try:
        deadline = time.monotonic() + 300
        passwords: dict[str, str] = {}
        while len(passwords) < len(ROLES) or "press Ctrl-C" not in out_path.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"coldchain up did not start:\n{out_path.read_text()[-3000:]}")
            time.sleep(0.5)
            passwords = dict(
                re.findall(r"^\[coldchain\]\s+(\w+)\s+user \S+\s+password (\S+)$",
                           out_path.read_text(), flags=re.M)
            )  # fmt: skip
        yield Demo(
            url=f"http://127.0.0.1:{ports['WEB']}",
            dsn=f"host=127.0.0.1 port={ports['DB']} dbname=coldchain user=coldchain"
            " password=coldchain",
            passwords=passwords,
        )
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def caught_up(dsn: str, timeout_s: float = 300) -> None:
    """Wait until the demo plays in real time: every logger's latest reading within 3 minutes
    (the demo plays its first hour fast, and its readings arrive behind until then; pictures
    taken earlier show loggers "offline" that are only catching up)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(psycopg.Error), psycopg.connect(dsn, connect_timeout=3) as conn:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE ts < now() - interval '3 minutes'), count(*)"
                " FROM device_state"
            ).fetchone()
            if row and row[1] and not row[0]:
                return
        time.sleep(2)
    print("the demo's loggers had not all caught up after 5 minutes; shooting anyway")


def shipment_in_alarm(dsn: str, timeout_s: float = 240) -> str:
    """The reference of a demo shipment with an open alert, once there is one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(psycopg.Error), psycopg.connect(dsn, connect_timeout=3) as conn:
            row = conn.execute(
                "SELECT s.reference FROM alerts a JOIN shipments s USING (shipment_id)"
                " WHERE a.state = 'open' ORDER BY a.severity = 'critical' DESC, a.triggered_at"
                " LIMIT 1"
            ).fetchone()
            if row:
                return str(row[0])
        time.sleep(2)
    raise SystemExit("the demo raised no alert within 4 minutes")


# --- the browser ------------------------------------------------------------------------------


@contextlib.contextmanager
def chromium(profile: Path) -> Iterator[webdriver.Chrome]:
    options = chromium_options(profile)
    options.add_argument(f"--window-size={WIDTH},{HEIGHT}")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(60)
    # The page's viewport itself at 1600×1000 (the window size includes the browser's frame).
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        yield driver
    finally:
        driver.quit()


def log_in(driver: webdriver.Chrome, url: str, username: str, password: str) -> None:
    driver.delete_all_cookies()
    driver.get(url + "/login")
    wait = WebDriverWait(driver, 30, poll_frequency=0.1)
    wait.until(lambda d: d.find_elements(By.ID, "login-username"))
    driver.find_element(By.ID, "login-username").send_keys(username)
    driver.find_element(By.ID, "login-password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()
    wait.until(lambda d: "/login" not in d.current_url and d.get_cookie("coldchain_session"))


#: True once Dash has no callback in flight and the page has settled.
SETTLED = """
return document.readyState === 'complete'
    && !document.querySelector('[data-dash-is-loading="true"]')
    && !document.querySelector('._dash-loading');
"""


def shoot(driver: webdriver.Chrome, url: str, path: Path, settle_s: float = 3.0) -> None:
    """Open ``url``, wait until it has settled (and the map and charts drawn), save it."""
    driver.get(url)
    WebDriverWait(driver, 60, poll_frequency=0.2).until(lambda d: d.execute_script(SETTLED))
    time.sleep(settle_s)  # maps and charts animate in after their data arrives
    WebDriverWait(driver, 60, poll_frequency=0.2).until(lambda d: d.execute_script(SETTLED))
    raw = path.with_suffix(".raw.png")
    driver.save_screenshot(str(raw))
    with Image.open(raw) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
        small.save(path, optimize=True)
    raw.unlink()


def write_index(out: Path, shots: list[tuple[Page, str, str]]) -> None:
    lines = [
        "# Screenshots",
        "",
        "Made by `make screenshots` (`bench/screenshots.py`): the demo (`make demo`) in headless",
        f"Chromium at {WIDTH}×{HEIGHT}, with no internet access, as each role that sees the page.",
        "",
        "| Page | As | Picture |",
        "|---|---|---|",
    ]
    for page, role, file in shots:
        lines.append(f"| {page.caption} | {role} | [{file}]({file}) |")
    (out / "README.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = ap.parse_args()
    pages, extra = all_pages()
    if extra:
        print(f"pages not described in bench/screenshots.py PAGES yet (shot as admin): {extra}")
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("*.png"):
        old.unlink()
    work = Path(tempfile.mkdtemp(prefix="coldchain-shots-"))
    work.chmod(0o755)  # the postgres account must reach the data directory when we are root
    shots: list[tuple[Page, str, str]] = []
    started = time.monotonic()
    try:
        with demo(work) as d, chromium(work / "chromium") as driver:
            reference = shipment_in_alarm(d.dsn)
            caught_up(d.dsn)
            print(f"demo up at {d.url}; shipment in alarm: {reference}")
            for role in ("anonymous", *ROLES):
                if role != "anonymous":
                    log_in(driver, d.url, role, d.passwords[role])
                for page in pages:
                    if role not in page.roles:
                        continue
                    file = f"{page.name}-{role}.png"
                    shoot(driver, d.url + page.path.format(shipment=reference), args.out / file)
                    shots.append((page, role, file))
                    size = (args.out / file).stat().st_size
                    print(f"  {file:<28} {size / 1024:6.0f} KB")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_index(args.out, shots)
    total = sum((args.out / f).stat().st_size for _, _, f in shots)
    print(
        f"{len(shots)} screenshots in {args.out} ({total / 1e6:.1f} MB)"
        f" in {time.monotonic() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
