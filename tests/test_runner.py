"""The notebook runner: real papermill runs on SQLite and PostgreSQL, and the checks before them.

Job notebooks are stood in for by ``tests/notebooks/probe.ipynb`` (reads settings, writes bars
idempotently, glues scraps, draws) and ``failing.ipynb`` (raises), copied under job names into a
temporary notebooks folder.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
import scrapbook as sb
import sqlalchemy as sa

from allocator.cli.commands import main
from allocator.exceptions import JobError, SettingsError
from allocator.notebook import runner
from allocator.notebook.archive import parse_run_name, reserve_run_paths, utc_stamp
from allocator.notebook.jobspec import JOBS, get_job, skip_reason
from allocator.notebook.parameters import declared_parameters, source_options
from allocator.shell.calendar import EASTERN
from allocator.shell.persistence.jobruns import list_runs
from allocator.shell.persistence.schema import job_runs, price_history

TEST_NOTEBOOKS = Path(__file__).parent / "notebooks"
SESSION = "2026-11-25"  # a Wednesday session
THANKSGIVING = dt.datetime(2026, 11, 26, 16, 35, tzinfo=EASTERN)  # a weekday without a session
STAMPED = re.compile(r"^(fetch|signal|tune)_2026-11-25_\d{8}T\d{6}Z(-\d+)?\.ipynb$")


@pytest.fixture
def job_env(tmp_path, monkeypatch, database_url, engine):
    """Environment of a job run: database, archive folders, and test notebooks as jobs."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(TEST_NOTEBOOKS / "probe.ipynb", notebooks / "fetch.ipynb")
    shutil.copy(TEST_NOTEBOOKS / "probe.ipynb", notebooks / "tune.ipynb")
    shutil.copy(TEST_NOTEBOOKS / "failing.ipynb", notebooks / "signal.ipynb")
    env = SimpleNamespace(
        engine=engine,
        notebooks=notebooks,
        runs=tmp_path / "runs",
        reports=tmp_path / "reports",
    )
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ALLOCATOR_RUNS_DIR", str(env.runs))
    monkeypatch.setenv("ALLOCATOR_REPORTS_DIR", str(env.reports))
    monkeypatch.setenv("ALLOCATOR_NOTEBOOKS_DIR", str(notebooks))
    monkeypatch.delenv("ALLOCATOR_CELL_TIMEOUT", raising=False)
    monkeypatch.delenv("ALLOCATOR_KERNEL", raising=False)
    return env


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _rows(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(job_runs).order_by(job_runs.c.id))]


# --- real notebook runs -------------------------------------------------------------------------


@pytest.mark.notebook
def test_run_archives_renders_records_and_rerun_keeps_both(job_env):
    first = runner.run_job("fetch", date=SESSION, parameters={"symbols": 2})
    second = runner.run_job("fetch", date=SESSION, parameters={"symbols": 2})

    assert (first.status, second.status) == ("succeeded", "succeeded")
    assert first.paths.notebook != second.paths.notebook
    archived = _files(job_env.runs)
    assert archived == sorted([first.paths.notebook, second.paths.notebook])
    for result in (first, second):
        path = result.paths.notebook
        assert path.parent == job_env.runs / "2026" / "11" / "25"
        assert STAMPED.match(path.name), path.name
        assert not path.stat().st_mode & stat.S_IWUSR, "archived notebooks are read-only"
        assert result.paths.html.parent == job_env.reports / "2026" / "11" / "25"
        assert result.paths.html.stat().st_size < 80_000, "lean HTML, no 300 KB of lab CSS"
        assert "show code" in result.paths.html.read_text()
        assert list(result.paths.figures_dir.glob("*.png")), "Markdown figures are PNG files"
        assert f"{result.paths.figures_dir.name}/" in result.paths.markdown.read_text()

    # The archived notebook is read back with scrapbook: parameters and scraps.
    nb1, nb2 = (sb.read_notebook(str(r.paths.notebook)) for r in (first, second))
    assert nb1.parameters == {"trade_date": SESSION, "symbols": 2}
    assert nb1.scraps["trade_date"].data == SESSION
    assert (nb1.scraps["inserted"].data, nb1.scraps["stored"].data) == (2, 2)
    assert (nb2.scraps["inserted"].data, nb2.scraps["stored"].data) == (0, 2), "idempotent"

    with job_env.engine.connect() as conn:
        bars = conn.execute(sa.select(sa.func.count()).select_from(price_history)).scalar_one()
    assert bars == 2, "the re-run wrote nothing twice"

    rows = _rows(job_env.engine)
    assert [r["status"] for r in rows] == ["succeeded", "succeeded"]
    for row, result in zip(rows, (first, second), strict=True):
        assert row["job"] == "fetch" and row["trade_date"] == dt.date(2026, 11, 25)
        assert row["notebook_path"] == str(result.paths.notebook)
        assert row["html_path"] == str(result.paths.html)
        assert row["md_path"] == str(result.paths.markdown)
        assert row["parameters"] == {"trade_date": SESSION, "symbols": 2}
        assert row["error"] is None and row["finished_at"] >= row["started_at"]
        assert row["git_commit"] and re.match(r"^[0-9a-f]{40}(-dirty)?$", row["git_commit"])

    index = (job_env.reports / "index.html").read_text()
    assert index.count('class="status-succeeded"') == 2
    assert str(job_env.reports) not in index, "links are relative"
    assert 'href="2026/11/25/' in index and 'href="../runs/2026/11/25/' in index


@pytest.mark.notebook
def test_failing_job_is_archived_rendered_recorded_and_exits_1(job_env, capfd):
    code = main(["run", "signal", "--date", SESSION])

    out, err = capfd.readouterr()
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("allocator: signal 2026-11-25 failed")
    assert "RuntimeError: deliberate failure on 2026-11-25" in lines[0]

    (row,) = _rows(job_env.engine)
    assert row["status"] == "failed"
    assert row["error"] == "RuntimeError: deliberate failure on 2026-11-25 (cell In [4])"
    notebook = Path(row["notebook_path"])
    assert notebook.exists() and STAMPED.match(notebook.name)
    nb = sb.read_notebook(str(notebook))
    assert nb.scraps["before_failure"].data == 1
    assert "after_failure" not in nb.scraps
    assert nb.metadata["papermill"]["exception"] is True

    for report in (Path(row["html_path"]), Path(row["md_path"])):
        text = report.read_text()
        banner = text.index("This run FAILED")
        assert "RuntimeError: deliberate failure on 2026-11-25" in text[banner : banner + 300]
        assert banner < text.index("Failing job (tests only)"), "the error is on top"
        assert "Traceback" in text
    assert 'href="#papermill-error-cell"' in Path(row["html_path"]).read_text()
    assert "status-failed" in (job_env.reports / "index.html").read_text()


@pytest.mark.notebook
def test_hung_cell_is_stopped_by_the_cell_timeout(job_env, monkeypatch):
    monkeypatch.setenv("ALLOCATOR_CELL_TIMEOUT", "1")

    result = runner.run_job("fetch", date=SESSION, parameters={"sleep_seconds": 60})

    assert result.status == "failed"
    assert result.error.startswith("CellTimeoutError: a cell ran longer than 1 s")
    assert result.paths.notebook.stat().st_size > 0, "the partial notebook is archived"
    html = result.paths.html.read_text()
    assert "This run FAILED" in html and "CellTimeoutError" in html
    (row,) = _rows(job_env.engine)
    assert row["status"] == "failed" and row["error"].startswith("CellTimeoutError")


# --- refused before any kernel starts -----------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "nosuchjob"], "unknown job 'nosuchjob': choose one of fetch, signal"),
        (["run", "fetch", "--date", "2026-13-01"], "--date '2026-13-01' is not a date"),
        (["run", "fetch", "--date", "2026-11-26"], "2026-11-26 (Thursday) is not an NYSE session"),
        (["run", "fetch", "--date", "2026-11-28"], "is not an NYSE session"),
        (
            ["run", "fetch", "--date", SESSION, "-p", "bogus", "1"],
            "unknown parameter 'bogus' for job fetch: its notebook declares label, "
            "sleep_seconds, symbols",
        ),
        (["run", "fetch", "-p", "trade_date", SESSION], "use --date"),
        (["run", "fetch", "-p", "api_key", "abc"], "looks like a secret"),
        (["run", "fetch", "-p", "label", "postgresql://u:pw@h/db"], "contains a password"),
        (["run", "fetch", "-p", "symbols", "1", "-p", "symbols", "2"], "given twice"),
        (["run", "tune", "--date", SESSION, "-p", "force", "yes"], "must be True or False"),
        (["run", "signal", "--source", "csv"], "--source: job signal reads no market data source"),
        (["run", "signal", "--csv-dir", "x"], "--csv-dir: job signal reads no CSV folder"),
    ],
)
def test_bad_arguments_fail_fast_without_a_kernel(job_env, monkeypatch, capfd, argv, message):
    def no_kernel(*args, **kwargs):
        raise AssertionError("a kernel was started")

    monkeypatch.setattr(runner, "execute_notebook", no_kernel)

    code = main(argv)

    err = capfd.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert _files(job_env.runs) == [] and _files(job_env.reports) == []
    assert _rows(job_env.engine) == []


def test_source_and_csv_dir_set_the_notebooks_own_parameters(tmp_path):
    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    fetch = declared_parameters(notebooks / "fetch.ipynb")
    backtest = declared_parameters(notebooks / "backtest.ipynb")

    given = source_options(
        get_job("fetch"), fetch, {"symbols": "SPY"}, source="csv", csv_dir=str(tmp_path)
    )
    assert given == {"symbols": "SPY", "source": "csv", "csv_dir": str(tmp_path.resolve())}
    replay = source_options(get_job("backtest"), backtest, {}, source="synthetic")
    assert replay == {"data_source": "synthetic"}
    with pytest.raises(JobError, match="--source and -p source are both given"):
        source_options(get_job("fetch"), fetch, {"source": "tiingo"}, source="csv")


def test_missing_kernel_says_make_install(job_env, monkeypatch, capfd):
    monkeypatch.setenv("ALLOCATOR_KERNEL", "no-such-kernel-xyz")

    code = main(["run", "fetch", "--date", SESSION])

    err = capfd.readouterr().err
    assert code == 2
    assert "'no-such-kernel-xyz' is not installed: run `make install`" in err
    assert _files(job_env.runs) == [] and _rows(job_env.engine) == []


# --- skipped runs -------------------------------------------------------------------------------


def test_default_date_without_a_session_records_a_skipped_run(job_env):
    result = runner.run_job("fetch", now=THANKSGIVING)

    assert result.status == "skipped" and result.ok
    assert result.trade_date == dt.date(2026, 11, 26)
    assert result.error.startswith("market closed: 2026-11-26 (Thursday)")
    assert _files(job_env.runs) == []
    (row,) = _rows(job_env.engine)
    assert (row["job"], row["status"], row["trade_date"]) == ("fetch", "skipped", result.trade_date)
    assert row["notebook_path"] is None and row["error"] == result.error
    assert "status-skipped" in (job_env.reports / "index.html").read_text()


def test_cli_prints_market_closed_and_exits_0(job_env, monkeypatch, capfd):
    # The CLI has no clock argument: fix "today" where the runner asks for it.
    monkeypatch.setattr(runner, "today_eastern", lambda now=None: THANKSGIVING.date())

    code = main(["run", "fetch"])

    out, err = capfd.readouterr()
    assert code == 0
    assert out.strip() == "market closed: fetch 2026-11-26 skipped"
    assert err == ""
    assert [r["status"] for r in _rows(job_env.engine)] == ["skipped"]


def test_tune_skips_sessions_that_are_not_the_first_of_the_month(job_env):
    result = runner.run_job("tune", date=SESSION)

    assert result.status == "skipped"
    assert "not the first session of 2026-11" in result.error and "force True" in result.error
    assert _files(job_env.runs) == []
    assert [r["status"] for r in _rows(job_env.engine)] == ["skipped"]


def test_tune_runs_on_the_first_session_or_when_forced(job_env):
    forced = runner.plan_run("tune", date=SESSION, parameters={"force": True})
    first = runner.plan_run("tune", date="2026-12-01")

    assert forced.skip is None and first.skip is None
    # The probe notebook does not declare `force`: the runner uses it but does not inject it.
    assert forced.parameters == {"trade_date": SESSION}
    assert forced.recorded == {"trade_date": SESSION, "force": True}


# --- the small pieces ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("-2", -2),
        ("0.25", 0.25),
        ("1e-3", 0.001),
        ("True", True),
        ("false", False),
        ("None", None),
        ("2026-11-25", "2026-11-25"),
        ("SPY", "SPY"),
        ("1.2.3", "1.2.3"),
    ],
)
def test_parse_value(text, value):
    parsed = runner.parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_parse_parameters_refuses_bad_names():
    assert runner.parse_parameters([("a", "1"), ("b", "x")]) == {"a": 1, "b": "x"}
    with pytest.raises(JobError, match="not a Python identifier"):
        runner.parse_parameters([("not-a-name", "1")])


def test_timeouts_from_the_environment(monkeypatch):
    monkeypatch.delenv("ALLOCATOR_START_TIMEOUT", raising=False)
    monkeypatch.delenv("ALLOCATOR_CELL_TIMEOUT", raising=False)
    assert runner.timeouts() == (120.0, 900.0)
    monkeypatch.setenv("ALLOCATOR_CELL_TIMEOUT", "30")
    monkeypatch.setenv("ALLOCATOR_START_TIMEOUT", "15")
    assert runner.timeouts() == (15.0, 30.0)
    monkeypatch.setenv("ALLOCATOR_CELL_TIMEOUT", "soon")
    with pytest.raises(SettingsError, match="ALLOCATOR_CELL_TIMEOUT='soon' is not a number"):
        runner.timeouts()


def test_artifact_names_never_collide(tmp_path):
    moment = dt.datetime(2026, 11, 26, 21, 35, 1, tzinfo=dt.UTC)
    day = dt.date(2026, 11, 25)
    paths = [reserve_run_paths(tmp_path / "r", tmp_path / "p", "fetch", day, moment) for _ in "abc"]

    assert utc_stamp(moment) == "20261126T213501Z"
    assert [p.notebook.name for p in paths] == [
        "fetch_2026-11-25_20261126T213501Z.ipynb",
        "fetch_2026-11-25_20261126T213501Z-2.ipynb",
        "fetch_2026-11-25_20261126T213501Z-3.ipynb",
    ]
    assert paths[1].html == tmp_path / "p/2026/11/25/fetch_2026-11-25_20261126T213501Z-2.html"
    assert parse_run_name(paths[2].notebook).trade_date == day
    assert parse_run_name("notes.ipynb") is None


def test_one_line_masks_secrets():
    text = "OperationalError: cannot connect\n  to postgresql://u:hunter22@h/db with key ABCD1234"
    assert runner.one_line(text, ["ABCD1234"]) == (
        "OperationalError: cannot connect to postgresql://u:***@h/db with key ***"
    )


def test_job_registry():
    assert list(JOBS) == [
        "fetch",
        "signal",
        "execute",
        "tune",
        "backtest",
        "sweep",
        "study",
        "walkforward",
        "review",
    ]
    assert not get_job("backtest").needs_session and get_job("backtest").cron is None
    assert get_job("tune").cron == "30 5 * * 1-5"
    assert skip_reason(get_job("fetch"), dt.date(2026, 11, 25)) is None
    assert skip_reason(get_job("tune"), dt.date(2026, 12, 1)) is None
    assert skip_reason(get_job("tune"), dt.date(2026, 12, 2)) is not None
    assert skip_reason(get_job("tune"), dt.date(2026, 12, 2), force=True) is None


def test_runs_command_lists_newest_first(job_env, capfd):
    runner.run_job("fetch", now=THANKSGIVING)
    runner.run_job("tune", date=SESSION)

    assert main(["runs", "--limit", "5"]) == 0
    out = capfd.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["id", "trade", "date"]
    assert [line.split()[2] for line in out[1:]] == ["tune", "fetch"]
    assert main(["runs", "--status", "nope"]) == 2
    assert [r.job for r in list_runs(job_env.engine, job="tune")] == ["tune"]


@pytest.mark.parametrize(
    "job, pairs, expected",
    [
        ("signal", [("replace", "no")], {"replace": False}),
        ("signal", [("replace", "False")], {"replace": False}),
        ("signal", [("replace", "0")], {"replace": False}),
        ("signal", [("replace", "yes")], {"replace": True}),
        ("tune", [("months", "3"), ("apply", "False")], {"months": 3, "apply": False}),
        ("backtest", [("start", "2005-01-03")], {"start": "2005-01-03"}),
        ("sweep", [("grid", '{"cash_deploy_rate": [0]}')], {"grid": '{"cash_deploy_rate": [0]}'}),
    ],
)
def test_p_values_are_read_by_the_type_of_the_notebooks_default(job, pairs, expected):
    plan = runner.plan_run(job, date="2026-11-02", parameters=runner.parse_parameters(pairs))
    assert {k: plan.parameters[k] for k in expected} == expected
    assert all(type(plan.parameters[k]) is type(v) for k, v in expected.items())


@pytest.mark.parametrize(
    "job, pairs, message",
    [
        ("signal", [("replace", "maybe")], "parameter 'replace' takes True or False"),
        ("signal", [("replace", "True ")], r"takes True or False .*not 'True '"),
        ("signal", [("replace", " yes")], r"takes True or False .*not ' yes'"),
        ("signal", [("replace", "1\n")], "parameter 'replace' takes True or False"),
        ("tune", [("months", "three")], "parameter 'months' takes a number like its default"),
        ("tune", [("months", "2.5")], "parameter 'months' takes a whole number"),
        ("tune", [("months", "9" * 5000)], "is 5,000 characters long"),
        ("tune", [("months", "1e300")], "parameter 'months' takes a whole number"),
        ("tune", [("months", "9" * 15)], "is out of any sensible range"),
    ],
)
def test_p_values_of_the_wrong_type_are_refused_before_a_kernel_starts(job, pairs, message):
    with pytest.raises(JobError, match=message):
        runner.plan_run(job, date="2026-11-02", parameters=runner.parse_parameters(pairs))
