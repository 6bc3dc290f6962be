"""Reports a reviewer reads at a glance: every number formatted, the answer first, plain Markdown.

The first tests check the formatting layer and the display objects on their own. The others run
every job kind's real notebook through ``allocator run`` on the synthetic market (one SQLite
database, one archive) and read what a reviewer would: each archived report, HTML and Markdown,
must show no raw pandas output (``NaN``, ``e+0``, ``dtype:``, ``None`` cells, a Series footer),
no warning or log record, and the Markdown reports no HTML table and no ``<style>``
(:mod:`tests.reportcheck`).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from allocator.cli.commands import main
from allocator.notebook import formats, page, render
from allocator.notebook.archive import reserve_run_paths
from allocator.notebook.tables import Card, Cards, Link, Table, frame_table, heat
from tests.reportcheck import report_problems, reports_of, text_problems

# --- the formatting layer -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (formats.cents(8561.554), "$8,561.55"),
        (formats.cents(-12.5), "-$12.50"),
        (formats.decimal(1234.5), "1,234.50"),
        (formats.decimal(0.0312, 3, signed=True), "+0.031"),
        (formats.percent(0.0618, signed=True), "+6.2 %"),
        (formats.percent(-0.00001), "0.0 %"),
        (formats.shares(13.26061), "13.2606"),
        (formats.date(dt.datetime(2024, 12, 31, 9, 30)), "2024-12-31"),
        (formats.date(pd.Timestamp("2020-03-23")), "2020-03-23"),
        (formats.date("2005-01-03T00:00:00"), "2005-01-03"),
        (formats.date(pd.NaT), "—"),
        (formats.days(1), "1 day"),
        (formats.days(154.0), "154 days"),
        (formats.days(107, "session"), "107 sessions"),
        (formats.multiple(3.3419), "3.34×"),
        (formats.unavailable("no sell yet"), "— (no sell yet)"),
        (formats.dollars(8.561554e03), "$8,562"),
    ],
)
def test_each_kind_of_number_has_one_format(text, expected):
    assert text == expected


def test_annualised_figures_need_about_three_months_of_sessions():
    assert formats.metric("sharpe", -6.32, 4) == "— (needs 63 sessions, has 4)"
    assert formats.metric("sharpe", -6.32, 4, reason=False) == "—"
    assert formats.metric("sharpe", 0.6012, 63) == "0.60"
    assert formats.metric("twr", 0.012, 4) == "1.2 %", "a cumulative return is no annual figure"
    assert formats.metric("max_drawdown_peak", dt.date(2020, 2, 19)) == "2020-02-19"
    headline = formats.metrics_headline({"twr": 0.01, "sharpe": -6.3, "n_sessions": 4})
    assert "Sharpe — (needs 63 sessions, has 4)" in headline and "-6.3" not in headline


# --- the display objects ------------------------------------------------------------------------


def test_a_table_is_plain_markdown_and_a_plain_html_table():
    table = Table(
        ["symbol", "amount"],
        [["SPY", "$1,019,132.85"], [Link("QQQ | x", "../a b.html"), "—"]],
        title="Trades",
        notes=["— : pending."],
        shades=[[None, "g3"], [None, None]],
    )
    markdown = table._repr_markdown_()
    assert markdown.splitlines()[:4] == [
        "**Trades**",
        "",
        "| symbol | amount |",
        "| :--- | ---: |",
    ]
    assert "| [QQQ \\| x](../a%20b.html) | — |" in markdown and "*— : pending.*" in markdown
    assert "<" not in markdown
    html = table._repr_html_()
    assert '<table class="report">' in html and '<td class="g3">$1,019,132.85</td>' in html
    assert '<a href="../a b.html">QQQ | x</a>' in html and "<th></th>" not in html
    assert Table(["a"], [], empty="No trades.")._repr_markdown_().strip() == "No trades."
    assert (heat(0.05, 0.05), heat(-0.01, 0.05), heat(0.0, 0.05), heat(None, 1)) == (
        "g5",
        "r1",
        None,
        None,
    )


def test_a_frame_becomes_a_table_without_its_index_or_raw_numbers():
    frame = pd.DataFrame(
        {"quantity": [13.2606, math.nan], "amount": [8561.554, None], "ok": [True, False]},
        index=pd.Index([751, 752], name="trade"),
    )
    table = frame_table(frame, {"amount": formats.cents}, labels={"quantity": "shares"})
    assert table.columns == ["shares", "amount", "ok"]
    assert [list(r) for r in table.rows] == [["13.26", "$8,561.55", "yes"], ["—", "—", "no"]]
    assert not text_problems(table._repr_html_(), markdown=False)


def test_the_summary_block_reads_the_same_in_html_and_markdown():
    cards = Cards([Card("action", "BUY", "config #3"), Card("allocations", "$300.00")], ["Why."])
    assert cards._repr_markdown_() == (
        "- **action:** BUY (config #3)\n- **allocations:** $300.00\n\nWhy.\n"
    )
    assert '<div class="card-value">BUY</div>' in cards._repr_html_()


def test_the_title_carries_the_period_and_the_header_is_no_table():
    header = render.RunHeader(
        "backtest",
        dt.date(2026, 12, 4),
        "succeeded",
        dt.datetime(2026, 12, 4, 13, 50, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 4, 13, 50, 9, tzinfo=dt.UTC),
        "944137c76c7f74505571d58a35d1f9c69ca9f5bd-dirty",
        {"start": "2005-01-03", "end": None},
        period=("2005-01-03", "2024-12-31"),
    )
    top = page.header_markdown(header, "../../runs/x.ipynb")
    assert top.startswith("# backtest 2005-01-03..2024-12-31\n")
    assert "run on 2026-12-04" in top and "took 9.0 s" in top and "<table" not in top
    assert "commit 944137c76c with local changes" in top and "end <code>—</code>" in top
    glue = nbformat.v4.new_output(
        "display_data",
        data={
            "application/scrapbook.scrap.json+json": {
                "name": "period",
                "data": ["2005-01-03", "2024-12-31"],
                "encoder": "json",
                "version": 1,
            }
        },
    )
    cell = nbformat.v4.new_code_cell("sb.glue(...)")
    cell.outputs = [glue]
    assert page.glued_period(nbformat.v4.new_notebook(cells=[cell])) == (
        "2005-01-03",
        "2024-12-31",
    )


def test_a_rendered_table_is_markdown_in_the_md_report_and_html_in_the_page(tmp_path):
    table = Table(["run", "Sharpe"], [["strategy", "0.60"]])
    cell = nbformat.v4.new_code_cell("tearsheet.summary(result)", execution_count=1)
    cell.outputs = [
        nbformat.v4.new_output(
            "execute_result",
            data={
                "text/plain": repr(table),
                "text/html": table._repr_html_(),
                "text/markdown": table._repr_markdown_(),
            },
            execution_count=1,
        )
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Probe"), cell])
    moment = dt.datetime(2026, 11, 25, 21, tzinfo=dt.UTC)
    paths = reserve_run_paths(
        tmp_path / "runs", tmp_path / "reports", "signal", dt.date(2026, 11, 25), moment
    )
    nbformat.write(nb, paths.notebook)
    header = render.RunHeader("signal", dt.date(2026, 11, 25), "succeeded", moment)
    render.render_run(paths.notebook, paths, header)
    markdown = paths.markdown.read_text()
    assert "| strategy | 0.60 |" in markdown and "<table" not in markdown
    assert '<table class="report">' in paths.html.read_text()
    assert not report_problems(tmp_path / "reports")


def test_the_checks_catch_raw_pandas_output():
    raw = pd.DataFrame({"amount": [8561.554e3, math.nan], "pnl": [None, 1.0]})
    html = raw.to_html()
    problems = text_problems(html + "<pre>Name: count, dtype: int64</pre>", markdown=False)
    kinds = {p.split(":")[0] for p in problems}
    assert {"NaN", "a pandas dtype line", "a pandas Series footer"} <= kinds
    assert text_problems("<td>None</td>", markdown=False)
    assert text_problems("| 8.561554e+03 |", markdown=True)
    assert text_problems(f"<style scoped>{html}", markdown=True)
    assert text_problems('<div class="output_stderr"><pre>UserWarning: x</pre></div>', False)
    assert not text_problems("| TWR | 175.2 % |", markdown=True)


# --- every job kind, through its real notebook --------------------------------------------------

SESSION = dt.date(2026, 11, 25)
#: Each job's command line; the study's periods are where the synthetic market lets its objective
#: choose (a deep fall in sample), and its grid is small.
RUNS = {
    "tune": ["--date", "2026-11-02"],  # no trade yet: a month without trades
    "signal": ["--date", str(SESSION)],
    "execute": ["--date", str(SESSION)],
    "fetch": ["--date", str(SESSION), "-p", "source", "synthetic"],
    "backtest": ["-p", "start", "2025-06-02", "-p", "end", "2026-11-24"],
    "sweep": ["-p", "start", "2025-06-02", "-p", "end", "2025-12-31", "-p", "workers", "0"]
    + ["-p", "grid", '{"cash_deploy_rate": [0, 0.1], "sell_trigger": ["every_session"]}'],
    "walkforward": ["-p", "start", "2024-01-02", "-p", "end", "2024-06-28"]
    + ["-p", "data_source", "synthetic", "-p", "design", "legacy"],
    "study": ["-p", "data_source", "synthetic", "-p", "workers", "0"]
    + ["-p", "in_start", "2016-02-01", "-p", "in_end", "2018-12-31"]
    + ["-p", "out_start", "2019-01-02", "-p", "out_end", "2019-12-31"]
    + ["-p", "grid", '{"cash_deploy_rate": [0.1, 0.5], "sell_trigger": ["every_session"]}'],
    "review": ["-p", "start", "2026-11-01", "-p", "end", "2026-11-30"],
}


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """One database and one archive holding a run of every job kind (and a short backtest)."""
    root = tmp_path_factory.mktemp("reports")
    env = {
        "DATABASE_URL": f"sqlite:///{root / 'db.sqlite3'}",
        "ALLOCATOR_RUNS_DIR": str(root / "runs"),
        "ALLOCATOR_REPORTS_DIR": str(root / "reports"),
        "ALLOCATOR_DOTENV": "off",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        assert main(["db", "upgrade"]) == 0 and main(["config", "seed"]) == 0
        history = ["--source", "synthetic", "--start", "2024-01-02", "--end", "2026-11-24"]
        assert main(["backfill", *history]) == 0
        for job, args in RUNS.items():
            assert main(["run", job, *args]) == 0, job
        # four sessions: too short for a Sharpe ratio
        assert (
            main(["run", "backtest", "-p", "start", "2026-11-17", "-p", "end", "2026-11-20"]) == 0
        )
    return root


@pytest.mark.notebook
def test_no_archived_report_shows_raw_output_or_warnings(archive):
    reports = archive / "reports"
    for job in RUNS:
        assert reports_of(reports, job), f"no {job} report"
    assert report_problems(reports) == []
    markdown = sorted(reports.rglob("*.md"))
    assert len(markdown) >= len(RUNS) + 2, "a Markdown report per run, and the tuning report"
    assert all("<table" not in p.read_text() and "<style" not in p.read_text() for p in markdown)


@pytest.mark.notebook
def test_every_report_puts_its_answer_first_and_its_method_last(archive):
    for job in RUNS:
        text = reports_of(archive / "reports", job)[-1].read_text()
        summary = text.index('<div class="summary')
        assert summary < text.index(">Method<"), job
        before = text[:summary]
        assert "<img" not in before and '<table class="report"' not in before, job


@pytest.mark.notebook
def test_titles_name_the_period_and_figures_fill_the_width(archive):
    reports = archive / "reports"
    titles = {
        "backtest": "backtest 2025-06-02..2026-11-24",
        "sweep": "sweep 2025-06-02..2025-12-31",
        "walkforward": "walkforward 2024-01-02..2024-06-28",
        "study": "study 2016-02-01..2019-12-31",
        "review": "review 2026-11-01..2026-11-30",
        "signal": "signal 2026-11-25",
    }
    for job, title in titles.items():
        pages = [p.read_text() for p in reports_of(reports, job)]
        assert any("<h1" in t and f"{title}<" in t for t in pages), job
    backtest = [p for p in reports_of(reports, "backtest") if "2025-06-02" in p.read_text()][0]
    # the full trade list: the web app's page of this run's trades
    assert f'href="/runs/by-notebook/{backtest.stem}/trades"' in backtest.read_text()
    widths = [int(w) for w in re.findall(r'<img [^>]*width="?(\d+)', backtest.read_text())]
    assert len(widths) >= 4 and min(widths) >= 1000
    # the seed preset's sentence only for a config that deploys no idle cash
    assert (
        "cash_deploy_rate</code> 0 (the design document read literally" not in backtest.read_text()
    )


@pytest.mark.notebook
def test_a_short_backtest_shows_no_annualised_figure_and_a_month_without_trades_no_chart(archive):
    reports = archive / "reports"
    short = [
        p for p in reports_of(reports, "backtest") if "2026-11-17..2026-11-20" in p.read_text()
    ]
    text = short[0].read_text()
    assert "needs 63 sessions, has 4" in text and "not compared with the SPY + cash mix" in text
    tune = reports_of(reports, "tune")[-1].read_text()
    assert "No change: no trades in the months looked back on" in tune and "<img" not in tune
    assert "Port 8787" not in tune and "tuning_2026-11.html" in tune
    index = (reports / "index.html").read_text()
    assert 'href="strategy-tuning/tuning_2026-11.html"' in index
    review = reports_of(reports, "review")[-1].read_text()
    assert ">signal 2026-11-25</a>" in review and "Skipped runs (no notebook)<" not in review
    assert ">Failures<" not in review, "no failure: no empty section"
