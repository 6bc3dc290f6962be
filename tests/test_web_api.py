"""The web app through FastAPI's TestClient, on SQLite and PostgreSQL: every endpoint's shape,
paging, the read-only gate, the archive's path checks, CORS and the bearer token."""

from __future__ import annotations

import asyncio
import os
import warnings

import pytest

from allocator.cli.commands import main
from allocator.exceptions import SettingsError
from allocator.shell.persistence import make_engine
from allocator.shell.persistence.migrate import upgrade
from allocator.web.api import BOUNDS, MAX_ID, MAX_OFFSET
from allocator.web.app import create_app
from allocator.web.security import (
    PathRefused,
    WebSettings,
    bearer_matches,
    is_loopback,
    read_web_settings,
    require_token_for,
    resolve_artifact,
)
from tests.conftest import BACKENDS, create_database_url
from tests.webdata import LAST, record_runs, run_sessions, settings_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette asks for httpx2; httpx works the same here
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module", params=BACKENDS)
def world(request, tmp_path_factory):
    """One seeded database per backend, shared by the module's tests (read-only app)."""
    root = tmp_path_factory.mktemp(f"web_{request.param}")
    url, drop = create_database_url(request.param, root)
    engine = make_engine(url)
    upgrade(engine)
    run_sessions(engine)
    settings = settings_for(url, root)
    runs = record_runs(engine, settings)
    engine.dispose()
    yield {"settings": settings, "root": root, "runs": runs}
    drop()


@pytest.fixture(scope="module")
def client(world):
    app = create_app(world["settings"], WebSettings())
    with TestClient(app) as test_client:
        yield test_client


def test_health_reports_the_database_state(client):
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["database"] is True
    assert body["migration_current"] is True and body["revision"] == body["head_revision"]
    assert body["latest_bar_date"] == str(LAST)
    assert body["latest_signal_date"] == str(LAST)
    assert isinstance(body["pending_orders"], int)


def test_health_is_503_on_an_empty_database(tmp_path):
    settings = settings_for(f"sqlite:///{tmp_path / 'empty.sqlite3'}", tmp_path)
    response = TestClient(create_app(settings, WebSettings())).get("/api/health")
    assert response.status_code == 503
    assert response.json()["migration_current"] is False


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_database_that_goes_down_is_answered_503_with_a_short_page(backend, tmp_path):
    url, drop = create_database_url(backend, tmp_path)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    app = create_app(settings_for(url, tmp_path), WebSettings())
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/api/runs").status_code == 200
        if backend == "sqlite":  # the file gone, a folder in its place: it cannot be opened
            database = tmp_path / "test.sqlite3"
            database.unlink()
            database.mkdir()
        else:
            drop()
        app.state.engine.dispose()  # the next request opens a new connection
        for path in ("/api/runs", "/api/portfolio", "/api/trades"):
            response = client.get(path)
            assert response.status_code == 503, (path, response.text)
            assert response.json() == {
                "detail": "the database is unavailable: try again in a minute"
            }
            assert response.headers["retry-after"] == "30"
        for path in ("/runs", "/runs/1"):
            page = client.get(path)
            assert page.status_code == 503, (path, page.text)
            assert "<h1>Database unavailable</h1>" in page.text
            assert "Traceback" not in page.text and str(tmp_path) not in page.text
            assert "127.0.0.1" not in page.text
    drop()


def test_prices_filter_and_page(client):
    first = client.get("/api/prices", params={"symbol": "spy", "start": "2026-11-02", "limit": 2})
    body = first.json()
    assert [row["date"] for row in body["items"]] == ["2026-11-02", "2026-11-03"]
    assert {row["symbol"] for row in body["items"]} == {"SPY"}
    assert set(body["items"][0]) >= {"open", "high", "low", "close", "volume", "source"}
    assert body["next_offset"] == 2
    rest = client.get(
        "/api/prices", params={"symbol": "SPY", "start": "2026-11-02", "offset": 2}
    ).json()
    assert [row["date"] for row in rest["items"]] == ["2026-11-04", "2026-11-05", "2026-11-06"]
    assert rest["next_offset"] is None
    every = client.get("/api/prices", params={"start": "2026-11-06", "end": "2026-11-06"}).json()
    assert {row["symbol"] for row in every["items"]} == {"SPY", "QQQ", "DIA"}


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "offset=-1", "start=yesterday"])
def test_bad_paging_and_dates_are_422(client, query):
    assert client.get(f"/api/prices?{query}").status_code == 422


def test_signals_newest_first_with_features_used(client):
    body = client.get("/api/signals", params={"limit": 2}).json()
    assert [s["trade_date"] for s in body["items"]] == ["2026-11-06", "2026-11-05"]
    signal = body["items"][0]
    assert signal["action"] in ("BUY", "SELL", "HOLD")
    assert {"regime", "risk", "assets"} <= set(signal["features_used"])
    assert signal["regime"] == signal["features_used"]["regime"]
    assert body["next_offset"] == 2
    assert len(client.get("/api/signals", params={"offset": 2}).json()["items"]) == 3


def test_portfolio_is_marked_at_the_last_close(client):
    body = client.get("/api/portfolio").json()
    assert body["as_of"] == str(LAST)
    assert body["positions"], "five sessions of BUY/HOLD leave positions"
    for p in body["positions"]:
        assert p["market_value"] == pytest.approx(p["quantity"] * p["last_close"])
        gain = p["quantity"] * (p["last_close"] - p["avg_cost"])
        assert p["unrealized_pnl"] == pytest.approx(gain)
    total = body["cash"] + sum(p["market_value"] for p in body["positions"])
    assert body["total_value"] == pytest.approx(total)


def test_cash_and_trades_are_paged(client):
    cash = client.get("/api/cash", params={"limit": 3}).json()
    assert len(cash["items"]) == 3 and cash["next_offset"] == 3
    assert set(cash["items"][0]) >= {"entry_date", "kind", "amount", "balance", "ref"}
    ids = [e["id"] for e in cash["items"]]
    assert ids == sorted(ids, reverse=True)
    trades = client.get("/api/trades", params={"limit": 500}).json()
    assert trades["items"] and trades["next_offset"] is None
    assert {t["status"] for t in trades["items"]} <= {"pending", "filled", "cancelled"}


def test_performance_has_valuations_and_metrics(client):
    body = client.get("/api/performance").json()
    assert [v["valuation_date"] for v in body["valuations"]][-1] == str(LAST)
    assert len(body["valuations"]) >= 2
    assert {"twr", "max_drawdown", "sharpe", "n_trades"} <= set(body["metrics"])


def test_configs_lists_every_version(client):
    items = client.get("/api/configs").json()["items"]
    assert len(items) == 1 and items[0]["active"] is True
    assert items[0]["parameters"]["assets"] == ["SPY", "QQQ", "DIA"]


def test_runs_link_their_artifacts(client, world):
    body = client.get("/api/runs").json()
    assert [r["job"] for r in body["items"]] == ["tune", "execute", "signal"]
    signal = client.get("/api/runs", params={"job": "signal"}).json()["items"][0]
    assert signal["id"] == world["runs"]["signal"]
    links = signal["links"]
    assert links["page"] == f"/runs/{signal['id']}"
    for key in ("html", "markdown", "notebook"):
        assert client.get(links[key]).status_code == 200, key
    notebook = client.get(links["notebook"])
    assert notebook.headers["content-disposition"].startswith("attachment")
    assert client.get(links["html"]).headers["content-type"].startswith("text/html")
    failed = client.get("/api/runs", params={"status": "failed"}).json()["items"]
    assert [r["job"] for r in failed] == ["execute"] and failed[0]["error"]
    assert client.get("/api/runs", params={"since": "2026-11-07"}).json()["items"] == []
    assert client.get("/api/runs", params={"status": "bogus"}).status_code == 422
    assert client.get(f"/api/runs/{signal['id']}").json()["job"] == "signal"
    assert client.get("/api/runs/99999").status_code == 404


HUGE = "9" * 4001


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/runs?offset=9223372036854775807", "offset"),
        (f"/api/runs?offset={HUGE}", "offset"),
        ("/api/runs/99999999999999999999999", "run_id"),
        ("/api/runs/0", "run_id"),
        ("/runs?offset=9223372036854775807", "offset"),
        ("/runs/99999999999999999999999", "run_id"),
        ("/api/trades?offset=-1", "offset"),
        (f"/api/signals?limit={HUGE}", "limit"),
        ("/api/cash?limit=2.5", "limit"),
    ],
)
def test_numbers_out_of_range_are_422_naming_the_allowed_range(client, path, name):
    response = client.get(path)
    assert response.status_code == 422, response.text
    (detail,) = response.json()["detail"]
    low, high = BOUNDS[name]
    assert detail["msg"] == f"{name} must be a whole number from {low} to {high}"
    assert detail["allowed"] == {"minimum": low, "maximum": high}
    assert len(response.content) < 600  # a 4,001-digit value is not echoed back in full


def test_the_largest_allowed_numbers_are_answered(client):
    assert client.get(f"/api/runs?offset={MAX_OFFSET}").json()["items"] == []
    assert client.get(f"/api/trades?offset={MAX_OFFSET}&limit=500").json()["items"] == []
    assert client.get(f"/api/runs/{MAX_ID}").status_code == 404
    assert client.get(f"/runs?offset={MAX_OFFSET}").status_code == 200
    second = client.get("/api/runs", params={"offset": 1, "limit": 1}).json()
    assert [r["job"] for r in second["items"]] == ["execute"] and second["next_offset"] == 2


def test_openapi_lists_the_api(client):
    paths = client.get("/openapi.json").json()["paths"]
    for name in ("health", "prices", "signals", "portfolio", "cash", "trades", "performance"):
        assert set(paths[f"/api/{name}"]) == {"get"}, name


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
@pytest.mark.parametrize("path", ["/api/health", "/", "/api/runs", "/artifacts/runs/x"])
def test_only_get_and_head_are_answered(client, method, path):
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_head_answers_without_a_body(client):
    response = client.head("/api/health")
    assert response.status_code == 200 and response.content == b""


def test_pages_render(client, world):
    page = client.get("/")
    assert page.status_code == 200
    latest = client.get("/api/signals", params={"limit": 1}).json()["items"][0]
    assert f'id="signal-action">{latest["action"]}<' in page.text
    assert "<polyline" in page.text
    assert client.get("/runs", params={"job": "", "status": "", "since": ""}).status_code == 200
    assert "boom: a test failure" in client.get("/runs", params={"status": "failed"}).text
    run_page = client.get(f"/runs/{world['runs']['signal']}").text
    assert '<iframe class="report" src="/artifacts/reports/' in run_page
    assert client.get("/runs/99999").status_code == 404


# --- the archive's path checks -----------------------------------------------------------------


@pytest.fixture(scope="module")
def outside(world):
    """A secret file beside the archive, and symlinks inside the runs folder leading out."""
    secret = world["root"] / "secret.txt"
    secret.write_text("TOP-SECRET", "utf-8")
    runs_dir = world["settings"].runs_dir
    os.symlink("/etc", runs_dir / "etc_link")
    os.symlink(secret, runs_dir / "secret_link.txt")
    return secret


@pytest.mark.parametrize(
    "path",
    [
        "/artifacts/runs/%2e%2e/secret.txt",
        "/artifacts/runs/%2E%2E/%2E%2E/etc/passwd",
        "/artifacts/runs/..%2fsecret.txt",
        "/artifacts/reports/2026/%2e%2e/%2e%2e/%2e%2e/secret.txt",
        "/artifacts/runs//etc/passwd",
        "/artifacts/runs/%2Fetc%2Fpasswd",
        "/artifacts/runs/etc_link/passwd",
        "/artifacts/runs/secret_link.txt",
        "/artifacts/runs/..%5csecret.txt",
    ],
)
def test_paths_outside_the_archive_are_refused(client, outside, path):
    response = client.get(path)
    assert response.status_code == 403, response.text
    assert "TOP-SECRET" not in response.text and "root:" not in response.text


async def _raw_get(app, path: str) -> tuple[int, bytes]:
    """GET ``path`` exactly as written (an HTTP client would remove its ``..`` segments)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
        "root_path": "",
    }
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


@pytest.mark.parametrize(
    "path", ["/artifacts/runs/../secret.txt", "/artifacts/reports/2026/../../secret.txt"]
)
def test_dot_dot_segments_are_refused(world, outside, path):
    app = create_app(world["settings"], WebSettings())
    status, body = asyncio.run(_raw_get(app, path))
    assert status == 403 and b"TOP-SECRET" not in body


def test_resolve_artifact_checks(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.txt").write_text("x")
    assert resolve_artifact(tmp_path, "a/f.txt") == (tmp_path / "a" / "f.txt").resolve()
    for bad in ("../x", "a/../../x", "/etc/passwd", "a\\f.txt", "", "a/f.txt\x00"):
        with pytest.raises(PathRefused):
            resolve_artifact(tmp_path, bad)
    with pytest.raises(FileNotFoundError):
        resolve_artifact(tmp_path, "a")


# --- CORS and the token --------------------------------------------------------------------


def test_cors_is_off_by_default(client):
    response = client.get("/api/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers


def test_cors_allows_only_the_listed_origins(world):
    web = read_web_settings({"ALLOCATOR_CORS_ORIGINS": "https://dash.example.com"})
    client = TestClient(create_app(world["settings"], web))
    allowed = client.get("/api/health", headers={"Origin": "https://dash.example.com"})
    assert allowed.headers["access-control-allow-origin"] == "https://dash.example.com"
    other = client.get("/api/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize("value", ["*", "https://a.example,*", "https://*.example.com"])
def test_cors_wildcard_is_refused(value):
    with pytest.raises(SettingsError, match="ALLOCATOR_CORS_ORIGINS"):
        read_web_settings({"ALLOCATOR_CORS_ORIGINS": value})


def test_a_configured_token_is_required_on_every_request(world):
    client = TestClient(create_app(world["settings"], WebSettings(api_token="s3cret-token")))
    for path in ("/api/health", "/", "/runs", "/openapi.json", "/artifacts/runs/x"):
        assert client.get(path).status_code == 401, path
    wrong = client.get("/api/health", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = client.get("/api/health", headers={"Authorization": "Bearer s3cret-token"})
    assert right.status_code == 200


def test_token_helpers():
    assert bearer_matches("Bearer abc", "abc") and bearer_matches("bearer abc", "abc")
    assert not bearer_matches("Basic abc", "abc") and not bearer_matches(None, "abc")
    assert not bearer_matches("Bearer abcd", "abc")
    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "192.168.1.5", "example.com", "::"):
        assert not is_loopback(host), host
    require_token_for("127.0.0.1", WebSettings())
    require_token_for("0.0.0.0", WebSettings(api_token="t"))
    with pytest.raises(SettingsError, match="ALLOCATOR_API_TOKEN"):
        require_token_for("0.0.0.0", WebSettings())


def test_serve_refuses_a_public_bind_without_a_token(monkeypatch, capsys):
    monkeypatch.delenv("ALLOCATOR_API_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--port", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ALLOCATOR_API_TOKEN" in err


def test_serve_refuses_a_cors_wildcard(monkeypatch, capsys):
    monkeypatch.setenv("ALLOCATOR_CORS_ORIGINS", "*")
    assert main(["serve"]) == 2
    assert "ALLOCATOR_CORS_ORIGINS" in capsys.readouterr().err
