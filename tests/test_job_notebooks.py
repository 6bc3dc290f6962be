"""The real job notebooks, executed by papermill through ``allocator run``, on both databases.

Each test reads the archived notebook back with scrapbook and checks the glued results, the
renderings, the runs index and the ``job_runs`` row.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pandas as pd
import pytest
import scrapbook as sb
import sqlalchemy as sa

from allocator.cli.commands import main
from allocator.notebook.sidecar import read_scraps
from allocator.shell import calendar
from allocator.shell.marketdata.synthetic import SyntheticSource
from allocator.shell.persistence.configs import version_for_date
from allocator.shell.persistence.prices import load_bars, wide
from allocator.shell.persistence.schema import job_runs, price_history, trades
from allocator.shell.persistence.signals import get_signal
from allocator.strategy.decision import decide
from allocator.strategy.market_state import signal_state
from tests.helpers import seed, vendor_history
from tests.reportcheck import report_problems

pytestmark = pytest.mark.notebook

SYMBOLS = ("SPY", "QQQ", "DIA")
DAY = dt.date(2026, 11, 25)
PREVIOUS = calendar.previous_session(DAY)


@pytest.fixture
def job_env(tmp_path, monkeypatch, database_url, engine, fake_vendor):
    """Database, archive folders and the fake vendor serving synthetic bars through ``DAY``."""
    source = SyntheticSource()
    for symbol in SYMBOLS:
        fake_vendor.set_bars(symbol, source.fetch(symbol, dt.date(2026, 5, 1), DAY))
    fake_vendor.visible_through = DAY
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ALPHAVANTAGE_API_KEY", "NOTEBOOK-TEST-KEY")
    monkeypatch.setenv("ALPHAVANTAGE_BASE_URL", fake_vendor.url)
    monkeypatch.setenv("ALPHAVANTAGE_CALL_DELAY", "0")
    monkeypatch.setenv("ALPHAVANTAGE_MAX_RETRIES", "0")
    return tmp_path, engine, fake_vendor


def archived(tmp_path: Path, job: str) -> list[Path]:
    return sorted((tmp_path / "runs").rglob(f"{job}_*.ipynb"))


def scraps(path: Path) -> dict:
    """Every scrap of an archived notebook, tables kept beside it read back (as readers do)."""
    return read_scraps(path)


def raw_scraps(path: Path) -> dict:
    """The scraps exactly as scrapbook reads them from the notebook alone."""
    return {name: scrap.data for name, scrap in sb.read_notebook(str(path)).scraps.items()}


def notebook_figures(path: Path) -> list[tuple[str, bytes]]:
    """The figures of an archived notebook, in order: (MIME type, the file's bytes)."""
    cells = json.loads(path.read_text())["cells"]
    outputs = [o for c in cells for o in c.get("outputs", [])]
    found = []
    for output in outputs:
        data = output.get("data", {})
        if "image/png" in data:
            found.append(("image/png", base64.b64decode(data["image/png"])))
        elif "image/svg+xml" in data:
            found.append(("image/svg+xml", "".join(data["image/svg+xml"]).encode()))
    return found


@contextlib.contextmanager
def web_app(tmp_path: Path) -> Iterator[str]:
    """``allocator serve`` on a free loopback port over this test's archive; its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "allocator", "serve", "--port", str(port)],
        env={**os.environ, "ALLOCATOR_DOTENV": "off"},  # no token from a checkout's .env
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{base}/api/health", timeout=2)
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"allocator serve did not answer:\n{(tmp_path / 'serve.log').read_text()}")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def rows(engine, table) -> list:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table)))


def test_fetch_notebook_stores_glues_archives_and_reruns(job_env, capfd):
    tmp_path, engine, _ = job_env
    seed(engine, DAY, PREVIOUS)  # config only

    assert main(["run", "fetch", "--date", str(DAY)]) == 0
    (first,) = archived(tmp_path, "fetch")
    assert first.parent == tmp_path / "runs" / "2026" / "11" / "25"
    glued = scraps(first)
    # the vendor's compact answer: the latest 100 bars, all inside the job's window
    assert glued["rows_inserted"] == {s: 100 for s in SYMBOLS}
    assert glued["last_bar_date"] == "2026-11-25"
    report = tmp_path / "reports" / "2026" / "11" / "25" / f"{first.stem}.html"
    assert report.is_file() and report.with_suffix(".md").is_file()
    index = (tmp_path / "reports" / "index.html").read_text()
    assert f"2026/11/25/{first.stem}.html" in index
    (run,) = rows(engine, job_runs)
    assert (run.job, run.trade_date, run.status) == ("fetch", DAY, "succeeded")
    assert Path(run.notebook_path) == first and run.finished_at is not None
    # The figures: a daily job's chart is a small SVG (text as text) in the notebook, each one
    # file linked by both reports (no second copy inside the HTML), which the web app serves.
    figures = notebook_figures(first)
    assert figures and [mime for mime, _ in figures] == ["image/svg+xml"] * len(figures)
    assert all(len(data) < 40_000 and b"<text" in data for _, data in figures)
    page = report.read_text()
    sources = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(sources) == len(figures) and "data:image" not in page
    markdown = report.with_suffix(".md").read_text()
    assert all(f"]({src})" in markdown for src in sources)
    with web_app(tmp_path) as base:
        url = f"{base}/artifacts/reports/2026/11/25/{report.name}"
        assert httpx.get(url).status_code == 200
        served = [httpx.get(urljoin(url, src)) for src in sources]
    types = [r.headers["content-type"].split(";")[0] for r in served]
    assert types == ["image/svg+xml"] * len(figures)
    assert [r.content for r in served] == [data for _, data in figures]
    count = len(rows(engine, price_history))

    assert main(["run", "fetch", "--date", str(DAY)]) == 0  # a re-run: a second artifact
    runs = archived(tmp_path, "fetch")
    assert len(runs) == 2 and first in runs
    assert scraps(runs[-1])["rows_inserted"] == {s: 0 for s in SYMBOLS}
    assert len(rows(engine, price_history)) == count  # one set of rows
    assert [r.status for r in rows(engine, job_runs)] == ["succeeded", "succeeded"]
    assert report_problems(tmp_path / "reports") == []
    capfd.readouterr()


def test_fetch_notebook_vendor_error_fails_visibly_and_keeps_the_rest(job_env, capfd):
    tmp_path, engine, vendor = job_env
    seed(engine, DAY, PREVIOUS)
    vendor.fail("QQQ", "error_message", times=5)

    assert main(["run", "fetch", "--date", str(DAY)]) == 1
    err = capfd.readouterr().err.strip().splitlines()
    assert err[-1].startswith("allocator: fetch 2026-11-25 failed") and "QQQ" in err[-1]
    (artifact,) = archived(tmp_path, "fetch")
    html = (tmp_path / "reports" / "2026" / "11" / "25" / f"{artifact.stem}.html").read_text()
    assert html.index("Invalid API call") < html.index("Fetch market data")  # error on top
    (run,) = rows(engine, job_runs)
    assert run.status == "failed" and "QQQ" in run.error and "Invalid API call" in run.error
    stored = {r.symbol for r in rows(engine, price_history)}
    assert stored == {"SPY", "DIA"}  # the others' data is kept


def test_signal_then_execute_then_fetch_notebooks(job_env, capfd):
    tmp_path, engine, vendor = job_env
    seed(engine, dt.date(2025, 9, 1), PREVIOUS, source=vendor_history())
    vendor.visible_through = PREVIOUS

    assert main(["run", "signal", "--date", str(DAY)]) == 0
    signal = scraps(archived(tmp_path, "signal")[0])
    with engine.connect() as conn:
        stored = get_signal(conn, DAY)
        config = version_for_date(conn, DAY).config
        closes = wide(load_bars(conn, config.assets, before=DAY), "close", config.assets)
    # the glued numbers are the stored row's ...
    assert signal["signal_id"] == stored.id and signal["status"] == "created"
    assert signal["action"] == stored.action
    assert signal["allocations"] == stored.allocations
    assert (signal["regime"], signal["risk"]) == (
        stored.features_used["regime"],
        stored.features_used["risk"],
    )
    # ... and the decision the core takes on the stored bars before D, with nothing held yet
    expected = decide(signal_state(closes, config, DAY), config, {})
    assert signal["action"] == expected.action == "BUY"
    assert signal["allocations"] == expected.allocations
    assert (signal["regime"], signal["risk"]) == (expected.regime, expected.risk)

    assert main(["run", "execute", "--date", str(DAY)]) == 0
    executed = scraps(archived(tmp_path, "execute")[0])
    frame = executed["trades"]
    assert list(frame.columns) == ["symbol", "action", "quantity", "price", "amount", "status"]
    assert executed["cash"] == pytest.approx(1000.0)  # the deposit; orders wait for the open
    assert executed["positions"] == {}
    assert set(frame["status"]) == {"pending"}
    # one pending order per asset the signal allocated to
    assert sorted(zip(frame["symbol"], frame["action"], strict=True)) == sorted(
        (symbol, "BUY") for symbol in signal["allocations"]
    )

    vendor.visible_through = DAY
    assert main(["run", "fetch", "--date", str(DAY)]) == 0
    filled = rows(engine, trades)
    assert all(t.status == "filled" and t.signal_id == signal["signal_id"] for t in filled)
    assert {t.symbol: t.ordered_amount for t in filled} == signal["allocations"]
    assert report_problems(tmp_path / "reports") == []  # signal, execute and fetch
    capfd.readouterr()


def test_backtest_notebook_glues_metrics_daily_and_trades(job_env, capfd):
    tmp_path, engine, _ = job_env
    seed(engine, dt.date(2024, 1, 2), PREVIOUS)

    code = main(["run", "backtest", "-p", "start", "2025-03-03", "-p", "end", "2025-09-30"])
    out, err = capfd.readouterr()
    assert code == 0, err
    headline, versus = out.strip().splitlines()[-2:]
    assert headline.startswith("TWR ") and " %, CAGR " in headline and ", final value $" in headline
    assert versus.startswith("The strategy ") and " the SPY + cash mix at the same " in versus
    (artifact,) = archived(tmp_path, "backtest")
    report = artifact.with_suffix(".html").name
    (html_path,) = (tmp_path / "reports").rglob(report)
    page = html_path.read_text()
    assert "<th>max drawdown</th>" in page and "<th>final value</th>" in page
    glued = scraps(artifact)
    metrics = glued["metrics"]
    for key in (
        "twr",
        "cagr",
        "sharpe",
        "sortino",
        "max_drawdown",
        "total_deposits",
        "final_value",
        "n_trades",
    ):
        assert key in metrics
    sessions = calendar.sessions_between(dt.date(2025, 3, 3), dt.date(2025, 9, 30))
    assert metrics["total_deposits"] == 1000.0 * len(sessions)
    daily = glued["daily"]
    assert list(daily.columns) == ["date", "deposit", "cash", "positions_value", "total_value"]
    assert len(daily) == len(sessions)
    assert len(glued["trades"]) == metrics["n_trades"]
    comparison = glued["comparison"]
    mixes = {"SPY + cash at exposure", "equal weight + cash at exposure"}
    assert set(comparison) == {"strategy", "all SPY", "equal weight", "cash", *mixes}
    for mix in mixes:  # matched to the strategy's own exposure
        assert comparison[mix]["matched_exposure"] == metrics["exposure"]
    # The two large tables are Parquet beside the notebook, which glues references to them.
    raw = raw_scraps(artifact)
    for name in ("daily", "trades"):
        kept = artifact.with_name(f"{artifact.stem}_{name}.parquet")
        assert raw[name]["sidecar"] == kept.name and raw[name]["rows"] == len(glued[name])
        assert not kept.stat().st_mode & 0o222  # read-only, like the notebook
    assert "scrapbook.scrap.pandas" not in artifact.read_text()
    assert rows(engine, trades) == []  # the backtest never writes production tables
    assert report_problems(tmp_path / "reports") == []
    assert "<title>backtest 2025-03-03..2025-09-30 - succeeded</title>" in page  # its period


def test_sweep_notebook_keeps_its_results_beside_the_archive(job_env, capfd):
    tmp_path, engine, _ = job_env
    seed(engine, dt.date(2024, 1, 2), PREVIOUS)
    grid = '{"cash_deploy_rate": [0, 0.1], "sell_trigger": ["every_session", "spell_start"]}'
    code = main(
        ["run", "sweep", "-p", "grid", grid, "-p", "start", "2025-03-03"]
        + ["-p", "end", "2025-06-30", "-p", "workers", "1"]
    )
    assert code == 0, capfd.readouterr().err
    (artifact,) = archived(tmp_path, "sweep")
    glued = scraps(artifact)
    table = glued["results"]
    assert glued["n_configs"] == 4 and len(table) == 4
    saved = Path(glued["results_path"])
    assert saved == artifact.with_name(f"{artifact.stem}_results.parquet")
    assert not saved.stat().st_mode & 0o222  # read-only, like the notebook
    assert raw_scraps(artifact)["results"]["sidecar"] == saved.name  # stored once: a reference
    assert "scrapbook.scrap.pandas" not in artifact.read_text()
    from allocator.jobs.sweep import run_sweep

    serial = run_sweep(grid, "2025-03-03", "2025-06-30", serial=True).table
    pd.testing.assert_frame_equal(pd.read_parquet(saved), serial, check_exact=True)
    assert report_problems(tmp_path / "reports") == []


def test_tune_notebook_acts_on_the_first_session_and_skips_other_days(job_env, capfd):
    tmp_path, engine, _ = job_env
    seed(engine, dt.date(2025, 6, 1), PREVIOUS)
    assert main(["run", "tune", "--date", "2026-11-03"]) == 0  # not the first session
    assert archived(tmp_path, "tune") == []
    code = main(["run", "tune", "--date", "2026-11-02"])
    assert code == 0, capfd.readouterr().err
    (artifact,) = archived(tmp_path, "tune")
    glued = scraps(artifact)
    assert glued["status"] == "unchanged" and glued["changes"] == {}
    assert glued["n_trades_scored"] == 0  # nothing was traded: no change, and the report says so
    report = tmp_path / "reports" / "strategy-tuning" / "tuning_2026-11.md"
    assert "no trades in the months looked back on" in report.read_text()
    index = (tmp_path / "reports" / "index.html").read_text()
    assert 'href="strategy-tuning/tuning_2026-11.html"' in index  # a page, not raw Markdown
    assert report.with_suffix(".html").is_file()
    with engine.connect() as conn:
        statuses = [r.status for r in conn.execute(sa.select(job_runs.c.status))]
    assert sorted(statuses) == ["skipped", "succeeded"]
    assert report_problems(tmp_path / "reports") == []  # no NaN table, no empty chart
