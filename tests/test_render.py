"""What reviewers read: rendered reports, the runs index, the review notebook, clean notebooks."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import re
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pandas as pd
import papermill
import pytest
import scrapbook as sb
from PIL import Image

from allocator.notebook import plots, render, review, review_report, sidecar
from allocator.notebook.archive import RunPaths, reserve_run_paths
from allocator.notebook.index import write_index
from allocator.shell.persistence import jobruns

ROOT = Path(__file__).resolve().parents[1]
# A 1x1 PNG: enough for the exporters to treat it as a figure.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


def scrap(name: str, value) -> nbformat.NotebookNode:
    """A display output exactly as ``scrapbook.glue`` writes it."""
    kind = "text" if isinstance(value, str) else "json"
    return nbformat.v4.new_output(
        "display_data",
        data={
            f"application/scrapbook.scrap.{kind}+json": {
                "name": name,
                "data": value,
                "encoder": kind,
                "version": 1,
            }
        },
        metadata={"scrapbook": {"name": name, "data": True, "display": False}},
    )


def executed_notebook(*, failed: bool, scraps: dict | None = None) -> nbformat.NotebookNode:
    """A notebook shaped like papermill's output (with its error marker cells when failed)."""
    params = nbformat.v4.new_code_cell('trade_date = "2026-11-25"')
    params.metadata["tags"] = ["parameters"]
    glue = nbformat.v4.new_code_cell("sb.glue(...)")
    glue.outputs = [scrap(k, v) for k, v in (scraps or {}).items()]
    figure = nbformat.v4.new_code_cell("plt.plot([1, 2])", execution_count=3)
    figure.outputs = [nbformat.v4.new_output("display_data", data={"image/png": PNG})]
    cells = [nbformat.v4.new_markdown_cell("# Probe notebook\n\nSays what it does."), params]
    cells += [glue, figure]
    meta = {"duration": 3.5, "end_time": "2026-11-25T21:35:05+00:00", "exception": failed}
    if failed:
        boom = nbformat.v4.new_code_cell("raise ValueError('boom')", execution_count=4)
        boom.outputs = [
            nbformat.v4.new_output(
                "error", ename="ValueError", evalue="boom", traceback=["ValueError: boom"]
            )
        ]
        top = nbformat.v4.new_markdown_cell('<span>An Exception was encountered at "In [4]"</span>')
        anchor = nbformat.v4.new_markdown_cell('<span id="papermill-error-cell">here</span>')
        top.metadata["tags"] = anchor.metadata["tags"] = [render.PAPERMILL_ERROR_TAG]
        cells = [top, *cells, anchor, boom]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["papermill"] = meta
    return nb


def header(status: str, error: str | None = None) -> render.RunHeader:
    start = dt.datetime(2026, 11, 25, 21, 35, 1, tzinfo=dt.UTC)
    return render.RunHeader(
        "fetch",
        dt.date(2026, 11, 25),
        status,
        start,
        start + dt.timedelta(seconds=3.5),
        "abc123",
        {"trade_date": "2026-11-25", "symbols": 2},
        error,
    )


def archive(tmp_path: Path, job: str, day: str, nb, hour: int = 21) -> RunPaths:
    moment = dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=dt.UTC)
    paths = reserve_run_paths(
        tmp_path / "runs", tmp_path / "reports", job, dt.date.fromisoformat(day), moment
    )
    nbformat.write(nb, paths.notebook)
    return paths


# --- rendering ----------------------------------------------------------------------------------


def test_failed_report_has_the_error_on_top_and_no_scraps():
    nb = executed_notebook(failed=True, scraps={"inserted": 2})

    report = render.prepare_for_report(nb, header("failed", "ValueError: boom (cell In [4])"))

    top = report.cells[0]
    assert top.cell_type == "markdown"
    assert top.source.index("This run FAILED") < top.source.index("run-meta")
    assert "ValueError: boom (cell In [4])" in top.source
    assert 'href="#papermill-error-cell"' in top.source
    assert "An Exception was encountered" not in str(report.cells), "papermill's banner replaced"
    assert "papermill-error-cell" in str(report.cells[1:]), "the anchor cell stays"
    assert "application/scrapbook" not in str(report.cells)
    assert "application/scrapbook" in str(nb.cells), "the archive itself is not modified"


def test_render_run_writes_lean_html_and_markdown_linking_one_png_file(tmp_path):
    paths = archive(tmp_path, "fetch", "2026-11-25", executed_notebook(failed=False))

    render.render_run(paths.notebook, paths, header("succeeded"))

    page = paths.html.read_text()
    assert page.startswith("<!DOCTYPE html>") and len(page) < 20_000
    assert '<input type="checkbox" id="show-code"' in page
    assert "#show-code:not(:checked)~main .input{display:none}" in page
    assert '<div class="input">' in page, "the code is in the page, hidden until toggled"
    assert "This run FAILED" not in page
    assert 'href="../../../../runs/2026/11/25/' in page

    markdown = paths.markdown.read_text()
    assert markdown.startswith("# fetch 2026-11-25")
    assert "plt.plot" not in markdown, "Markdown shows outputs, not code"
    # One file per figure, the notebook's own bytes, linked by both reports: no data URI copy.
    (png,) = paths.figures_dir.iterdir()
    assert png.read_bytes() == base64.b64decode(PNG)
    link = f"{paths.figures_dir.name}/{png.name}"
    assert f'src="{link}"' in page and "data:image" not in page
    assert f"]({link})" in markdown and "data:image" not in markdown
    assert "filenames" not in paths.notebook.read_text(), "the archive is not modified"


def test_report_templates_are_compiled_once_into_the_cache_and_a_bad_cache_costs_nothing(
    tmp_path, monkeypatch
):
    nb = executed_notebook(failed=False)
    reference = archive(tmp_path / "reference", "fetch", "2026-11-25", nb)
    render.render_run(reference.notebook, reference, header("succeeded"))
    try:
        # A fresh cache: the first process compiles the templates and keeps their bytecode.
        monkeypatch.setenv("ALLOCATOR_CACHE_DIR", str(tmp_path / "cache"))
        render.exporters.cache_clear()
        fresh = archive(tmp_path / "fresh", "fetch", "2026-11-25", nb)
        render.render_run(fresh.notebook, fresh, header("succeeded"))
        cached = sorted((f, f.stat().st_mtime_ns) for f in render.template_cache_dir().iterdir())
        assert render.template_cache_dir() == tmp_path / "cache" / "nbconvert-templates"
        assert len(cached) >= 5 and all(f.name.endswith(".cache") for f, _ in cached)
        # The next process loads them (none is written again): same pages as without a cache.
        render.exporters.cache_clear()
        cached_dir = render.template_cache_dir()
        again = archive(tmp_path / "again", "fetch", "2026-11-25", nb)
        render.render_run(again.notebook, again, header("succeeded"))
        assert sorted((f, f.stat().st_mtime_ns) for f in cached_dir.iterdir()) == cached
        # A cache folder that cannot be created (a file is in the way) is no error.
        (tmp_path / "blocked").write_text("not a folder")
        monkeypatch.setenv("ALLOCATOR_CACHE_DIR", str(tmp_path / "blocked"))
        render.exporters.cache_clear()
        blocked = archive(tmp_path / "blocked-run", "fetch", "2026-11-25", nb)
        render.render_run(blocked.notebook, blocked, header("succeeded"))
    finally:
        render.exporters.cache_clear()
    pages = [p.html.read_text() for p in (reference, fresh, again, blocked)]
    assert pages[1:] == pages[:1] * 3
    assert [p.markdown.read_text() for p in (fresh, again, blocked)] == [
        reference.markdown.read_text()
    ] * 3
    # The figure's alt text is its section's heading (HTMLExporter's soup pass is skipped).
    assert 'alt="Figure: Probe notebook"' in pages[0] and "No description" not in pages[0]


def test_extract_figures_names_every_figure_type_once():
    nb = executed_notebook(failed=False)
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>'
    jpeg = base64.b64encode(b"\xff\xd8 not really a jpeg").decode()
    both = nbformat.v4.new_output(
        "display_data", data={"image/svg+xml": svg, "image/jpeg": jpeg, "text/plain": "<Figure>"}
    )
    nb.cells[-1].outputs.append(both)
    report = render.prepare_for_report(nb, header("succeeded"))

    files = render.extract_figures(report, "run_files", "run")

    figure_cell = len(report.cells) - 1
    assert files == {
        f"run_files/run_{figure_cell}_0.png": base64.b64decode(PNG),
        f"run_files/run_{figure_cell}_1.jpg": b"\xff\xd8 not really a jpeg",
        f"run_files/run_{figure_cell}_1.svg": svg.encode(),
    }
    outputs = report.cells[-1].outputs
    assert outputs[0].metadata["filenames"] == {"image/png": f"run_files/run_{figure_cell}_0.png"}
    assert set(outputs[1].metadata["filenames"]) == {"image/svg+xml", "image/jpeg"}


def test_render_run_refuses_reports_in_two_folders(tmp_path):
    paths = archive(tmp_path, "fetch", "2026-11-25", executed_notebook(failed=False))
    split = RunPaths(paths.notebook, paths.html, tmp_path / "elsewhere" / paths.markdown.name)
    with pytest.raises(ValueError, match="must be in one folder"):
        render.render_run(paths.notebook, split, header("succeeded"))
    assert not paths.html.exists()


def test_compact_png_is_a_palette_png_a_third_the_size_that_looks_the_same():
    days = pd.bdate_range("2005-01-03", periods=5000)
    noise = np.random.default_rng(7).normal(size=(5000, 2)).cumsum(axis=0)
    history = pd.DataFrame(
        {"regime": np.tanh(noise[:, 0] / 20), "risk": 50 + 50 * np.tanh(noise[:, 1] / 30)},
        index=days,
    )
    plots.setup()
    fig = plots.regime_and_risk(history, 0.3, -0.3)
    rgba = io.BytesIO()
    fig.savefig(rgba, format="png", dpi=fig.dpi * plots.SCALE, facecolor="white")

    compact = plots.compact_png(fig)
    plt.close(fig)

    image = Image.open(io.BytesIO(compact))
    assert image.mode == "P" and len(image.getcolors()) <= plots.PALETTE_COLORS
    # 2x the figure's size: 1,060 CSS pixels wide (the report's width at 1280 px), doubled.
    width, height = fig.get_size_inches() * plots.CSS_DPI * plots.SCALE
    assert image.size == (round(width), round(height)) and round(width) == 2120
    original = np.asarray(Image.open(rgba).convert("RGB"), dtype=int)
    shown = np.asarray(image.convert("RGB"), dtype=int)
    assert shown.shape == original.shape
    # Every pixel (thin threshold lines included) within 32 of 255 per channel of the original.
    assert np.abs(shown - original).max() <= 32
    assert len(compact) * 2 < len(rgba.getvalue())
    empty = plt.figure()
    assert plots.compact_png(empty) is None, "nothing drawn, nothing shown"
    plt.close(empty)
    assert plots.use_compact_png() is False, "outside IPython nothing is registered"


def test_timeout_banner_has_no_dead_link():
    nb = executed_notebook(failed=False)
    report = render.prepare_for_report(nb, header("failed", "CellTimeoutError: too slow"))
    assert "CellTimeoutError: too slow" in report.cells[0].source
    assert "#papermill-error-cell" not in report.cells[0].source


def test_strip_outputs_cleans_in_place_once(tmp_path, capsys):
    path = tmp_path / "dirty.ipynb"
    nb = executed_notebook(failed=True, scraps={"x": 1})
    nb.cells[3].execution_count = 7
    nbformat.write(nb, path)

    assert render.main(["--check", str(path)]) == 1
    assert capsys.readouterr().out.strip() == f"has outputs: {path}"
    assert render.main(["--strip", str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"stripped {path}"
    assert render.main(["--check", str(path)]) == 0
    clean = nbformat.read(path, as_version=4)
    nbformat.validate(clean)
    codes = [c for c in clean.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in codes)
    assert "papermill" not in clean.metadata
    assert codes[0].metadata["tags"] == ["parameters"], "tags survive"
    assert render.strip_outputs(path) is False


# --- the index ----------------------------------------------------------------------------------


def test_index_lists_every_run_newest_first_with_relative_links(tmp_path, engine):
    ok = archive(tmp_path, "fetch", "2026-11-24", executed_notebook(failed=False))
    bad = archive(tmp_path, "signal", "2026-11-25", executed_notebook(failed=True))
    for paths in (ok, bad):
        paths.html.write_text("<html></html>")
        paths.markdown.write_text("# md")
    t0 = dt.datetime(2026, 11, 25, 21, 0, tzinfo=dt.UTC)
    first = jobruns.insert_running(
        engine,
        "fetch",
        dt.date(2026, 11, 24),
        parameters={},
        git_commit="abc",
        notebook_path=ok.notebook,
        html_path=ok.html,
        md_path=ok.markdown,
        started_at=t0,
    )
    jobruns.finish_run(engine, first, "succeeded", finished_at=t0 + dt.timedelta(seconds=4.25))
    second = jobruns.insert_running(
        engine,
        "signal",
        dt.date(2026, 11, 25),
        parameters={},
        git_commit="abc",
        notebook_path=bad.notebook,
        html_path=bad.html,
        md_path=bad.markdown,
        started_at=t0 + dt.timedelta(hours=1),
    )
    jobruns.finish_run(
        engine,
        second,
        "failed",
        error="ValueError: boom <b>",
        finished_at=t0 + dt.timedelta(hours=1, seconds=2),
    )
    jobruns.insert_skipped(
        engine,
        "fetch",
        dt.date(2026, 11, 26),
        "market closed: 2026-11-26 (Thursday) is not an NYSE session",
        parameters={},
        git_commit="abc",
        at=t0 + dt.timedelta(hours=2),
    )

    page = write_index(engine, tmp_path / "reports").read_text()

    rows = re.findall(r"<tr><td>(\d{4}-\d\d-\d\d)</td><td>(\w+)</td>", page)
    assert rows == [("2026-11-26", "fetch"), ("2026-11-25", "signal"), ("2026-11-24", "fetch")]
    assert "3 runs: 1 failed, 1 skipped, 1 succeeded" in page
    assert "4.2 s" in page or "4.3 s" in page
    assert "ValueError: boom &lt;b&gt;" in page, "errors are escaped"
    assert "market closed" in page
    hrefs = re.findall(r'href="([^"]+)"', page)
    assert len(hrefs) == 6 and not any(h.startswith("/") for h in hrefs)
    assert all((tmp_path / "reports" / h).resolve().exists() for h in hrefs)
    assert "../runs/2026/11/25/signal_2026-11-25_" in page


def test_index_keeps_archived_runs_another_database_recorded(tmp_path, engine, monkeypatch):
    # Recorded in an earlier DATABASE_URL: only the files remain.
    earlier = archive(tmp_path, "fetch", "2026-11-24", executed_notebook(failed=False))
    broken = archive(tmp_path, "signal", "2026-11-25", executed_notebook(failed=True))
    earlier.html.write_text("<html></html>")
    # Recorded in this database: its row describes it, its file is not read again.
    mine = archive(tmp_path, "execute", "2026-11-27", executed_notebook(failed=False))
    run_id = jobruns.insert_running(
        engine,
        "execute",
        dt.date(2026, 11, 27),
        parameters={},
        git_commit="abc",
        notebook_path=mine.notebook,
        html_path=mine.html,
        md_path=mine.markdown,
        started_at=dt.datetime(2026, 11, 27, 14, 30, tzinfo=dt.UTC),
    )
    jobruns.finish_run(engine, run_id, "failed", error="recorded by the runner")
    jobruns.insert_skipped(
        engine,
        "fetch",
        dt.date(2026, 11, 26),
        "market closed",
        parameters={},
        git_commit=None,
        at=dt.datetime(2026, 11, 26, 21, 35, tzinfo=dt.UTC),
    )

    page = write_index(engine, tmp_path / "reports", runs_dir=tmp_path / "runs").read_text()

    rows = re.findall(r"<tr><td>(\d{4}-\d\d-\d\d)</td><td>(\w+)</td><td>(.*?)</td>", page)
    assert [(d, j, re.sub("<[^>]+>", "", s)) for d, j, s in rows] == [
        ("2026-11-27", "execute", "failed"),
        ("2026-11-26", "fetch", "skipped"),
        ("2026-11-25", "signal", "failed"),
        ("2026-11-24", "fetch", "succeeded"),
    ]
    assert "4 runs: 2 failed, 1 skipped, 1 succeeded" in page
    assert "recorded by the runner" in page and "ValueError: boom" in page
    assert "3.5 s" in page, "the duration papermill recorded"
    assert f'href="{earlier.html.name}"' not in page and "2026/11/24/fetch_2026-11-24_" in page
    assert "Monthly tuning reports" not in page
    assert broken.notebook.name in page
    only_db = write_index(engine, tmp_path / "reports").read_text()
    assert "2 runs" in only_db


# --- the review -----------------------------------------------------------------------------


@pytest.fixture
def month_of_runs(tmp_path):
    stored = {"stored": 3, "trade_date": "2026-11-24"}
    archive(tmp_path, "fetch", "2026-11-24", executed_notebook(failed=False, scraps=stored))
    archive(
        tmp_path, "signal", "2026-11-25", executed_notebook(failed=False, scraps={"regime": 0.4})
    )
    archive(tmp_path, "signal", "2026-11-25", executed_notebook(failed=True), hour=22)
    archive(tmp_path, "fetch", "2026-12-01", executed_notebook(failed=False))  # outside
    (tmp_path / "runs" / "2026" / "11" / "24" / "notes.ipynb").write_text("{}")  # foreign file
    return tmp_path


def test_runs_table_reads_statuses_and_scraps_from_the_archive(month_of_runs):
    tmp = month_of_runs
    window = review.review_window("2026-11-01", "2026-11-30")
    table = review.runs_table(
        window, runs_dir=tmp / "runs", reports_dir=tmp / "reports", link_base=tmp / "notebooks"
    )

    assert list(table[["job", "status"]].itertuples(index=False, name=None)) == [
        ("fetch", "succeeded"),
        ("signal", "succeeded"),
        ("signal", "failed"),
    ]
    assert table["stored"].iloc[0] == 3 and table["regime"].iloc[1] == 0.4
    assert table["error"].iloc[2] == "ValueError: boom"
    assert table["notebook"].iloc[0].startswith("../runs/2026/11/24/fetch_2026-11-24_")
    failed = review.failures(table)
    assert list(failed["job"]) == ["signal"]
    shown = review_report.failures(failed)._repr_html_()
    assert "ValueError: boom" in shown and "signal 2026-11-25" in shown
    assert review_report.failures(review.failures(table.iloc[:2])) is None, "no failure, no section"
    at_a_glance = review.calendar_view(table)
    assert list(at_a_glance.index) == [dt.date(2026, 11, 24), dt.date(2026, 11, 25)]
    assert at_a_glance.loc[dt.date(2026, 11, 25), "signal"] == "failed"
    counts = review.status_counts(table)
    assert counts.loc["signal", "failed"] == 1 and counts.loc["fetch", "succeeded"] == 1
    only_fetch = review.runs_table(window, "fetch", runs_dir=tmp / "runs", reports_dir=tmp)
    assert list(only_fetch["job"]) == ["fetch"]


def test_review_leaves_out_its_own_run_and_links_from_its_report(month_of_runs, monkeypatch):
    tmp = month_of_runs
    own = archive(tmp, "review", "2026-11-30", nbformat.v4.new_notebook())  # still being written
    monkeypatch.setenv("ALLOCATOR_RUN_NOTEBOOK", str(own.notebook))
    window = review.review_window("2026-11-01", "2026-11-30")

    table = review.runs_table(window, runs_dir=tmp / "runs", reports_dir=tmp / "reports")

    assert "review" not in set(table["job"]) and "incomplete" not in set(table["status"])
    assert list(review.failures(table)["status"]) == ["failed"]
    # Links start where the review's report is, reports/2026/11/30/, and lead to the files.
    for href in table["notebook"]:
        assert href.startswith("../../../../runs/2026/11/")
        assert (own.html.parent / href).resolve().is_file()
    shown = review_report.runs(table)._repr_html_()
    assert "…" not in shown and "..." not in shown.replace("../", "")
    names = table["job"] + " " + table["trade_date"].astype(str)
    for href, report, name in zip(table["notebook"], table["report"], names, strict=True):
        assert f'<a href="{href}">notebook</a>' in shown
        assert f">{name}</a>" in shown if report else f">{name}</td>" in shown, "names the run"
    markdown = review_report.runs(table)._repr_markdown_()
    assert "<table" not in markdown and "[notebook](../../../../runs/2026/11/" in markdown


def test_review_window_defaults_to_the_last_31_days():
    window = review.review_window(today=dt.date(2026, 11, 30))
    assert (window.start, window.end) == (dt.date(2026, 10, 31), dt.date(2026, 11, 30))
    with pytest.raises(ValueError, match="before start"):
        review.review_window("2026-11-30", "2026-11-01")


@pytest.mark.notebook
def test_review_notebook_tabulates_a_month(month_of_runs, database_url, engine, monkeypatch):
    tmp = month_of_runs
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ALLOCATOR_RUNS_DIR", str(tmp / "runs"))
    monkeypatch.setenv("ALLOCATOR_REPORTS_DIR", str(tmp / "reports"))
    jobruns.insert_skipped(
        engine, "fetch", dt.date(2026, 11, 26), "market closed", parameters={}, git_commit=None
    )
    out = tmp / "review.ipynb"

    papermill.execute_notebook(
        str(ROOT / "notebooks" / "review.ipynb"),
        str(out),
        parameters={"start": "2026-11-01", "end": "2026-11-30"},
        kernel_name="capital-allocator",
        cwd=str(tmp),
        progress_bar=False,
        execution_timeout=120,
    )

    nb = sb.read_notebook(str(out))
    assert {k: v.data for k, v in nb.scraps.items()} == {
        "period": ["2026-11-01", "2026-11-30"],
        "runs": 3,
        "failed": 1,
        "succeeded": 2,
    }
    text = out.read_text()
    assert "ValueError: boom" in text and "market closed" in text


# --- large tables beside the notebook -----------------------------------------------------------


def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": ["2026-11-24", "2026-11-25", "2026-11-25"],
            "symbol": ["SPY", "QQQ", "SPY"],
            "quantity": [2.3912, 4.4554, -1.0],
            "amount": [258.60828, 178.616986, float("nan")],
            "n": [1, 2, 3],
        }
    )


def test_read_scraps_reads_a_referenced_sidecar_back_exactly_and_checks_it(tmp_path):
    frame = table()
    paths = archive(tmp_path, "backtest", "2026-11-25", nbformat.v4.new_notebook())
    parquet = sidecar.write_parquet(frame, paths.notebook.with_name(f"{paths.stem}_trades.parquet"))
    digest = hashlib.sha256(parquet.read_bytes()).hexdigest()
    reference = {
        "sidecar": parquet.name,
        "format": "parquet",
        "rows": 3,
        "columns": list(frame),
        "sha256": digest,
    }
    nb = executed_notebook(failed=False, scraps={"trades": reference, "n_trades": 3})
    nbformat.write(nb, paths.notebook)

    values = sidecar.read_scraps(paths.notebook)

    assert values["n_trades"] == 3
    pd.testing.assert_frame_equal(values["trades"], frame)
    # A changed table is refused: the notebook's digest vouches for its sidecars.
    sidecar.write_parquet(frame.assign(amount=1.0), parquet)
    with pytest.raises(ValueError, match=f"{parquet.name} changed after the run"):
        sidecar.read_scraps(paths.notebook)
    parquet.rename(tmp_path / "moved.parquet")
    with pytest.raises(FileNotFoundError, match=f"scrap 'trades' of .*{parquet.name}"):
        sidecar.read_scraps(paths.notebook)


@pytest.mark.notebook
def test_glue_table_keeps_the_table_beside_a_run_and_in_the_notebook_otherwise(
    tmp_path, monkeypatch
):
    source = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "import os\nfrom math import nan\n\nimport pandas as pd\n\n"
                "from allocator.notebook import sidecar"
            ),
            nbformat.v4.new_code_cell(f"frame = pd.DataFrame({table().to_dict('list')!r})"),
            nbformat.v4.new_code_cell('sidecar.glue_table("inside", frame)'),
            nbformat.v4.new_code_cell('os.environ.pop("ALLOCATOR_RUN_NOTEBOOK")'),
            nbformat.v4.new_code_cell('sidecar.glue_table("outside", frame)'),
        ]
    )
    nbformat.write(source, tmp_path / "source.ipynb")
    out = tmp_path / "runs" / "glue_2026-11-25_20261125T213501Z.ipynb"
    out.parent.mkdir()
    monkeypatch.setenv("ALLOCATOR_RUN_NOTEBOOK", str(out))  # as the runner sets it

    papermill.execute_notebook(
        str(tmp_path / "source.ipynb"),
        str(out),
        kernel_name="capital-allocator",
        cwd=str(tmp_path),
        progress_bar=False,
        execution_timeout=120,
    )

    raw = {name: scrap.data for name, scrap in sb.read_notebook(str(out)).scraps.items()}
    kept = out.with_name(f"{out.stem}_inside.parquet")
    assert raw["inside"] == {
        "sidecar": kept.name,
        "format": "parquet",
        "rows": 3,
        "columns": ["date", "symbol", "quantity", "amount", "n"],
        "sha256": hashlib.sha256(kept.read_bytes()).hexdigest(),
    }
    assert isinstance(raw["outside"], pd.DataFrame), "no run, no sidecar: glued as before"
    assert [p.name for p in sidecar.sidecars_of(out)] == [f"{out.stem}_inside.parquet"]
    values = sidecar.read_scraps(out)
    pd.testing.assert_frame_equal(values["inside"], table())
    pd.testing.assert_frame_equal(values["outside"], table())
