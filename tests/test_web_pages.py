"""The web app's reading pages (issue 19, item 5), through FastAPI's TestClient on SQLite and
PostgreSQL: the dashboard's charts and cards, the runs' period and result, the trade lists
(the ledger's and a backtest run's, paged and filtered, bounds answered 422), the offline
``/docs``, the tuning reports rendered from Markdown, and the watchdog behind ``--with-web``."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import re
import threading
import warnings

import pytest

from allocator.cli.commands import main
from allocator.cli.serve import app_answers, health_url
from allocator.shell.persistence import make_engine
from allocator.shell.persistence.jobruns import JobRun
from allocator.shell.persistence.migrate import upgrade
from allocator.web import charts, runinfo
from allocator.web.api import FIRST_DATE, LAST_DATE
from allocator.web.app import create_app
from allocator.web.security import WebSettings
from tests.conftest import BACKENDS, create_database_url
from tests.webdata import (
    BACKTEST_END,
    BACKTEST_START,
    BACKTEST_TRADES,
    TUNING_MONTH,
    record_report_runs,
    record_runs,
    run_sessions,
    settings_for,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette asks for httpx2; httpx works the same here
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
#: What no page may show: pandas' and Python's raw values.
RAW = re.compile(r"\bNaN\b|\bnan\b|e\+0\d|dtype:|>\s*None\s*<")


@pytest.fixture(scope="module", params=BACKENDS)
def world(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"web_pages_{request.param}")
    url, drop = create_database_url(request.param, root)
    engine = make_engine(url)
    upgrade(engine)
    run_sessions(engine)
    settings = settings_for(url, root)
    runs = record_runs(engine, settings) | record_report_runs(engine, settings)
    engine.dispose()
    yield {"settings": settings, "root": root, "runs": runs}
    drop()


@pytest.fixture(scope="module")
def client(world):
    with TestClient(create_app(world["settings"], WebSettings())) as test_client:
        yield test_client


def test_dashboard_answers_first_with_charts_and_benchmarks(client, world):
    page = client.get("/").text
    assert not RAW.search(page), RAW.search(page)
    headline = page[page.index('id="headline"') : page.index('id="equity"')]
    for label in ("Value", "Gain", "Last day", "TWR", "Max drawdown", "Sharpe", "Trades"):
        assert f'class="label">{label}<' in headline, label
    # Five sessions: no Sharpe, and the reason instead.
    assert 'class="label">Sharpe</div><div class="figure">—<' in headline
    assert "annualised from 5 sessions: needs 63" in headline
    svgs = re.findall(r"<svg .*?</svg>", page, re.S)
    assert len(svgs) == 4  # equity, gain over deposits, allocation, daily P&L
    equity = svgs[0]
    assert re.search(r">\$\d+(\.\d)?k<", equity), "a y axis in dollars"
    assert ">Nov 2<" in equity, "dated x axis"
    for name in ("portfolio value", "deposits", "all SPY", "SPY + cash at exposure"):
        assert f">{name}<" in equity, name
    assert "daily profit and loss" in svgs[3] and "<rect" in svgs[3]
    assert re.search(r"\$[\d,]+ · [\d.]+ %", svgs[2]), "allocation in dollars and shares"
    backtest = page[page.index('id="latest-backtest"') : page.index('id="tuning-reports"')]
    assert f"backtest {BACKTEST_START}..{BACKTEST_END}" in backtest
    assert "27.8 %" in backtest and "-6.5 %" in backtest and "$598,207" in backtest
    assert f'href="/runs/{world["runs"]["backtest"]}/trades"' in backtest
    assert f'href="/tuning/{TUNING_MONTH}"' in page


def test_runs_are_dated_by_their_period_with_a_result(client, world):
    page = client.get("/runs").text
    assert not RAW.search(page)
    items = {r["id"]: r for r in client.get("/api/runs").json()["items"]}
    ids = world["runs"]
    assert items[ids["backtest"]]["period"] == f"{BACKTEST_START}..{BACKTEST_END}"
    assert items[ids["backtest"]]["result"] == "TWR 27.8 %, max drawdown -6.5 %"
    assert items[ids["tune_done"]]["result"] == "no change"
    assert items[ids["tune"]]["result"] == "not the first session of the month"
    assert items[ids["execute"]]["result"] == "boom: a test failure"
    assert items[ids["fetch"]]["result"] == "3 bars stored, 3 orders filled"
    assert items[ids["fetch"]]["period"] == "2026-11-06"
    for key in ("backtest", "tune_done", "execute", "fetch"):
        assert f">{items[ids[key]]['result']}<" in page, key
    assert f'<td class="date">{BACKTEST_START}..{BACKTEST_END}</td>' in page
    assert items[ids["backtest"]]["links"]["trades"] == f"/runs/{ids['backtest']}/trades"
    assert items[ids["signal"]]["links"]["trades"] is None


def test_the_ledgers_trades_are_filtered_and_paged(client):
    every = client.get("/api/trades", params={"limit": 500}).json()["items"]
    spy = client.get("/api/trades", params={"symbol": "spy", "limit": 500}).json()["items"]
    assert spy and {t["symbol"] for t in spy} == {"SPY"}
    assert len(spy) == sum(t["symbol"] == "SPY" for t in every)
    one_day = {"start": "2026-11-03", "end": "2026-11-03", "limit": 500}
    day = client.get("/api/trades", params=one_day).json()["items"]
    assert day and {t["trade_date"] for t in day} == {"2026-11-03"}
    first = client.get("/api/trades", params={"limit": 2}).json()
    assert len(first["items"]) == 2 and first["next_offset"] == 2
    page = client.get("/trades", params={"symbol": "SPY", "limit": 2}).text
    assert not RAW.search(page)
    assert page.count("<td>SPY</td>") == 2 and "next</a>" in page
    assert re.search(r'<td class="num">\$[\d,]+\.\d\d</td>', page), "amounts to the cent"
    assert "rows 1–2" in page


@pytest.mark.parametrize("path", ["/api/trades", "/api/prices", "/api/runs/1/trades"])
@pytest.mark.parametrize(
    ("query", "name"),
    [("start=1899-12-31", "start"), ("end=2200-01-01", "end"), ("start=yesterday", "start")],
)
def test_dates_out_of_range_are_422_naming_the_allowed_range(client, path, query, name):
    response = client.get(f"{path}?{query}")
    assert response.status_code == 422, response.text
    (detail,) = response.json()["detail"]
    assert detail["msg"] == f"{name} must be a date (YYYY-MM-DD) from {FIRST_DATE} to {LAST_DATE}"
    assert detail["allowed"] == {"minimum": str(FIRST_DATE), "maximum": str(LAST_DATE)}


def test_other_bad_filters_are_422(client):
    swapped = client.get("/api/trades?start=2026-11-05&end=2026-11-02")
    assert swapped.status_code == 422
    assert "start 2026-11-05 is after end 2026-11-02" in swapped.text
    assert client.get("/api/trades?symbol=S%20P%20Y").status_code == 422
    assert client.get("/api/trades?symbol=" + "X" * 17).status_code == 422
    page = client.get("/trades?start=1800-01-01", headers={"Accept": "text/html"})
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    assert "start must be a date (YYYY-MM-DD) from 1900-01-01 to 2199-12-31" in page.text
    assert client.get("/trades", params={"symbol": "", "start": "", "end": ""}).status_code == 200


def test_a_backtest_runs_full_trade_list(client, world):
    run_id = world["runs"]["backtest"]
    first = client.get(f"/api/runs/{run_id}/trades").json()
    assert first["total"] == BACKTEST_TRADES and len(first["items"]) == 100
    assert first["next_offset"] == 100 and first["items"][0]["date"] == BACKTEST_START
    last = client.get(f"/api/runs/{run_id}/trades", params={"offset": 200}).json()
    assert len(last["items"]) == BACKTEST_TRADES - 200 and last["next_offset"] is None
    assert first["items"][0]["realized_pnl"] is None  # NaN in the file
    dia = client.get(f"/api/runs/{run_id}/trades", params={"symbol": "DIA", "limit": 500})
    assert {t["symbol"] for t in dia.json()["items"]} == {"DIA"}
    window = {"start": "2024-10-10", "end": "2024-10-14"}
    dates = [
        t["date"] for t in client.get(f"/api/runs/{run_id}/trades", params=window).json()["items"]
    ]
    assert dates == ["2024-10-10", "2024-10-11", "2024-10-14"]
    page = client.get(f"/runs/{run_id}/trades", params={"limit": 10}).text
    assert not RAW.search(page), RAW.search(page)
    assert f"backtest {BACKTEST_START}..{BACKTEST_END}" in page
    assert "$8,561.55" in page and "1.2346" in page and "-$12.35" in page
    assert f"rows 1–10 of {BACKTEST_TRADES}" in page
    notebook = client.get(f"/api/runs/{run_id}").json()["links"]["notebook"]
    stem = notebook.rsplit("/", 1)[1].removesuffix(".ipynb")
    named = client.get(f"/runs/by-notebook/{stem}/trades?symbol=SPY", follow_redirects=False)
    assert named.status_code == 307
    assert named.headers["location"] == f"/runs/{run_id}/trades?symbol=SPY"
    other = stem.replace("backtest", "backtes_")  # "_" is LIKE's any character
    assert client.get(f"/runs/by-notebook/{other}/trades").status_code == 404
    assert client.get("/runs/by-notebook/..%2Fx/trades").status_code in (404, 422)
    signal = client.get(f"/runs/{world['runs']['signal']}/trades")
    assert signal.status_code == 404 and "only a backtest run has one" in signal.text
    assert client.get("/api/runs/99999/trades").status_code == 404


def test_a_changed_trade_list_is_refused(tmp_path):
    notebook = tmp_path / "backtest_2026-11-09_x.ipynb"
    sidecar = tmp_path / "backtest_2026-11-09_x_trades.parquet"
    sidecar.write_bytes(b"not the file the run wrote")
    reference = {"sidecar": sidecar.name, "format": "parquet", "rows": 1, "columns": []}
    scrap = {"name": "trades", "data": {**reference, "sha256": "0" * 64}}
    output = {"data": {"application/scrapbook.scrap.json+json": scrap}}
    notebook.write_text(json.dumps({"cells": [{"outputs": [output]}]}))
    run = _run("backtest", notebook_path=str(notebook))
    with pytest.raises(runinfo.SidecarUnreadable, match="changed after the run"):
        runinfo.run_trades(run)
    sidecar.unlink()
    with pytest.raises(runinfo.SidecarUnreadable, match="is missing"):
        runinfo.run_trades(run)


def test_docs_are_served_without_any_external_request(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)
    assert "<script" not in page.text
    for path in ("/api/health", "/api/trades", "/api/runs/{run_id}/trades"):
        assert f"<code>{path}</code>" in page.text, path
    assert "1..500" in page.text and 'href="/openapi.json"' in page.text
    assert client.get("/redoc").status_code == 404
    assert client.get("/docs/oauth2-redirect").status_code == 404


def test_tuning_reports_are_rendered_as_html(client):
    page = client.get(f"/tuning/{TUNING_MONTH}")
    assert page.status_code == 200
    assert "<h1>Strategy tuning 2026-11</h1>" in page.text
    assert "<table>" in page.text and "<td>sell_percentage</td>" in page.text
    assert "<script>alert" not in page.text and "&lt;script&gt;" in page.text
    assert client.get("/tuning/2026-10").status_code == 404
    assert client.get("/tuning/2026-13").status_code == 422
    assert client.get("/tuning/..%2F..%2Fsecret").status_code in (404, 422)


def test_performance_says_why_an_annualised_ratio_is_missing(client):
    notes = client.get("/api/performance").json()["notes"]
    assert notes["sharpe"].startswith("annualised from 5 sessions")


# --- pieces -------------------------------------------------------------------------------------


def _run(job: str, status: str = "succeeded", **fields) -> JobRun:
    values = {
        "id": 1,
        "job": job,
        "trade_date": dt.date(2026, 11, 6),
        "status": status,
        "started_at": dt.datetime(2026, 11, 9, tzinfo=dt.UTC),
        "finished_at": None,
        "notebook_path": None,
        "html_path": None,
        "md_path": None,
        "git_commit": None,
        "parameters": {},
        "error": None,
    }
    return JobRun(**{**values, **fields})


@pytest.mark.parametrize(
    ("job", "scraps", "expected"),
    [
        ("signal", {"action": "BUY", "allocations": {"SPY": 200.0, "QQQ": 100.4}}, "BUY $300"),
        ("signal", {"action": "HOLD", "allocations": {}}, "HOLD"),
        ("tune", {"status": "unchanged", "changes": {}}, "no change"),
        (
            "tune",
            {"status": "changed", "changes": {"sell_percentage": [0.5, 0.45]}},
            "changed: sell_percentage 0.5 → 0.45",
        ),
        (
            "tune",
            {"status": "proposed", "changes": {"sell_percentage": [0.5, 0.45]}},
            "proposed, not applied: sell_percentage 0.5 → 0.45",
        ),
        (
            "execute",
            {"status": "pending", "cash": 700.049},
            "orders pending (fill at the open), cash $700",
        ),
        (
            "backtest",
            {"metrics": {"twr": 1.752, "max_drawdown": -0.193}},
            "TWR 175.2 %, max drawdown -19.3 %",
        ),
        ("walkforward", {"target_met": False}, "target missed"),
        ("review", {"runs": 12, "failed": 1, "succeeded": 11}, "12 runs, 1 to look at"),
        ("sweep", {"n_configs": 48}, "48 configs"),
        ("backtest", {"metrics": "an older shape"}, ""),
    ],
)
def test_run_results(job, scraps, expected):
    assert runinfo.run_result(_run(job), scraps) == expected


def test_failed_and_skipped_runs_show_their_reason_on_one_line():
    long = "BacktestError: " + "x" * 400 + "\nTraceback..."
    shown = runinfo.run_result(_run("backtest", "failed", error=long), {})
    assert len(shown) == runinfo.SHORT_ERROR and shown.endswith("…") and "\n" not in shown
    skipped = _run("tune", "skipped", error="market closed")
    assert runinfo.run_result(skipped, {}) == "market closed"


def test_periods():
    backtest = _run("backtest", parameters={"start": "2005-01-03"})
    assert runinfo.run_period(backtest, {}) == "2005-01-03..the latest session"
    metrics = {"metrics": {"start": "2005-01-03", "end": "2024-12-31"}}
    assert runinfo.run_period(backtest, metrics) == "2005-01-03..2024-12-31"
    review = _run("review", trade_date=dt.date(2026, 12, 5), parameters={})
    assert runinfo.run_period(review, {}) == "2026-11-05..2026-12-05"
    study = _run("study", parameters={"in_start": "2005-01-03", "out_end": "2024-12-31"})
    assert runinfo.run_period(study, {}) == "2005-01-03..2024-12-31"
    assert runinfo.run_period(_run("signal"), {}) == "2026-11-06"


def test_nice_ticks_and_date_ticks():
    assert charts.nice_ticks(0, 134_082) == [0, 50_000, 100_000, 150_000]
    assert charts.nice_ticks(-1_430, 1_050) == [-2_000, -1_000, 0, 1_000, 2_000]
    assert charts.nice_ticks(5.0, 5.0)[0] < 5.0 < charts.nice_ticks(5.0, 5.0)[-1]
    years = [dt.date(2005, 1, 3) + dt.timedelta(days=7 * i) for i in range(52 * 20)]
    labels = [label for _, label in charts.date_ticks(years)]
    assert labels[0] == "2005" and len(labels) <= 8 and all(len(x) == 4 for x in labels)
    days = [dt.date(2026, 11, d) for d in (2, 3, 4, 5, 6)]
    assert [label for _, label in charts.date_ticks(days)] == [
        "Nov 2",
        "Nov 3",
        "Nov 4",
        "Nov 5",
        "Nov 6",
    ]


def test_twenty_years_of_sessions_are_thinned_to_about_a_point_a_pixel():
    days = [dt.date(2005, 1, 3) + dt.timedelta(days=i) for i in range(5_040)]
    values = [float(i) for i in range(5_040)]
    svg = charts.line_chart(days, [charts.Line("a", values, "#000")], label="long")
    (points,) = re.findall(r'points="([^"]*)"', svg)
    assert len(points.split()) <= charts.MAX_POINTS + 1 and len(svg) < 40_000
    assert charts.thinned(10, 4) == [0, 3, 6, 9] and charts.thinned(11, 4) == [0, 3, 6, 9, 10]
    assert f"a, {days[-1]}: $5,039" in svg  # the last session is kept


def test_a_line_chart_with_gaps_and_a_single_point():
    days = [dt.date(2026, 11, d) for d in (2, 3, 4)]
    svg = charts.line_chart(
        days,
        [charts.Line("a", [1.0, None, 3.0], "#000"), charts.Line("b <&>", [2.0, 2.5, 2.0], "#111")],
        label="test",
    )
    assert svg.count("<polyline") == 1 and "<circle" in svg  # 'a' is two single points
    assert "b &lt;&amp;&gt;" in svg and "nan" not in svg.lower()
    one = charts.line_chart(days[:1], [charts.Line("a", [5.0], "#000")], label="one")
    assert "<circle" in one and "<polyline" not in one


# --- the watchdog behind `allocator crontab --with-web` -----------------------------------------


class _Answer(http.server.BaseHTTPRequestHandler):
    status, body = 200, b""

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def _serve(status: int, body: bytes):
    handler = type("Handler", (_Answer,), {"status": status, "body": body})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_the_watchdog_knows_the_app_from_other_answers():
    for status, body, expected in [
        (200, b'{"status": "ok"}', True),
        (503, b'{"status": "error", "database": false}', True),
        (401, b'{"detail": "a bearer token is required"}', True),
        (200, b"<html>another program</html>", False),
        (404, b'{"detail": "Not Found"}', False),
    ]:
        server = _serve(status, body)
        try:
            up, seen = app_answers(health_url("127.0.0.1", server.server_address[1]))
        finally:
            server.shutdown()
        assert up is expected and seen == f"HTTP {status}", (status, body)
    server = _serve(200, b"")
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    assert app_answers(health_url("0.0.0.0", port))[0] is False
    assert health_url("::", 8000) == "http://127.0.0.1:8000/api/health"


def test_serve_if_down_starts_the_app_only_when_nothing_answers(monkeypatch, capsys, tmp_path):
    import uvicorn

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    started = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.append(kw["port"]))
    server = _serve(503, b'{"status": "error"}')
    port = server.server_address[1]
    try:
        assert main(["serve", "--port", str(port), "--if-down"]) == 0
    finally:
        server.shutdown()
        server.server_close()
    assert started == [] and capsys.readouterr().out == ""
    assert main(["serve", "--port", str(port), "--if-down"]) == 0
    assert started == [port]
    out = capsys.readouterr().out
    assert out.startswith(f"web app down (http://127.0.0.1:{port}/api/health: ")
