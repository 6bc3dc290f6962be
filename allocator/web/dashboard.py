"""The dashboard ``/``: the answer first (value, P&L, return against the benchmarks), then the
charts, the latest signal and the book, the latest backtest, the tuning reports, recent runs.

The charts are server-side SVG (:mod:`.charts`): the equity curve against the deposits, all-SPY
and SPY + cash at the portfolio's own exposure (the same deposits on the same sessions,
:func:`allocator.backtest.benchmarks.benchmarks`); the daily P&L (the day's change in value less
its deposit); the allocation by asset at the last close. An annualised figure (Sharpe) over fewer
than :data:`~.views.MIN_SESSIONS_FOR_ANNUALISED` sessions is shown as ``—`` with the reason.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from allocator.backtest.benchmarks import SPY_MIX, benchmarks
from allocator.backtest.prices import PriceTable
from allocator.exceptions import AllocatorError
from allocator.notebook.formats import count, dollars, percent, ratio
from allocator.portfolio.metrics import summary
from allocator.shell.persistence import browse, ledger
from allocator.shell.persistence.configs import active_version
from allocator.shell.persistence.jobruns import list_runs
from allocator.shell.persistence.prices import load_bars
from allocator.web import charts, runinfo, views
from allocator.web.api import engine_of, folders_of
from allocator.web.templating import templates

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

RECENT_RUNS = 10
#: Sessions of the daily P&L chart: about a year (one bar a session stays readable).
PNL_SESSIONS = 252
#: The monthly tuning reports' folder under the reports folder (allocator.jobs.tune.report_path;
#: not imported from allocator.notebook.index, which loads nbformat for its CSS).
TUNING_DIR = "strategy-tuning"
TUNING_REPORTS = 12
#: The benchmarks drawn beside the portfolio, and how.
BENCHMARK_LINES = {"all SPY": ("#d97706", None), SPY_MIX: ("#7c3aed", "7 4")}
VALUE_COLOR, DEPOSITS_COLOR = "#1d4ed8", "#9ca3af"
ASSET_COLORS = ("#1d4ed8", "#0891b2", "#7c3aed", "#d97706", "#db2777", "#65a30d")
CASH_COLOR = "#9ca3af"


def daily_frame(valuations: pd.DataFrame) -> pd.DataFrame:
    """Valuations as a daily frame (``date``, ``deposit``, ``positions_value``, ``total_value``,
    ``pnl``): the deposit is the day's change in cumulative deposits, the P&L the day's change in
    value less that deposit (the first day: its value less its deposits)."""
    frame = valuations.rename(columns={"valuation_date": "date"}).copy()
    deposits = frame["cumulative_deposits"].astype(float)
    frame["deposit"] = deposits.diff().fillna(deposits.iloc[0])
    value = frame["total_value"].astype(float)
    frame["pnl"] = value.diff().fillna(value.iloc[0]) - frame["deposit"]
    return frame


def benchmark_frames(conn: sa.Connection, daily: pd.DataFrame, exposure: float) -> dict:
    """All-SPY and the SPY + cash mix over the valuation sessions ({} when bars are missing)."""
    sessions = list(daily["date"])
    assets = list(active_version(conn).config.assets)
    bars = load_bars(conn, sorted({"SPY", *assets}), sessions[0], sessions[-1])
    try:
        found = benchmarks(
            PriceTable.from_bars(bars), sessions, list(daily["deposit"]), assets, exposure
        )
    except (AllocatorError, KeyError, ValueError) as exc:
        log.info("no benchmarks on the dashboard: %s", exc)
        return {}
    return {name: found[name] for name in BENCHMARK_LINES if name in found}


def headline(metrics: dict[str, Any], daily: pd.DataFrame) -> list[dict[str, str]]:
    """The dashboard's first line: label, figure, and a note where the figure needs one."""
    sessions = int(metrics.get("n_sessions") or 0)
    sharpe, note = ratio(metrics.get("sharpe")), "annualised"
    if "sharpe" in views.annualised_notes(metrics):
        sharpe = "—"
        note = f"annualised from {sessions} sessions: needs {views.MIN_SESSIONS_FOR_ANNUALISED}"
    last_pnl = daily["pnl"].iloc[-1]
    value = float(daily["total_value"].iloc[-1])
    deposits = float(daily["cumulative_deposits"].iloc[-1])
    return [
        {"label": "Value", "value": dollars(value), "note": f"deposits {dollars(deposits)}"},
        {"label": "Gain", "value": dollars(value - deposits), "note": "value less deposits"},
        {"label": "Last day", "value": dollars(last_pnl), "note": str(daily["date"].iloc[-1])},
        {"label": "TWR", "value": percent(metrics.get("twr")), "note": "time-weighted"},
        {"label": "Max drawdown", "value": percent(metrics.get("max_drawdown")), "note": ""},
        {"label": "Sharpe", "value": sharpe, "note": note},
        {"label": "Trades", "value": count(metrics.get("n_trades")), "note": ""},
    ]


def comparison_rows(
    metrics: dict[str, Any], others: dict[str, pd.DataFrame]
) -> list[dict[str, str]]:
    """The portfolio and each benchmark: value at the last close, TWR, max drawdown."""
    rows = [("portfolio", metrics)]
    rows += [(name, summary(frame)) for name, frame in others.items()]
    return [
        {
            "name": name,
            "value": dollars(found.get("final_value")),
            "twr": percent(found.get("twr")),
            "max_drawdown": percent(found.get("max_drawdown")),
        }
        for name, found in rows
    ]


def performance_section(conn: sa.Connection) -> dict[str, Any] | None:
    """Headline, equity and P&L charts and the benchmark table (None: no valuation yet)."""
    valuations = ledger.valuations_frame(conn)
    if valuations.empty:
        return None
    daily = daily_frame(valuations)
    fills = ledger.trades_frame(conn)
    metrics = summary(daily, fills[fills["status"] == "filled"])
    others = benchmark_frames(conn, daily, metrics["exposure"])
    dates = list(daily["date"])
    lines = [
        charts.Line("portfolio value", list(daily["total_value"]), VALUE_COLOR, width=2.5),
        charts.Line("deposits", list(daily["cumulative_deposits"]), DEPOSITS_COLOR, "3 3"),
    ]
    for name, frame in others.items():
        color, dash = BENCHMARK_LINES[name]
        lines.append(charts.Line(name, list(frame["total_value"]), color, dash, width=1.6))
    gains = [
        charts.Line(
            line.name,
            _less(line.values, daily["cumulative_deposits"]),
            line.color,
            line.dash,
            line.width,
        )
        for line in lines
        if line.name != "deposits"
    ]
    return {
        "headline": headline(metrics, daily),
        "equity_svg": charts.line_chart(
            dates, lines, label="portfolio value against deposits and benchmarks"
        ),
        "gain_svg": charts.line_chart(
            dates, gains, label="gain over deposits of the portfolio and the benchmarks"
        ),
        "pnl_svg": charts.bar_chart(
            dates[-PNL_SESSIONS:],
            list(daily["pnl"])[-PNL_SESSIONS:],
            label="daily profit and loss",
            name="daily P&L",
        ),
        "pnl_sessions": min(len(dates), PNL_SESSIONS),
        "comparison": comparison_rows(metrics, others),
        "first": dates[0],
        "last": dates[-1],
    }


def _less(values: list[float], deposits: pd.Series) -> list[float]:
    return [float(v) - float(d) for v, d in zip(values, deposits, strict=True)]


def allocation_svg(portfolio: dict[str, Any]) -> str | None:
    """The book at the last close by asset (and cash), as bars of dollars and shares."""
    total = portfolio.get("total_value") or 0.0
    if total <= 0:
        return None
    items = [
        (p["symbol"], p["market_value"] or 0.0, ASSET_COLORS[i % len(ASSET_COLORS)])
        for i, p in enumerate(portfolio["positions"])
    ]
    items.append(("cash", portfolio["cash"], CASH_COLOR))
    return charts.share_bars(items, label="allocation by asset at the last close", total=total)


def latest_backtest(engine: sa.Engine, folders: dict) -> dict[str, Any] | None:
    """The newest succeeded backtest: its period, metrics against its benchmarks, links."""
    found = list_runs(engine, job="backtest", status="succeeded", limit=1)
    if not found:
        return None
    run = found[0]
    scraps = runinfo.scraps_of(run)
    comparison = scraps.get("comparison") if isinstance(scraps.get("comparison"), dict) else {}
    metrics = scraps.get("metrics") if isinstance(scraps.get("metrics"), dict) else {}
    rows = [("strategy", metrics)]
    rows += [(name, comparison[name]) for name in BENCHMARK_LINES if name in comparison]
    return {
        "run": views.run_view(run, folders),
        "rows": [
            {
                "name": name,
                "twr": percent(m.get("twr")),
                "cagr": percent(m.get("cagr")),
                "sharpe": ratio(m.get("sharpe")),
                "max_drawdown": percent(m.get("max_drawdown")),
                "final_value": dollars(m.get("final_value")),
            }
            for name, m in rows
        ],
    }


def tuning_reports(reports_dir: Path) -> list[str]:
    """The months of the newest monthly tuning reports (``2026-11``), newest first."""
    found = sorted((Path(reports_dir) / TUNING_DIR).glob("tuning_????-??.md"), reverse=True)
    return [p.stem.removeprefix("tuning_") for p in found[:TUNING_REPORTS]]


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, engine: sa.Engine = Depends(engine_of)) -> HTMLResponse:
    health = views.health_view(engine)
    context: dict[str, Any] = {"health": health}
    if health["status"] == "ok":
        folders = folders_of(request)
        with engine.connect() as conn:
            latest = browse.latest_signal(conn)
            context["signal"] = views.signal_view(latest) if latest else None
            context["portfolio"] = views.portfolio_view(conn)
            context["performance"] = performance_section(conn)
            context["slippage"] = views.slippage_view(conn)
        context["allocation_svg"] = allocation_svg(context["portfolio"])
        context["backtest"] = latest_backtest(engine, folders)
        context["tuning"] = tuning_reports(folders["reports"])
        recent = list_runs(engine, limit=RECENT_RUNS)
        context["runs"] = [views.run_view(r, folders) for r in recent]
    return templates.TemplateResponse(request, "dashboard.html", context)
