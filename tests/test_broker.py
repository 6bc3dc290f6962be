"""Orders at a broker (``ALLOCATOR_BROKER=alpaca``) against a local fake Alpaca, on SQLite and
PostgreSQL: a week of daily jobs on the paper path, a crash between submitting and recording, a
lost answer and a second runner, a partial fill, rejections, a position mismatch caught by the
health check, and the live-endpoint refusal. Nothing here reaches the internet."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from allocator.exceptions import BrokerError, OrderRejectedError, SettingsError
from allocator.jobs.execute import execute_trades, run_execute
from allocator.jobs.fetch import fetch_bars
from allocator.jobs.health import FAIL, OK, WARN, health_report
from allocator.jobs.reconciliation import reconcile
from allocator.jobs.signal import generate_signal
from allocator.portfolio.slippage import monthly_summary
from allocator.shell import calendar
from allocator.shell.broker import make_broker
from allocator.shell.broker.alpaca import AlpacaBroker
from allocator.shell.broker.base import client_order_id
from allocator.shell.marketdata.synthetic import SyntheticSource
from allocator.shell.persistence import broker as orders_db
from allocator.shell.persistence import ledger
from allocator.shell.persistence.schema import trades
from allocator.shell.settings import get_settings
from tests.fakealpaca import KEY_ID, SECRET, FakeAlpaca
from tests.helpers import seed
from tests.test_alerts import WebhookReceiver

#: Two buying sessions, four holding ones, then a bearish session that sells (default preset).
WEEK = calendar.sessions_between(dt.date(2024, 7, 29), dt.date(2024, 8, 6))
DAY = WEEK[0]
SLIPPAGE_BPS = 3.0
MARKET = SyntheticSource()


def broker_for(fake: FakeAlpaca) -> AlpacaBroker:
    return AlpacaBroker(KEY_ID, SECRET, fake.url, backoff=0.0)


def opens_of(day: dt.date) -> dict[str, float]:
    return {s: float(MARKET.fetch(s, day, day)["open"].iloc[0]) for s in ("SPY", "QQQ", "DIA")}


@pytest.fixture
def book(engine):
    """A migrated database with the default config and a year of synthetic bars before DAY."""
    seed(engine, dt.date(2023, 5, 1), calendar.previous_session(DAY))
    return engine


def morning(engine, fake, broker, day):
    """6:00 signal, 9:00 execute (orders queued for the open)."""
    fake.set_time(day, 6)
    generate_signal(engine, day)
    fake.set_time(day, 9)
    return execute_trades(engine, day, broker=broker)


def evening(engine, fake, broker, day, **market):
    """The open fills the orders (with the known slippage), then the 16:35 fetch."""
    fake.open_market(day, opens_of(day), SLIPPAGE_BPS, **market)
    fake.close_market(day)
    return fetch_bars(engine, day, MARKET, broker=broker)


def trade_rows(engine, day=None):
    with engine.connect() as conn:
        query = sa.select(trades).order_by(trades.c.id)
        if day is not None:
            query = query.where(trades.c.trade_date == day)
        return list(conn.execute(query))


def broker_positions(fake):
    return {s: round(p.qty, 9) for s, p in fake.positions.items()}


def book_positions(engine):
    with engine.connect() as conn:
        return {s: round(q, 9) for s, q in ledger.load_book(conn).holdings().items()}


def test_a_week_on_the_paper_path(book, database_url, fake_alpaca, tmp_path, monkeypatch, capsys):
    """Every order placed once, filled at the open plus 3 bps, recorded at the broker's price,
    reconciled to the broker's positions and cash, and its slippage reported."""
    broker = broker_for(fake_alpaca)
    actions = []
    for day in WEEK:
        executed = morning(book, fake_alpaca, broker, day)
        actions.append(executed.action)
        assert executed.broker == "alpaca paper"
        fetched = evening(book, fake_alpaca, broker, day)
        assert fetched.reconciliation.status == "ok", fetched.reconciliation.detail
        assert fetched.valued
        checks = {c.name: c for c in health_report(book, day, tmp_path).checks}
        assert checks["broker"].status == OK, checks["broker"].detail
        assert checks["pending orders"].status == OK
        for row in fetched.slippage.itertuples():
            assert row.slippage_bps == pytest.approx(SLIPPAGE_BPS, abs=0.01)
    assert actions.count("BUY") >= 2 and "SELL" in actions
    rows = trade_rows(book)
    placed = fake_alpaca.placed()
    assert len(placed) == len(set(placed)) == len(rows)  # each order once
    assert sorted(placed) == sorted(r.client_order_id for r in rows)
    assert {r.status for r in rows} == {"filled"}
    for row in rows:
        order = next(
            o for o in fake_alpaca.orders.values() if o.client_order_id == row.client_order_id
        )
        assert row.price == pytest.approx(order.filled_avg_price, abs=1e-9)
        assert row.quantity == pytest.approx(order.filled_qty, abs=1e-9)
        assert row.broker_order_id == order.id and row.broker_status == "filled"
    assert book_positions(book) == pytest.approx(broker_positions(fake_alpaca), abs=1e-9)
    with book.connect() as conn:
        summary = monthly_summary(orders_db.fills_with_opens(conn))
        rebuilt = ledger.book_before(conn, calendar.next_session(WEEK[-1]))  # the tuner's book
        assert rebuilt.holdings() == ledger.load_book(conn).holdings()
    assert summary["slippage_bps"].tolist() == pytest.approx(
        [SLIPPAGE_BPS] * len(summary), abs=0.01
    )
    assert (summary["slippage_usd"] > 0).all()


def test_a_crash_between_submit_and_record_places_one_order(book, fake_alpaca, monkeypatch):
    broker = broker_for(fake_alpaca)
    real = orders_db.record_submission
    calls = []

    def crash_once(conn, trade_id, order_id, status):
        calls.append(trade_id)
        if len(calls) == 1:
            raise RuntimeError("power cut after the order left")
        real(conn, trade_id, order_id, status)

    monkeypatch.setattr(orders_db, "record_submission", crash_once)
    fake_alpaca.set_time(DAY, 6)
    generate_signal(book, DAY)
    fake_alpaca.set_time(DAY, 9)
    with pytest.raises(RuntimeError, match="power cut"):
        execute_trades(book, DAY, broker=broker)
    assert len(fake_alpaca.orders) == 1  # it left before the crash
    (crashed,) = [r for r in trade_rows(book, DAY) if r.id == calls[0]]
    assert crashed.broker_order_id is None and crashed.status == "pending"
    result = execute_trades(book, DAY, broker=broker)  # the re-run
    assert result.submission.found == [crashed.symbol]
    rows = trade_rows(book, DAY)
    assert len(fake_alpaca.orders) == len(rows) and len(set(fake_alpaca.placed())) == len(rows)
    assert all(r.broker_order_id for r in rows)
    again = execute_trades(book, DAY, broker=broker)  # a third run sends nothing at all
    assert again.submission is not None and len(fake_alpaca.orders) == len(rows)
    posts = [r for r in fake_alpaca.requests if r["method"] == "POST"]
    assert len(posts) == len(rows)
    evening(book, fake_alpaca, broker, DAY)
    assert book_positions(book) == pytest.approx(broker_positions(fake_alpaca), abs=1e-9)


def test_a_lost_answer_and_a_second_runner_never_place_an_order_twice(book, fake_alpaca):
    broker = broker_for(fake_alpaca)
    fake_alpaca.set_time(DAY, 6)
    signal = generate_signal(book, DAY).signal
    fake_alpaca.set_time(DAY, 9)
    # another runner already placed the first order; the answer to ours is lost
    first = sorted(signal.allocations)[0]
    cid = client_order_id(DAY, signal.id, first)
    fake_alpaca._submit(
        {
            "symbol": first,
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
            "notional": f"{signal.allocations[first]:.2f}",
            "client_order_id": cid,
        }
    )
    fake_alpaca.fail("submit", "lost_answer")
    result = execute_trades(book, DAY, broker=broker)
    assert first in result.submission.found
    rows = trade_rows(book, DAY)
    assert sorted(fake_alpaca.placed()) == sorted(r.client_order_id for r in rows)
    assert all(r.broker_order_id for r in rows)


def test_a_partial_fill_is_recorded_and_the_rest_cancelled_at_the_close(
    book, fake_alpaca, tmp_path
):
    broker = broker_for(fake_alpaca)
    morning(book, fake_alpaca, broker, DAY)
    symbol = sorted(r.symbol for r in trade_rows(book, DAY))[0]
    fetched = evening(book, fake_alpaca, broker, DAY, fill_ratio={symbol: 0.5})
    rec = fetched.reconciliation
    assert rec.status == "ok" and rec.partial == [symbol], rec.detail
    (row,) = [r for r in trade_rows(book, DAY) if r.symbol == symbol]
    order = fake_alpaca.orders[row.broker_order_id]
    assert order.status == "canceled"  # the rest, cancelled after the close
    assert any(r["method"] == "DELETE" for r in fake_alpaca.requests)
    assert row.status == "filled" and row.broker_status == "canceled"
    assert row.quantity == pytest.approx(order.filled_qty, abs=1e-9)
    assert row.amount == pytest.approx(float(row.ordered_amount) / 2, rel=1e-6)
    assert row.broker_reason.startswith("partly filled:")
    assert book_positions(book) == pytest.approx(broker_positions(fake_alpaca), abs=1e-9)
    checks = {c.name: c for c in health_report(book, DAY, tmp_path).checks}
    assert checks["broker"].status == OK


def test_an_order_still_open_during_its_session_is_left_open(book, fake_alpaca):
    broker = broker_for(fake_alpaca)
    morning(book, fake_alpaca, broker, DAY)
    fake_alpaca.set_time(DAY, 11)
    rec = reconcile(book, broker, DAY)
    assert rec.status == "incomplete" and rec.open_orders == len(trade_rows(book, DAY))
    assert {r.status for r in trade_rows(book, DAY)} == {"pending"}
    assert not [r for r in fake_alpaca.requests if r["method"] == "DELETE"]


def test_a_rejection_is_recorded_fails_the_job_and_alerts(
    book, database_url, fake_alpaca, monkeypatch
):
    """Buying power short for one order, an asset that is not fractionable for another."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    fake_alpaca.set_time(DAY, 6)
    signal = generate_signal(book, DAY).signal
    buys = sorted(signal.allocations)
    fake_alpaca.fractionable[buys[0]] = False
    fake_alpaca.cash = signal.allocations[buys[1]] - 5.0  # not enough for buys[1]
    fake_alpaca.set_time(DAY, 9)
    with WebhookReceiver() as hook:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", hook.url)
        with pytest.raises(OrderRejectedError) as caught:
            run_execute(DAY)
    message = str(caught.value)
    assert f"{buys[0]}: {buys[0]} is not fractionable at alpaca" in message
    assert f"{buys[1]}: POST /v2/orders: HTTP 403: insufficient buying power" in message
    rows = {r.symbol: r for r in trade_rows(book, DAY)}
    for symbol in buys[:2]:
        assert rows[symbol].status == "cancelled" and rows[symbol].broker_status == "rejected"
    assert "insufficient buying power" in rows[buys[1]].broker_reason
    (post,) = hook.posts
    assert "orders rejected" in post[2]["text"] and "insufficient buying power" in post[2]["text"]
    assert SECRET not in post[2]["text"]


def test_orders_are_not_sent_once_the_session_is_over(book, fake_alpaca):
    broker = broker_for(fake_alpaca)
    fake_alpaca.set_time(DAY, 6)
    generate_signal(book, DAY)
    fake_alpaca.set_time(DAY, 17)
    with pytest.raises(OrderRejectedError, match="the market is closed for 2024-07-29"):
        execute_trades(book, DAY, broker=broker)
    assert fake_alpaca.orders == {}
    assert {r.status for r in trade_rows(book, DAY)} == {"cancelled"}


def test_a_position_mismatch_fails_the_health_check(
    book, fake_alpaca, tmp_path, database_url, monkeypatch, capsys
):
    broker = broker_for(fake_alpaca)
    morning(book, fake_alpaca, broker, DAY)
    fake_alpaca.open_market(DAY, opens_of(DAY), SLIPPAGE_BPS)
    # someone buys a share of SPY by hand in the same account
    fake_alpaca.positions["SPY"].qty += 1.0
    fake_alpaca.cash -= 500.0
    fake_alpaca.close_market(DAY)
    fetched = fetch_bars(book, DAY, MARKET, broker=broker)
    rec = fetched.reconciliation
    assert rec.status == "mismatch"
    assert rec.positions_diff["SPY"]["broker"] == pytest.approx(
        rec.positions_diff["SPY"]["book"] + 1.0
    )
    assert rec.cash_difference == pytest.approx(-500.0, abs=0.05)
    check = {c.name: c for c in health_report(book, DAY, tmp_path).checks}["broker"]
    assert check.status == FAIL
    assert "positions differ: SPY book" in check.detail and "(+1)" in check.detail
    assert "cash use differs" in check.detail and "(-500.0" in check.detail
    from allocator.cli.commands import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["broker", "reconcile", "--date", str(DAY)]) == 1
    assert "MISMATCH; 0 fill(s) recorded; positions differ: SPY" in capsys.readouterr().out


def test_buying_power_below_the_daily_deposit_is_a_health_warning(book, fake_alpaca, tmp_path):
    """An account left with $500 after the day's buys: below the $1,000 deposit the strategy
    spends from tomorrow; the book still agrees with it."""
    broker = broker_for(fake_alpaca)
    fake_alpaca.set_time(DAY, 6)
    buys = sum(generate_signal(book, DAY).signal.allocations.values())
    fake_alpaca.cash = buys + 500.0  # after the buys: $500 of buying power
    fake_alpaca.set_time(DAY, 9)
    execute_trades(book, DAY, broker=broker)
    rec = evening(book, fake_alpaca, broker, DAY).reconciliation
    assert rec.status == "ok" and rec.low_buying_power, rec.detail
    assert "below the daily deposit of 1,000.00" in rec.detail
    check = {c.name: c for c in health_report(book, DAY, tmp_path).checks}["broker"]
    assert check.status == WARN
    assert check.detail.startswith("buying power ") and "fund the account" in check.detail


def test_a_broker_that_cannot_be_reached_fails_the_fetch_after_the_bars(book, fake_alpaca):
    broker = broker_for(fake_alpaca)
    morning(book, fake_alpaca, broker, DAY)
    fake_alpaca.open_market(DAY, opens_of(DAY), SLIPPAGE_BPS)
    fake_alpaca.close_market(DAY)
    fake_alpaca.fail("clock", "http_500", times=4)  # the first try and its 3 retries
    fetched = fetch_bars(book, DAY, MARKET, broker=broker)
    assert fetched.missing == [] and fetched.rows_inserted  # the bars are stored
    assert fetched.broker_summary.startswith("alpaca paper: not reconciled: GET /v2/clock")
    with pytest.raises(BrokerError, match="HTTP 500: internal server error"):
        fetched.raise_for_errors()
    assert {r.status for r in trade_rows(book, DAY)} == {"pending"}
    assert evening(book, fake_alpaca, broker, DAY).reconciliation.status == "ok"  # re-run


def test_an_unreconciled_day_fails_the_health_check(book, fake_alpaca, tmp_path):
    morning(book, fake_alpaca, broker_for(fake_alpaca), DAY)
    check = {c.name: c for c in health_report(book, DAY, tmp_path).checks}["broker"]
    assert check.status == FAIL
    assert f"allocator broker reconcile --date {DAY}" in check.detail


# --- settings and the HTTP client (no database) ----------------------------------------------


def env(**extra):
    return {"DATABASE_URL": "sqlite:///unused.sqlite3", **extra}


def test_a_live_endpoint_is_refused_unless_allowed():
    live = env(ALLOCATOR_BROKER="alpaca", APCA_API_BASE_URL="https://api.alpaca.markets")
    with pytest.raises(SettingsError, match="ALLOCATOR_BROKER_LIVE=yes"):
        get_settings(live, dotenv=False)
    allowed = get_settings({**live, "ALLOCATOR_BROKER_LIVE": "yes"}, dotenv=False)
    assert allowed.broker_is_live and allowed.broker_label == "alpaca LIVE"
    paper = get_settings(env(ALLOCATOR_BROKER="alpaca"), dotenv=False)
    assert paper.apca_base_url == "https://paper-api.alpaca.markets"
    assert paper.broker_label == "alpaca paper"
    assert get_settings(env(), dotenv=False).broker_label == "simulated"
    with pytest.raises(SettingsError, match="ALLOCATOR_BROKER='ibkr' is not a broker"):
        get_settings(env(ALLOCATOR_BROKER="ibkr"), dotenv=False)
    with pytest.raises(SettingsError, match="APCA_API_KEY_ID is not set"):
        make_broker(paper)


def test_the_cli_refuses_a_live_endpoint_before_anything_runs(monkeypatch, capsys):
    from allocator.cli.commands import main

    monkeypatch.setenv("ALLOCATOR_BROKER", "alpaca")
    monkeypatch.setenv("APCA_API_BASE_URL", "https://api.alpaca.markets/v2")
    assert main(["broker", "reconcile"]) == 2
    err = capsys.readouterr().err
    assert "is not Alpaca's paper endpoint" in err
    assert "Refused unless ALLOCATOR_BROKER_LIVE=yes is also set" in err


def test_a_live_account_is_said_in_every_report(book, monkeypatch):
    """A live endpoint (here a fake on another loopback address, which is not a paper host)
    runs only with ALLOCATOR_BROKER_LIVE=yes, and then says LIVE."""
    with FakeAlpaca(host="127.0.0.2") as fake:
        for name, value in fake.environ().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("ALLOCATOR_BROKER_LIVE", "yes")
        settings = get_settings(dotenv=False)
        broker = make_broker(settings)
        assert broker.live and settings.broker_label == "alpaca LIVE"
        result = morning(book, fake, broker, DAY)
        assert result.live and result.summary_line().startswith("LIVE ACCOUNT: execute")
        fetched = evening(book, fake, broker, DAY)
        assert fetched.live and fetched.reconciliation.broker == "alpaca LIVE"
        assert fetched.broker_summary.startswith("LIVE ACCOUNT: reconcile 2024-07-29")


def test_the_client_maps_alpacas_errors(fake_alpaca):
    broker = broker_for(fake_alpaca)
    assert broker.order_by_client_id("ca-nothing") is None  # 404
    fake_alpaca.fail("account", "http_429")
    fake_alpaca.fail("account", "http_500")
    assert broker.account().cash == 100_000.0  # retried twice
    wrong = AlpacaBroker(KEY_ID, "wrong-secret", fake_alpaca.url, backoff=0.0)
    with pytest.raises(
        BrokerError, match="HTTP 401: request is not authorized .check APCA_API_KEY_ID"
    ):
        wrong.account()
    fake_alpaca.fail("submit", "http_500")
    from allocator.shell.broker.base import OrderRequest

    with pytest.raises(BrokerError, match="HTTP 500") as caught:  # a POST is never retried
        broker.submit(OrderRequest("ca-x", "SPY", "buy", notional=10.0))
    assert caught.value.status == 500
    assert [r["method"] for r in fake_alpaca.requests].count("POST") == 1
    with pytest.raises(BrokerError, match="HTTP 422: qty or notional is required"):
        broker.request("POST", "/v2/orders", body={"symbol": "SPY", "side": "buy"}, retry=False)
    assert broker.asset("XYZ") is None
    assert broker.asset("SPY").fractionable
    assert "wrong-secret" not in repr(wrong) and SECRET not in repr(broker)


def test_the_keys_are_secrets(monkeypatch):
    settings = get_settings(
        env(ALLOCATOR_BROKER="alpaca", APCA_API_KEY_ID=KEY_ID, APCA_API_SECRET_KEY=SECRET),
        dotenv=False,
    )
    assert KEY_ID in settings.secret_values() and SECRET in settings.secret_values()
    assert SECRET not in repr(settings) and KEY_ID not in repr(settings)


def test_client_order_ids_are_deterministic_and_short():
    cid = client_order_id(dt.date(2026, 12, 7), 1234567890, "BRK.B")
    assert cid == "ca-20261207-1234567890-BRK.B" and len(cid) <= 48
    assert client_order_id(dt.date(2026, 12, 7), 5, "spy") == "ca-20261207-5-SPY"


def test_the_crontab_sends_orders_to_alpaca_before_the_open(tmp_path):
    from allocator.notebook.crontab import crontab_text

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for job in ("fetch", "signal", "execute", "tune"):
        (notebooks / f"{job}.ipynb").write_text("{}")

    def schedule(**extra) -> dict[str, str]:
        settings = get_settings(env(**extra), dotenv=False)
        text = crontab_text(settings, zone="America/New_York", notebooks_dir=notebooks)
        lines = [line for line in text.splitlines() if " run " in line and line[0] != "#"]
        return {line.split(" run ")[1].split()[0]: " ".join(line.split()[:5]) for line in lines}

    assert schedule()["execute"] == "30 9 * * 1-5"  # simulated: at the open, as before
    alpaca = schedule(ALLOCATOR_BROKER="alpaca")
    assert alpaca["execute"] == "0 9 * * 1-5"
    assert alpaca["signal"] == "0 6 * * 1-5" and alpaca["fetch"] == "35 16 * * 1-5"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_dashboard_shows_each_fill_against_the_open(book, database_url, fake_alpaca, tmp_path):
    import warnings

    from allocator.web.app import create_app
    from allocator.web.security import WebSettings
    from tests.webdata import settings_for

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    broker = broker_for(fake_alpaca)
    morning(book, fake_alpaca, broker, DAY)
    evening(book, fake_alpaca, broker, DAY)
    with TestClient(create_app(settings_for(database_url, tmp_path), WebSettings())) as client:
        body = client.get("/api/slippage").json()
        page = client.get("/").text
    (month,) = body["months"]
    assert month["month"] == "2024-07" and month["slippage_bps"] == pytest.approx(3.0, abs=0.01)
    assert body["fills"] and all(f["broker"] for f in body["fills"])
    assert all(f["slippage_bps"] == pytest.approx(3.0, abs=0.01) for f in body["fills"])
    assert 'id="slippage"' in page and ">3.00<" in page and ">broker<" in page


def test_alpacas_times_and_the_order_list(fake_alpaca):
    from allocator.shell.broker.alpaca import _time

    assert _time("2026-12-07T09:30:00.123456789-05:00") == dt.datetime(
        2026, 12, 7, 14, 30, 0, 123456, tzinfo=dt.UTC
    )
    assert _time("2026-12-07T14:30:00Z") == dt.datetime(2026, 12, 7, 14, 30, tzinfo=dt.UTC)
    broker = broker_for(fake_alpaca)
    fake_alpaca.set_time(DAY, 9)
    from allocator.shell.broker.base import OrderRequest

    placed = broker.submit(OrderRequest("ca-20240729-1-SPY", "SPY", "buy", notional=25.0))
    assert (placed.status, placed.notional, placed.qty) == ("accepted", 25.0, None)
    clock = broker.clock()
    assert clock.trades_on(DAY) and not clock.session_over(DAY) and not clock.is_open
    start = dt.datetime.combine(DAY, dt.time(0), tzinfo=dt.UTC)
    (listed,) = broker.orders(start, start + dt.timedelta(days=1))
    assert listed == broker.order(placed.id) == broker.order_by_client_id("ca-20240729-1-SPY")
    broker.cancel(placed.id)
    broker.cancel(placed.id)  # 422 not cancelable: ignored
    assert broker.order(placed.id).status == "canceled"
    fake_alpaca.close_market(DAY)
    assert broker.clock().session_over(DAY)
