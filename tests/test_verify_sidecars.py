"""``allocator runs --verify`` and the review check a run's Parquet sidecars, not only its notebook.

A sidecar's SHA-256 is glued in the notebook (:func:`allocator.notebook.sidecar.glue_table`), so
the notebook's own digest vouches for it only if someone compares the two: one byte appended to
a table once left the archive "all intact". On SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import nbformat

from allocator.cli.commands import main
from allocator.notebook import review, sidecar
from allocator.notebook.supervision import archive_problem, file_digest
from allocator.shell.persistence.jobruns import finish_run, insert_running
from tests.test_render import archive, executed_notebook, table

DAY = dt.date(2026, 11, 25)


def _archived_backtest(engine, tmp_path):
    """An archived backtest run whose trades are a sidecar; its row records the digest."""
    paths = archive(tmp_path, "backtest", DAY.isoformat(), nbformat.v4.new_notebook())
    frame = table()
    parquet = sidecar.write_parquet(frame, paths.notebook.with_name(f"{paths.stem}_trades.parquet"))
    reference = {
        "sidecar": parquet.name,
        "format": "parquet",
        "rows": len(frame),
        "columns": list(frame),
        "sha256": hashlib.sha256(parquet.read_bytes()).hexdigest(),
    }
    nbformat.write(
        executed_notebook(failed=False, scraps={"trades": reference, "n": 3}), paths.notebook
    )
    run_id = insert_running(
        engine,
        "backtest",
        DAY,
        parameters={},
        git_commit=None,
        notebook_path=paths.notebook,
        html_path=None,
        md_path=None,
    )
    finish_run(engine, run_id, "succeeded", sha256=file_digest(paths.notebook))
    return run_id, paths.notebook, parquet


def test_verify_and_the_review_catch_a_changed_or_deleted_sidecar(
    engine, database_url, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    run_id, notebook, parquet = _archived_backtest(engine, tmp_path)
    assert sidecar.sidecar_references(notebook)[0]["sidecar"] == parquet.name
    assert main(["runs", "--verify"]) == 0
    assert "1 archived notebook(s) checked against their SHA-256: all intact" in (
        capsys.readouterr().out
    )

    with parquet.open("ab") as handle:  # one byte appended: the notebook itself is untouched
        handle.write(b"\0")
    assert main(["runs", "--verify"]) == 1
    out = capsys.readouterr().out
    assert f"run {run_id} backtest {DAY}: sidecar changed: {parquet}" in out
    assert "1 changed or deleted" in out
    rows = review.runs_table(review.Window(DAY, DAY), "backtest").to_dict("records")
    assert [(r["status"], r["verified"]) for r in rows] == [("unverified", False)]
    assert f"its sidecar {parquet.name} is changed since the run" in rows[0]["error"]

    parquet.unlink()
    assert main(["runs", "--verify"]) == 1
    assert f"run {run_id} backtest {DAY}: sidecar deleted: {parquet}" in capsys.readouterr().out


def test_a_reference_leading_out_of_the_run_folder_is_a_changed_sidecar(engine, tmp_path):
    _, notebook, parquet = _archived_backtest(engine, tmp_path)
    text = notebook.read_text().replace(f'"{parquet.name}"', f'"../{parquet.name}"')
    notebook.write_text(text)
    assert sidecar.sidecar_problems(notebook) == [("changed", parquet)]
    assert archive_problem(str(notebook), file_digest(notebook)) == (
        "sidecar changed",
        str(parquet),
    )
