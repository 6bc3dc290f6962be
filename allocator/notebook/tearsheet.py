"""A backtest as a tearsheet: the answer first, then the figures and tables a reviewer compares.

For the backtest, study and walk-forward reports, from a
:class:`~allocator.backtest.engine.BacktestResult`: :func:`summary` (the headline figures
against the benchmarks and whether the strategy beats the SPY + cash mix at its own exposure),
:func:`comparison` (every metric of every run), :func:`worst_drawdowns`, :func:`trade_statistics`,
:func:`recent_trades`, :func:`exposure_note`, and the figures of :mod:`.performance_plots` fed
with the result's own returns (:func:`returns`: time-weighted, deposits are not returns).

QuantStats is the reference for what is shown; the figures are drawn here and every number is
this package's own (:mod:`allocator.portfolio.metrics`, :mod:`allocator.portfolio.periods`,
:mod:`allocator.portfolio.trade_stats`), formatted by :mod:`.formats`.
"""

from __future__ import annotations

import pandas as pd

from allocator.backtest.benchmarks import EXPOSURE_MATCHED, SPY_MIX
from allocator.backtest.engine import BacktestResult
from allocator.notebook import performance_plots as charts
from allocator.notebook import plots
from allocator.notebook.formats import (
    METRIC_FORMATS,
    cents,
    count,
    date,
    days,
    decimal,
    dollars,
    metric,
    multiple,
    percent,
    ratio,
    shares,
    short_reason,
    too_short,
    unavailable,
    versus_mix,
)
from allocator.notebook.tables import Card, Cards, Markdown, Table, heat
from allocator.portfolio import metrics, periods
from allocator.portfolio.trade_stats import trade_statistics as trade_figures

#: The runs the figures draw, in this order, when the result has them.
DRAWN = ("strategy", SPY_MIX, "all SPY", "equal weight")
#: The metrics of the headline table, in its order.
HEADLINE = ("twr", "cagr", "sharpe", "sortino", "max_drawdown", "exposure", "final_value")
#: The metrics of the full comparison, in its order (one row each).
COMPARED = (
    "twr",
    "cagr",
    "mwr",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "exposure",
    "matched_exposure",
    "final_value",
    "total_deposits",
    "n_trades",
)
WORST = 5


def period(result: BacktestResult) -> list[str]:
    """``[first session, last session]`` as ISO dates: the ``period`` scrap of the report."""
    return [date(result.start), date(result.end)]


def _sessions(result: BacktestResult) -> int:
    return int(result.metrics.get("n_sessions") or len(result.daily))


def returns(result: BacktestResult) -> pd.DataFrame:
    """The time-weighted daily returns of the strategy and each benchmark, dated index."""
    runs = {"strategy": result.daily, **result.benchmarks}
    columns = {}
    for name, daily in runs.items():
        frame = daily.set_index("date")
        columns[name] = metrics.daily_returns_flow_adjusted(frame["total_value"], frame["deposit"])
    return pd.DataFrame(columns)


def _drawn(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[[name for name in DRAWN if name in frame.columns]]


def _figure(result: BacktestResult, key: str, reason: str | None = None) -> str:
    """A metric of the comparison (or the strategy's metrics) as text."""
    value = result.metrics.get(key)
    return metric(key, value, _sessions(result)) if reason is None else reason


def verdict(result: BacktestResult, subject: str = "The strategy") -> str:
    """Whether the strategy beats the SPY + cash mix at its own exposure, in one sentence."""
    table = result.comparison
    if table is None or SPY_MIX not in table.index:
        return "No SPY + cash mix to compare with: SPY's bars do not cover the period."
    if too_short("sharpe", _sessions(result)):
        return (
            f"{subject} is not compared with the SPY + cash mix: a Sharpe ratio "
            f"{short_reason(_sessions(result))}."
        )
    return versus_mix(subject, table.loc["strategy"], table.loc[SPY_MIX])


def summary(result: BacktestResult, subject: str = "The strategy") -> Cards:
    """The answer first: period, final value, TWR, Sharpe, drawdown and exposure as cards, the
    verdict against the SPY + cash mix, and the headline table against the benchmarks."""
    m, n = result.metrics, _sessions(result)
    spy = result.comparison.loc["all SPY"] if _has(result, "all SPY") else {}
    dd = f"{date(m.get('max_drawdown_peak'))} → {date(m.get('max_drawdown_trough'))}"
    cards = [
        Card("period", f"{date(result.start)} .. {date(result.end)}", f"{count(n)} sessions"),
        Card(
            "final value",
            dollars(m.get("final_value")),
            f"deposits {dollars(m.get('total_deposits'))}",
        ),
        Card("TWR", percent(m.get("twr")), f"CAGR {metric('cagr', m.get('cagr'), n)}"),
        Card(
            "Sharpe",
            metric("sharpe", m.get("sharpe"), n),
            f"all SPY {metric('sharpe', spy.get('sharpe'), n)}",
        ),
        Card(
            "max drawdown",
            percent(m.get("max_drawdown")),
            dd if m.get("max_drawdown_peak") else "no drawdown",
        ),
        Card("exposure", percent(m.get("exposure")), f"{count(m.get('n_trades'))} trades"),
    ]
    beat = result.comparison is not None and "does not" not in verdict(result, subject)
    tone = "good" if beat else "bad" if SPY_MIX in _index(result) else ""
    replayed = f"Replayed with {config_text(result.config_label)}."
    return Cards(
        cards, [verdict(result, subject), replayed], tone=tone, extra=[headline_table(result)]
    )


def config_text(label: str) -> str:
    """A schedule's label as a reader says it: ``config history`` is the stored versions."""
    history = "config history"
    if label.startswith(history):
        return "the stored config versions, each from its start date" + label[len(history) :]
    return label


def _index(result: BacktestResult) -> list[str]:
    return [] if result.comparison is None else list(result.comparison.index)


def _has(result: BacktestResult, name: str) -> bool:
    return name in _index(result)


def headline_table(result: BacktestResult) -> Table:
    """The strategy and the drawn benchmarks, one row each, the :data:`HEADLINE` metrics."""
    table, n = result.comparison, _sessions(result)
    runs = [name for name in DRAWN if name in _index(result)]
    rows = [
        [name, *(metric(k, table.loc[name, k], n, reason=False) for k in HEADLINE)] for name in runs
    ]
    columns = ["run", *(METRIC_FORMATS[k][0] for k in HEADLINE)]
    return Table(columns, rows, notes=_notes(n))


def _notes(sessions: int) -> list[str]:
    if too_short("sharpe", sessions):
        return [f"— annualised figures (CAGR, volatility, Sharpe...): {short_reason(sessions)}."]
    return []


def comparison(result: BacktestResult) -> Table:
    """Every :data:`COMPARED` metric (rows) of the strategy and every benchmark (columns)."""
    table, n = result.comparison, _sessions(result)
    if table is None:
        return Table(["metric"], [], empty="No benchmarks were computed.")
    runs = list(table.index)
    rows = []
    for key in COMPARED:
        if key not in table.columns:
            continue
        rows.append(
            [
                METRIC_FORMATS[key][0],
                *(metric(key, table.loc[r, key], n, reason=False) for r in runs),
            ]
        )
    notes = [
        "— for a benchmark's trades: a benchmark is a rule (same deposits, filled at the open), "
        "not a ledger; for cash's ratios: no risk, no ratio; 'matched to exposure' is the "
        f"strategy's exposure the mixes ({', '.join(EXPOSURE_MATCHED)}) hold.",
        *_notes(n),
    ]
    return Table(["metric", *runs], rows, notes=notes)


def worst_drawdowns(result: BacktestResult, worst: int = WORST) -> Table:
    """The ``worst`` deepest drawdowns of the strategy: peak, trough, recovery, depth, length."""
    episodes = periods.drawdown_episodes(returns(result)["strategy"], worst)
    rows = [
        [
            str(i),
            percent(e.depth),
            date(e.peak),
            date(e.trough),
            date(e.recovery) if e.recovery is not None else "not recovered",
            days(e.sessions, "session"),
            days(e.days),
        ]
        for i, e in enumerate(episodes.itertuples(), start=1)
    ]
    columns = ["rank", "depth", "peak", "trough", "recovery", "length", "calendar days"]
    notes = ["Length: from the peak to the recovery (or to the last session, when not recovered)."]
    return Table(
        columns, rows, title=f"The {worst} worst drawdowns", notes=notes, empty="No drawdown."
    )


def trade_statistics(result: BacktestResult) -> Table:
    """Count, win rate, profit factor, average holding and turnover of the strategy's trades."""
    t = trade_figures(result.trades)
    actions = result.signals["action"].value_counts() if len(result.signals) else pd.Series()
    no_sells = "no sell yet" if not t["n_sells"] else None
    rows = [
        (
            "trades",
            f"{count(t['n_trades'])} ({count(t['n_buys'])} buys, {count(t['n_sells'])} sells)",
        ),
        (
            "sessions by action",
            ", ".join(f"{a} {count(actions.get(a, 0))}" for a in ("BUY", "HOLD", "SELL")),
        ),
        ("bought / sold", f"{dollars(t['bought'])} / {dollars(t['sold'])}"),
        (
            "win rate (sells with a gain)",
            unavailable(no_sells) if no_sells else percent(t["win_rate"]),
        ),
        (
            "profit factor (gains / losses)",
            multiple(t["profit_factor"])
            if t["profit_factor"] == t["profit_factor"]
            else unavailable(no_sells or "no losing sell"),
        ),
        ("average win / loss", f"{cents(t['average_win'])} / {cents(t['average_loss'])}"),
        ("realised P&L", dollars(t["realized_pnl"])),
        (
            "average holding (FIFO)",
            days(t["average_holding_days"]) if no_sells is None else unavailable(no_sells),
        ),
        ("turnover a year", _figure(result, "turnover")),
    ]
    notes = [
        "A sell is the only fill that realises a gain or a loss (the book keeps a weighted-average "
        "cost); holding times match the shares sold to those bought first. Turnover: dollars "
        "traded a year over the average value (buying with the deposits counts)."
    ]
    return Table(["figure", "value"], [list(r) for r in rows], align="lr", notes=notes)


def recent_trades(
    result: BacktestResult, n: int = 10, trades_page: str | None = "/trades"
) -> Table:
    """The last ``n`` trades, every number in its unit; the note says where the full list is."""
    trades = result.trades.tail(n)
    rows = [
        [
            date(t.date),
            t.symbol,
            t.action,
            shares(t.quantity),
            cents(t.price),
            cents(t.amount),
            cents(t.realized_pnl) if t.action == "SELL" else "—",
        ]
        for t in trades.itertuples()
    ]
    notes = ["— realised P&L: a buy realises none."]
    columns = ["date", "symbol", "action", "shares", "price", "amount", "realised P&L"]
    title = f"The last {min(n, len(result.trades))} of {count(len(result.trades))} trades"
    return Table(columns, rows, align="lllrrrr", title=title, notes=notes, empty="No trades.")


def trade_list(result: BacktestResult) -> Markdown:
    """Where the full trade list is: the web app's page of this run's trades (paged, filtered by
    symbol and date), and the Parquet file beside the archived notebook."""
    from allocator.notebook.sidecar import sidecar_path

    n = count(len(result.trades))
    kept = sidecar_path("trades.parquet")
    if kept is None:  # not a run (JupyterLab): the list is result.trades
        return Markdown(f"The full list of {n} trades is `result.trades`.")
    stem = kept.name.removesuffix("_trades.parquet")
    return Markdown(
        f"The full list of {n} trades, paged and filterable by symbol and date: "
        f"[this run's trades](/runs/by-notebook/{stem}/trades) in the web app (`allocator "
        f"serve`), and `{kept.name}` beside the archived notebook."
    )


def exposure_note(result: BacktestResult) -> Markdown:
    """What the exposure chart shows, for the config actually run."""
    m, config = result.metrics, result.final_config
    idle = 1.0 - float(m.get("exposure") or 0.0)
    cash = float(result.daily["cash"].iloc[-1]) if len(result.daily) else None
    text = (
        f"On average {percent(m.get('exposure'))} of the value was invested and {percent(idle)} "
        f"was idle cash ({dollars(cash)} at the last close); the cash band of the allocation "
        f"chart shows it over time."
    )
    if config is not None and config.cash_deploy_rate == 0:
        text += (
            " With `cash_deploy_rate` 0 (the design document read literally, the `seed` preset) "
            "a BUY spends only a share of that day's deposit, so most of the capital stays idle."
        )
    elif config is not None:
        text += (
            f" With `cash_deploy_rate` {ratio(config.cash_deploy_rate)} each BUY also invests "
            f"{percent(config.cash_deploy_rate)} of the idle cash, and `sell_trigger` "
            f"`{config.sell_trigger}` decides when bearish sessions sell."
        )
    return Markdown(text)


def monthly_returns(result: BacktestResult) -> Table:
    """The strategy's return in each month (years down, months across) and in each year, as a
    heatmap in HTML (red losses, green gains) and a plain table in Markdown."""
    table = periods.monthly_table(returns(result)["strategy"])
    months = table.reindex(columns=range(1, 13))
    limit = float(months.abs().max().max() or 0.0)
    year_limit = float(table["year"].abs().max() or 0.0)
    rows, shades = [], []
    for year, row in table.iterrows():
        values = [row[m] for m in range(1, 13)]
        rows.append([str(year), *(percent(v) for v in values), percent(row["year"])])
        shades.append([None, *(heat(v, limit) for v in values), heat(row["year"], year_limit)])
    columns = ["year", *charts.MONTHS, "year's return"]
    notes = ["Time-weighted; a partial first or last month or year covers its sessions only."]
    return Table(columns, rows, title="Monthly returns", notes=notes, shades=shades)


def yearly_returns(result: BacktestResult) -> Table:
    """Each calendar year's return of the strategy beside the drawn benchmarks."""
    frame = _drawn(returns(result))
    years = pd.DataFrame({c: periods.calendar_returns(frame[c], "year") for c in frame.columns})
    limit = float(years.abs().max().max() or 0.0)
    rows = [[str(y), *(percent(v) for v in r)] for y, r in years.iterrows()]
    shades = [[None, *(heat(v, limit) for v in r)] for _, r in years.iterrows()]
    return Table(
        ["year", *years.columns], rows, title="Yearly returns against the benchmarks", shades=shades
    )


# --- figures ------------------------------------------------------------------------------------


def returns_figure(result: BacktestResult):
    """Cumulative time-weighted return of the strategy and its benchmarks, drawdowns under it."""
    frame = _drawn(returns(result))
    drawdowns = frame.drop(columns=["equal weight"], errors="ignore").apply(metrics.drawdown_series)
    return charts.returns_and_drawdown((1.0 + frame).cumprod(), drawdowns)


def value_figure(result: BacktestResult):
    daily = result.daily.set_index("date")
    return charts.portfolio_value(_drawn(result.curves()), daily["deposit"])


def rolling_figure(result: BacktestResult):
    frame = _drawn(returns(result)).drop(columns=["equal weight"], errors="ignore")
    sharpe = frame.apply(periods.rolling_sharpe)
    return charts.rolling_ratios(sharpe, frame.apply(periods.rolling_volatility))


def allocation_figure(result: BacktestResult):
    return charts.allocation(result.weights)


def regime_figure(result: BacktestResult):
    """Regime (with the final config's thresholds) and risk, daily; None beyond
    :data:`~allocator.notebook.performance_plots.WEEKLY_ABOVE` sessions, where a daily score
    over years is noise (:func:`regime_by_year` says it in numbers)."""
    config, daily = result.final_config, result.regime_risk()
    if len(daily) > charts.WEEKLY_ABOVE or config is None:
        return None
    bullish, bearish = config.regime_bullish_threshold, config.regime_bearish_threshold
    fig = plots.regime_and_risk(daily, bullish, bearish)
    charts._scaled(fig, len(daily))
    return fig


def regime_by_year(result: BacktestResult) -> Table:
    """Per year: the share of sessions the regime was bearish, neutral or bullish (the final
    config's thresholds), the mean risk, and the sessions of each action."""
    config, signals = result.final_config, result.signals
    if config is None or signals.empty:
        return Table(["year"], [], empty="No signals.")
    years = pd.to_datetime(signals["date"]).dt.year
    bull, bear = config.regime_bullish_threshold, config.regime_bearish_threshold
    label = pd.cut(
        signals["regime"], [-2.0, bear, bull, 2.0], labels=["bearish", "neutral", "bullish"]
    )
    shares = pd.crosstab(years, label, normalize="index").reindex(
        columns=["bearish", "neutral", "bullish"], fill_value=0.0
    )
    actions = pd.crosstab(years, signals["action"]).reindex(
        columns=["BUY", "HOLD", "SELL"], fill_value=0
    )
    risk = signals.groupby(years)["risk"].mean()
    rows = [
        [str(y), *(percent(shares.loc[y, c], 0) for c in shares.columns), decimal(risk[y], 0)]
        + [count(actions.loc[y, a]) for a in actions.columns]
        for y in shares.index
    ]
    columns = ["year", "bearish", "neutral", "bullish", "mean risk", "BUY", "HOLD", "SELL"]
    notes = [
        f"Share of sessions by regime (bearish below {decimal(bear, 2, signed=True)}, bullish "
        f"above {decimal(bull, 2, signed=True)}), mean risk (0..100), and sessions by action."
    ]
    return Table(columns, rows, title="Regime, risk and actions by year", notes=notes)
