"""The web app in a real browser: ``allocator serve`` in a subprocess, driven by headless Chromium.

Chromium (Debian's ``/usr/bin/chromium``) runs once per check in ``--dump-dom`` mode (the DOM
after the page's scripts ran) or ``--screenshot`` mode, with ``--enable-logging=stderr``: every
console message of the page (``console.*`` and uncaught errors) is logged there as a
``CONSOLE`` line, and the pages write none, so any such line fails the test. Links and embedded
resources are fetched with httpx.

Each page kind (dashboard, runs, trades, a backtest's trade list, the API page, a tuning report
and a run page for each job in the fixture) is also read as a reviewer would (issue 19, item 7):

- every request the page made, taken from Chromium's network log (``--log-net-log``: a request
  with an initiator was made by the page, not by the browser itself), goes to the app;
- no ``src``/``href``/``action`` names another host;
- no ``NaN``, ``e+0`` notation, ``dtype:`` or ``None`` cell, no number with more than four
  decimals, and every numeric cell is formatted (``$1,234``, ``$8,561.55``, ``6.2 %``, ``—``);
- a 1280-px wide screenshot is taken (``ALLOCATOR_SCREENSHOT_DIR`` keeps them; by default they
  go to the test's temporary folder).

Probe pages prove the console and network captures work. Without Chromium the module is
skipped, unless ``CI`` is set (then it fails).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from allocator.shell.persistence import make_engine
from allocator.shell.persistence.migrate import upgrade
from tests.webdata import record_report_runs, record_runs, run_sessions, settings_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]
CONSOLE_LINE = re.compile(r":CONSOLE[:(\]].*")
STARTUP_SECONDS = 60
SCREEN_WIDTH, SCREEN_HEIGHT = 1280, 1600
#: What no page may show: pandas' and Python's raw values.
RAW = {
    "NaN": re.compile(r"\bNaN\b|\bnan\b"),
    "e+ notation": re.compile(r"\de[+-]0\d"),
    "dtype:": re.compile(r"dtype:"),
    "a None cell": re.compile(r"<t[dh][^>]*>\s*None\s*</t[dh]>"),
    "more than 4 decimals": re.compile(r"\d\.\d{5,}"),
}
#: A numeric cell: blank, "—", dollars (whole or to the cent), a count, a share, seconds.
FORMATTED = re.compile(
    r"^(|—|[+-]?\$[\d,]+(\.\d\d)?|[+-]?\$[\d.]+[kMB]|[+-]?[\d,]+(\.\d{1,4})?( %| s)?)$"
)


@pytest.fixture(scope="module", autouse=True)
def chromium_available():
    if CHROMIUM.exists():
        return
    message = f"headless Chromium is not installed at {CHROMIUM}: apt-get install -y chromium"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so the browser test must run)", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(base: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"allocator serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"allocator serve did not answer within {STARTUP_SECONDS} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``allocator serve`` on a free loopback port over a seeded SQLite database with runs."""
    root = tmp_path_factory.mktemp("web_browser")
    settings = settings_for(f"sqlite:///{root / 'app.sqlite3'}", root)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    run_sessions(engine)
    runs = record_runs(engine, settings) | record_report_runs(engine, settings)
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALLOCATOR_", "DATABASE_"))}
    env.update(
        DATABASE_URL=settings.database_url,
        ALLOCATOR_RUNS_DIR=str(settings.runs_dir),
        ALLOCATOR_REPORTS_DIR=str(settings.reports_dir),
        ALLOCATOR_LOG_DIR=str(root / "log"),
        ALLOCATOR_DOTENV="off",
    )
    port = free_port()
    log = root / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "allocator", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, process, log)
        yield {"base": base, "runs": runs, "root": root}
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def chromium(tmp_path: Path, url: str, *mode: str) -> tuple[str, list[str]]:
    """Run headless Chromium on ``url``; returns its stdout and the page's console lines."""
    profile = tmp_path / f"chromium-profile-{time.monotonic_ns()}"
    done = subprocess.run(
        [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *mode, url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    shutil.rmtree(profile, ignore_errors=True)
    return done.stdout, [m.group(0) for m in CONSOLE_LINE.finditer(done.stderr)]


def page_requests(net_log: Path) -> list[str]:
    """The URLs the page itself asked for, from Chromium's network log.

    A request the page made carries its initiator (the page's origin, ``null`` for a file);
    the browser's own (navigation, update checks) have ``not an origin``.
    """
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    found = []
    for event in log["events"]:
        params = event.get("params") or {}
        by_page = params.get("initiator", "not an origin") != "not an origin"
        if event["type"] == start and "url" in params and by_page:
            found.append(params["url"])
    return found


def read_page(tmp_path: Path, url: str) -> tuple[str, list[str]]:
    """The DOM of ``url`` after its scripts ran, and every URL the page requested."""
    net_log = tmp_path / f"net-{time.monotonic_ns()}.json"
    dom, console = chromium(tmp_path, url, "--dump-dom", f"--log-net-log={net_log}")
    assert console == [], f"console messages on {url}:\n" + "\n".join(console)
    return dom, page_requests(net_log)


def dump_dom(tmp_path: Path, url: str) -> str:
    """The DOM of ``url`` after its scripts ran; fails on any console message."""
    dom, console = chromium(tmp_path, url, "--dump-dom")
    assert console == [], f"console messages on {url}:\n" + "\n".join(console)
    return dom


def screenshot(tmp_path: Path, url: str, name: str) -> Path:
    """A PNG of ``url`` in a 1280-px wide window, kept in ``ALLOCATOR_SCREENSHOT_DIR`` if set."""
    folder = Path(os.environ.get("ALLOCATOR_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    size = f"--window-size={SCREEN_WIDTH},{SCREEN_HEIGHT}"
    _, console = chromium(tmp_path, url, f"--screenshot={path}", size, "--hide-scrollbars")
    assert console == [], f"console messages on {url}:\n" + "\n".join(console)
    png = path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n", f"no screenshot of {url}"
    assert struct.unpack(">I", png[16:20])[0] == SCREEN_WIDTH, f"{name} is not 1280 px wide"
    return path


class Page(HTMLParser):
    """The links, embedded resources and element texts (by id) of a dumped DOM."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.links: list[str] = []
        self.resources: list[str] = []
        self.addresses: list[str] = []
        self.numeric_cells: list[str] = []
        self.text_by_id: dict[str, str] = {}
        self._open_ids: list[str | None] = []
        self._cell: list[str] | None = None
        self.feed(dom)

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        self.addresses += [v for k, v in attrs if k in ("src", "href", "action") and v]
        if tag == "td" and "num" in (found.get("class") or "").split():
            self._cell = []
        if tag == "a" and found.get("href"):
            self.links.append(found["href"])
        for name in ("src", "href"):
            if tag in ("img", "script", "iframe", "link") and found.get(name):
                self.resources.append(found[name])
        if tag not in ("br", "img", "input", "link", "meta"):
            self._open_ids.append(found.get("id"))
            if found.get("id"):
                self.text_by_id[found["id"]] = ""

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.numeric_cells.append("".join(self._cell).strip())
            self._cell = None
        if self._open_ids and tag not in ("br", "img", "input", "link", "meta"):
            self._open_ids.pop()

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        for element_id in filter(None, self._open_ids):
            self.text_by_id[element_id] += data


def fetched(base: str, page_url: str, targets: list[str]) -> dict[str, int]:
    """The status of each http(s) target (relative ones resolved against ``page_url``)."""
    found = {}
    with httpx.Client(base_url=base, timeout=10) as client:
        for target in targets:
            url = urljoin(page_url, target)
            if url.startswith(base):
                found[target] = client.get(url).status_code
    return found


def test_the_console_capture_sees_errors(tmp_path):
    probe = "data:text/html,<script>console.error('probe-error');undefinedFunction()</script>"
    _, console = chromium(tmp_path, probe, "--dump-dom")
    text = "\n".join(console)
    assert "probe-error" in text and "undefinedFunction" in text


def test_dashboard_shows_the_latest_signal(server, tmp_path):
    base = server["base"]
    latest = httpx.get(f"{base}/api/signals", params={"limit": 1}).json()["items"][0]
    page = Page(dump_dom(tmp_path, f"{base}/"))
    assert page.text_by_id["signal-action"].strip() == latest["action"]
    assert page.text_by_id["signal-date"].strip() == latest["trade_date"]
    assert "Total" in page.text_by_id["portfolio"]
    statuses = fetched(base, f"{base}/", page.links + page.resources)
    assert statuses and set(statuses.values()) == {200}, statuses


def test_every_link_on_the_runs_page_answers(server, tmp_path):
    base = server["base"]
    page = Page(dump_dom(tmp_path, f"{base}/runs"))
    artifacts = [link for link in page.links if link.startswith("/artifacts/")]
    assert len(artifacts) == 15, page.links  # report, md and notebook of five runs
    assert {link.rsplit(".", 1)[-1] for link in artifacts} == {"html", "md", "ipynb"}
    assert f"/runs/{server['runs']['backtest']}/trades" in page.links
    statuses = fetched(base, f"{base}/runs", page.links + page.resources)
    assert set(statuses.values()) == {200}, statuses
    filtered = Page(dump_dom(tmp_path, f"{base}/runs?job=signal&status=succeeded"))
    run_links = [link for link in filtered.links if re.fullmatch(r"/runs/\d+", link)]
    assert run_links == [f"/runs/{server['runs']['signal']}"]


def test_a_run_page_shows_its_report(server, tmp_path):
    base = server["base"]
    url = f"{base}/runs/{server['runs']['signal']}"
    page = Page(dump_dom(tmp_path, url))
    frames = [r for r in page.resources if r.startswith("/artifacts/reports/")]
    assert len(frames) == 1 and frames[0].endswith(".html")
    report = httpx.get(urljoin(url, frames[0]))
    assert report.status_code == 200 and "report body" in report.text
    statuses = fetched(base, url, page.links + page.resources)
    assert set(statuses.values()) == {200}, statuses


def test_the_real_server_refuses_a_raw_dot_dot(server):
    """Sent byte for byte (http.client keeps ``..``; httpx and browsers would remove it)."""
    import http.client

    host, port = server["base"].removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    for path in ("/artifacts/runs/../app.sqlite3", "/artifacts/reports/../../serve.log"):
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        assert response.status == 403, path
        assert b"SQLite" not in body
    connection.close()


# --- every page kind, read as a reviewer would (issue 19, item 7) ------------------------------


def test_the_request_capture_sees_a_pages_external_requests(tmp_path):
    """A page loading an image, a script, a style sheet and a fetch from another host (a
    TEST-NET address: nothing answers, but each request is made and logged)."""
    probe = tmp_path / "probe.html"
    host = "http://198.51.100.7"
    probe.write_text(
        f'<img src="{host}/x.png"><script src="{host}/x.js"></script>'
        f'<link rel="stylesheet" href="{host}/x.css">'
        f"<script>fetch('{host}/api').catch(() => 0)</script>"
    )
    net_log = tmp_path / "probe-net.json"
    chromium(tmp_path, probe.as_uri(), "--dump-dom", f"--log-net-log={net_log}")
    requests = page_requests(net_log)
    assert {f"{host}/{name}" for name in ("x.png", "x.js", "x.css", "api")} <= set(requests)


def page_kinds(runs: dict[str, int]) -> dict[str, str]:
    """Screenshot name -> path of each page kind, with a run page for each job in the fixture."""
    kinds = {
        "dashboard": "/",
        "runs": "/runs",
        "trades": "/trades",
        "trades-SPY": "/trades?symbol=SPY&start=2026-11-03&limit=5",
        "backtest-trades": f"/runs/{runs['backtest']}/trades",
        "api": "/docs",
        "tuning": "/tuning/2026-11",
    }
    for name, run_id in runs.items():
        kinds[f"run-{name}"] = f"/runs/{run_id}"
    return kinds


def reads_badly(dom: str, page: Page, base: str) -> list[str]:
    """What a reviewer should not see on a page (an empty list: nothing)."""
    problems = [f"{what}: {m.group(0)!r}" for what, rx in RAW.items() if (m := rx.search(dom))]
    for address in page.addresses:
        absolute = urljoin(base + "/", address)
        if absolute.startswith(("http:", "https:", "//")) and not absolute.startswith(base):
            problems.append(f"a link or resource on another host: {address}")
    problems += [f"unformatted number {c!r}" for c in page.numeric_cells if not FORMATTED.match(c)]
    return problems


def test_every_page_kind_reads_well_offline_at_1280_px(server, tmp_path):
    base = server["base"]
    kinds = page_kinds(server["runs"])
    assert {"run-signal", "run-execute", "run-tune", "run-fetch", "run-backtest"} <= set(kinds)
    for name, path in kinds.items():
        url = f"{base}{path}"
        dom, requests = read_page(tmp_path, url)
        outside = [r for r in requests if not r.startswith((base, "data:"))]
        assert outside == [], f"{name} asked another host: {outside}"
        page = Page(dom)
        assert reads_badly(dom, page, base) == [], name
        for frame in [r for r in page.resources if r.startswith("/artifacts/reports/")]:
            report = httpx.get(urljoin(url, frame)).text
            assert reads_badly(report, Page(report), base) == [], f"report of {name}"
        screenshot(tmp_path, url, f"{name}.png")


def test_numbers_are_formatted_on_the_pages(server, tmp_path):
    base = server["base"]
    dashboard = Page(dump_dom(tmp_path, f"{base}/"))
    headline = dashboard.text_by_id["headline"]
    assert re.search(r"Value\s*\$[\d,]+(?![\d.])", headline)
    assert re.search(r"TWR\s*-?[\d.]+ %", headline)
    assert re.search(r"Sharpe\s*—\s*annualised from \d sessions", headline)
    assert re.search(r"\$[\d,]+", dashboard.text_by_id["total-value"])
    trades = Page(dump_dom(tmp_path, f"{base}/runs/{server['runs']['backtest']}/trades?limit=5"))
    cells = trades.numeric_cells
    assert "$8,561.55" in cells and "1.2346" in cells and "—" in cells, cells
