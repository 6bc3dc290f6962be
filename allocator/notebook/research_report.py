"""The research reports' blocks: the sweep, the strategy study and the walk-forward study.

Each report starts with its answer (``*_summary``: a :class:`~.tables.Cards` block), then
formatted tables: a study's recorded plan (:func:`plan_table`, its nested record flattened),
its target (:func:`target_table`), runs against each other (:func:`runs_table`), a sweep's
best rows (:func:`sweep_rows`). The backtests inside them get the backtest's tearsheet
(:mod:`.tearsheet`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import pandas as pd

from allocator.notebook.formats import (
    METRIC_FORMATS,
    MISSING,
    count,
    date,
    decimal,
    percent,
    ratio,
)
from allocator.notebook.tables import Card, Cards, Table

#: The metrics of a table of runs (rows), in its order.
RUN_METRICS = ("twr", "cagr", "sharpe", "max_drawdown", "exposure", "final_value")


def _plain(value: object) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return decimal(value, 4).rstrip("0").rstrip(".")
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value) or MISSING
    return str(value)


def plan_table(
    record: Mapping, sha256: str, title: str = "The plan, recorded before any figure"
) -> Table:
    """A recorded plan as ``choice | value`` rows (nested entries as ``a.b``), its SHA-256 last."""
    rows: list[list[str]] = []

    def walk(prefix: str, value) -> None:
        if isinstance(value, Mapping) and value:
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            rows.append([prefix, _plain(value)])

    walk("", record)
    rows.append(["SHA-256 of the record", sha256])
    return Table(["choice", "value"], rows, align="ll", title=title)


def _unit(condition: str) -> Callable[[object], str]:
    text = condition.lower()
    if "sharpe" in text:
        return ratio
    if "gain" in text:
        return lambda v: decimal(v, 3, signed=True)
    return percent


def target_table(target: pd.DataFrame, title: str = "The target") -> Table:
    """A target check (condition, value, bound ``"op number"``, met[, decides]) in units."""
    rows = []
    for r in target.itertuples():
        show = _unit(r.condition)
        op, _, bound = str(r.bound).partition(" ")
        try:
            needs = f"{op} {show(float(bound))}"
        except ValueError:
            needs = str(r.bound)
        role = "" if not hasattr(r, "decides") else ("decides" if r.decides else "information")
        rows.append(
            [r.condition, show(r.value), needs, "yes" if r.met else "no"] + ([role] if role else [])
        )
    columns = ["condition", "value", "needs", "met"] + (
        ["role"] if "decides" in target.columns else []
    )
    empty = target["value"].isna().any()
    notes = ["— : nothing to measure (no accepted change a year before the end)."] if empty else []
    return Table(columns, rows, align="lrrl" + "l" * (len(columns) - 4), title=title, notes=notes)


def runs_table(table: pd.DataFrame, title: str | None = None, notes=()) -> Table:
    """Runs (rows of ``table``, named by its index) against each other, every metric in its
    unit; a ``config_changes`` column is shown as a count."""
    shown = [k for k in (*RUN_METRICS, "matched_exposure") if k in table.columns]
    rows = []
    for name, row in table.iterrows():
        cells = [METRIC_FORMATS[k][1](row[k]) for k in shown]
        if "config_changes" in table.columns:
            cells.append(count(row["config_changes"]))
        rows.append([str(name), *cells])
    columns = ["run", *(METRIC_FORMATS[k][0] for k in shown)]
    columns += ["config changes"] if "config_changes" in table.columns else []
    return Table(columns, rows, title=title, notes=notes)


# --- the sweep ----------------------------------------------------------------------------------


def grid_columns(table: pd.DataFrame) -> list[str]:
    """The grid's parameters: the columns before the first metric (``twr``)."""
    columns = list(table.columns)
    return columns[: columns.index("twr")] if "twr" in columns else columns[:2]


SWEEP_METRICS = (
    ("twr", "TWR", percent),
    ("sharpe", "Sharpe", ratio),
    ("max_drawdown", "max drawdown", percent),
    ("exposure", "exposure", percent),
    ("spy_mix_sharpe", "mix Sharpe", ratio),
    ("spy_mix_max_drawdown", "mix drawdown", percent),
    ("beats_spy_mix", "beats mix", lambda v: "yes" if v else "no"),
)


def sweep_rows(
    table: pd.DataFrame, metric: str = "sharpe", n: int = 10, title: str | None = None
) -> Table:
    """The ``n`` grid points with the highest ``metric``: their parameters and metrics."""
    best = table.sort_values(metric, ascending=False).head(n)
    params = grid_columns(table)
    shown = [m for m in SWEEP_METRICS if m[0] in table.columns]
    rows = [
        [*(_plain(r[p]) for p in params), *(show(r[k]) for k, _, show in shown)]
        for _, r in best.iterrows()
    ]
    label = METRIC_FORMATS[metric][0] if metric in METRIC_FORMATS else metric
    heading = title or f"The best {len(best)} of {count(len(table))} configs by {label}"
    columns = [*params, *(h for _, h, _ in shown)]
    notes = ["Mix: the SPY + cash mix at that config's own exposure (Sharpe, max drawdown)."]
    align = "l" * len(params) + "r" * (len(shown) - 1) + "l"
    return Table(columns, rows, align=align, title=heading, notes=notes)


def sweep_summary(result) -> Cards:
    """Configs run, the period, the best config by Sharpe and how many beat the SPY + cash mix."""
    table = result.table
    best = table.sort_values("sharpe", ascending=False).iloc[0] if len(table) else None
    params = grid_columns(table)
    choice = ", ".join(f"{p} {_plain(best[p])}" for p in params) if best is not None else MISSING
    beats = int(table["beats_spy_mix"].sum()) if "beats_spy_mix" in table.columns else None
    cards = [
        Card("period", f"{date(result.start)} .. {date(result.end)}", f"base preset {result.base}"),
        Card(
            "configs", count(len(table)), f"{result.engine} engine, {decimal(result.seconds, 1)} s"
        ),
        Card("best Sharpe", ratio(best["sharpe"]) if best is not None else MISSING, choice),
        Card(
            "beat the SPY + cash mix",
            count(beats),
            "on Sharpe and max drawdown at their own exposure",
        ),
    ]
    return Cards(cards)


def heat_format(metric: str) -> Callable[[object], str]:
    """How a heatmap of ``metric`` writes its cells (percent for returns, drawdown, exposure)."""
    if metric in ("sharpe", "sortino", "calmar"):
        return ratio
    return lambda v: percent(v, 1)


def short_reason(text: str) -> str:
    """A verdict sentence without its figures' trailing detail, for a card."""
    return re.split(r":\s", text, maxsplit=1)[0]


# --- the walk-forward and the strategy study ----------------------------------------------------


def missed_conditions(target: pd.DataFrame) -> str:
    """The deciding conditions a target check missed, each with its figure and its bound."""
    decides = target["decides"] if "decides" in target.columns else pd.Series(True, target.index)
    missed = target[decides & ~target["met"].astype(bool)]
    parts = []
    for r in missed.itertuples():
        show = _unit(r.condition)
        op, _, bound = str(r.bound).partition(" ")
        value = show(r.value) if r.value == r.value else "— (no accepted change measured)"
        parts.append(f"{r.condition} {value} (needs {op} {show(float(bound))})")
    return "; ".join(parts)


def walkforward_summary(study) -> Cards:
    """The verdict against the plan's target, the tuned run against the static default, how
    many changes were accepted and how they did afterwards; the runs side by side."""
    from allocator.jobs.walkforward import STATIC, TUNED

    table, p, target = study.table, study.persistence(), study.target()
    tuned, static = table.loc[TUNED], table.loc[STATIC]
    met = study.target_met
    verdict = (
        f"Target met by the {study.design} design: every condition of the plan holds."
        if met
        else f"Target missed by the {study.design} design: {missed_conditions(target)}."
    )
    cards = [
        Card("target", "met" if met else "missed", f"design {study.design}"),
        Card("Sharpe, tuned", ratio(tuned["sharpe"]), f"static default {ratio(static['sharpe'])}"),
        Card(
            "max drawdown, tuned",
            percent(tuned["max_drawdown"]),
            f"static default {percent(static['max_drawdown'])}",
        ),
        Card("changes accepted", count(p["changes"]), f"{count(p['measured'])} measured after"),
        Card(
            "mean J gain after",
            decimal(p["mean_gain_after"], 3, signed=True),
            f"{percent(p['share_positive_after'], 0)} still positive"
            if p["measured"]
            else "no change measured",
        ),
    ]
    return Cards(cards, [verdict], tone="good" if met else "bad", extra=[runs_table(table)])


def persistence_table(study) -> Table:
    """How the accepted changes did: counts, mean ``J`` gains seen and after, their correlation."""
    from allocator.research.walkforward import AFTER_MONTHS

    p = study.persistence()
    signed = lambda v: decimal(v, 3, signed=True)  # noqa: E731 - one format, named for the rows
    rows = [
        ["changes accepted", count(p["changes"])],
        [f"measured over the {AFTER_MONTHS} months after", count(p["measured"])],
        ["mean J gain in the window the tuner saw", signed(p["mean_gain_seen"])],
        [f"mean J gain over the {AFTER_MONTHS} months after", signed(p["mean_gain_after"])],
        ["share still positive after", percent(p["share_positive_after"], 0)],
        ["rank correlation, seen vs after", signed(p["rank_correlation"])],
    ]
    notes = ["— : no accepted change (or none measured: accepted less than a year before the end)."]
    return Table(
        ["figure", "value"], rows, align="lr", title="Do the accepted changes persist?", notes=notes
    )


def changes_table(study) -> Table | None:
    """Every accepted change with its ``J`` gain seen and after (None when none was accepted)."""
    table = study.changes()
    if table is None or table.empty:
        return None
    signed = lambda v: decimal(v, 3, signed=True)  # noqa: E731
    rows = [
        [date(r.date), str(r.change), signed(r.gain_seen), signed(r.gain_after)]
        for r in table.itertuples()
    ]
    notes = ["— gain after: the 12 months after the change pass the end of the period."]
    return Table(
        ["date", "change", "J gain seen", "J gain after"],
        rows,
        align="llrr",
        title="The accepted changes",
        notes=notes,
    )


def study_summary(in_sample, out_of_sample) -> Cards:
    """The out-of-sample verdict first, the chosen config, the choice against the mixes."""
    from allocator.backtest.benchmarks import SPY_MIX
    from allocator.jobs.study import CHOSEN

    table = out_of_sample.table
    chosen = table.loc[CHOSEN]
    mix = table.loc[SPY_MIX] if SPY_MIX in table.index else {}
    config = ", ".join(f"{k} {_plain(v)}" for k, v in in_sample.choice.overrides.items())
    cards = [
        Card("target", "met" if out_of_sample.target_met else "missed", "out of sample"),
        Card(
            "eligible in sample",
            count(in_sample.choice.eligible),
            f"of {count(in_sample.choice.candidates)} configs",
        ),
        Card("Sharpe", ratio(chosen["sharpe"]), f"SPY + cash {ratio(mix.get('sharpe'))}"),
        Card(
            "max drawdown",
            percent(chosen["max_drawdown"]),
            f"SPY + cash {percent(mix.get('max_drawdown'))}",
        ),
        Card("exposure", percent(chosen["exposure"])),
    ]
    tone = "good" if out_of_sample.target_met else "bad"
    chosen_text = f"Chosen in sample: {config or 'the base preset'}."
    return Cards(
        cards,
        [out_of_sample.verdict, chosen_text, in_sample.versus_mix],
        tone=tone,
        extra=[runs_table(table, "Out of sample")],
    )
