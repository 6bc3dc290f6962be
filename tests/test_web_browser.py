"""The web app in a real browser: ``allocator serve`` in a subprocess, driven by headless Chromium.

Chromium (Debian's ``/usr/bin/chromium``) runs once per check in ``--dump-dom`` mode (the DOM
after the page's scripts ran) or ``--screenshot`` mode, with ``--enable-logging=stderr``: every
console message of the page (``console.*`` and uncaught errors) is logged there as a
``CONSOLE`` line, and the pages write none, so any such line fails the test. A probe page proves
the capture works. Links and embedded resources are fetched with httpx.

Without Chromium the module is skipped, unless ``CI`` is set (then it fails).
"""

from __future__ import annotations

import os
import re
import socket
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
from tests.webdata import record_runs, run_sessions, settings_for

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
    runs = record_runs(engine, settings)
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
    return done.stdout, [m.group(0) for m in CONSOLE_LINE.finditer(done.stderr)]


def dump_dom(tmp_path: Path, url: str) -> str:
    """The DOM of ``url`` after its scripts ran; fails on any console message."""
    dom, console = chromium(tmp_path, url, "--dump-dom")
    assert console == [], f"console messages on {url}:\n" + "\n".join(console)
    return dom


def screenshot(tmp_path: Path, url: str, name: str) -> Path:
    path = tmp_path / name
    _, console = chromium(tmp_path, url, f"--screenshot={path}", "--window-size=1280,1100")
    assert console == [], f"console messages on {url}:\n" + "\n".join(console)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"no screenshot of {url}"
    return path


class Page(HTMLParser):
    """The links, embedded resources and element texts (by id) of a dumped DOM."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.links: list[str] = []
        self.resources: list[str] = []
        self.text_by_id: dict[str, str] = {}
        self._open_ids: list[str | None] = []
        self.feed(dom)

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
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
        if self._open_ids and tag not in ("br", "img", "input", "link", "meta"):
            self._open_ids.pop()

    def handle_data(self, data):
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
    screenshot(tmp_path, f"{base}/", "dashboard.png")


def test_every_link_on_the_runs_page_answers(server, tmp_path):
    base = server["base"]
    page = Page(dump_dom(tmp_path, f"{base}/runs"))
    artifacts = [link for link in page.links if link.startswith("/artifacts/")]
    assert len(artifacts) == 6, page.links  # report, md and notebook of two runs
    assert {link.rsplit(".", 1)[-1] for link in artifacts} == {"html", "md", "ipynb"}
    statuses = fetched(base, f"{base}/runs", page.links + page.resources)
    assert set(statuses.values()) == {200}, statuses
    filtered = Page(dump_dom(tmp_path, f"{base}/runs?job=signal&status=succeeded"))
    run_links = [link for link in filtered.links if re.fullmatch(r"/runs/\d+", link)]
    assert run_links == [f"/runs/{server['runs']['signal']}"]
    screenshot(tmp_path, f"{base}/runs", "runs.png")


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
    screenshot(tmp_path, url, "run.png")


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
