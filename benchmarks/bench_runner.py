"""What running a job as a notebook costs: wall time against a direct call, and bytes on disk.

    python benchmarks/bench_runner.py [--repeat 3]

Runs, in a temporary SQLite database and archive:

* a trivial job notebook (one call: ``is_session(trade_date)``) through ``run_job``
  (papermill execution + archive + HTML/Markdown rendering + job_runs + index), and through
  ``allocator.notebook.runner.execute_notebook`` alone (papermill with the runner's options);
* the same call directly: in a fresh Python process (imports included) and in-process;
* ``tests/notebooks/probe.ipynb`` (logging, a database write, a figure, a table), which is closer
  to a daily job's artifact, to measure bytes per run per format.

With ``--real-day`` it also runs the real ``notebooks/`` signal, execute and fetch jobs for one
session on synthetic data (as ``make demo`` does) and reports the bytes that trading day left.

Prints one table of seconds and one of bytes per run (.ipynb, .html, .md, .png).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SESSION = "2026-11-25"


def trivial_notebook(path: Path) -> None:
    params = nbformat.v4.new_code_cell("trade_date = None")
    params.metadata["tags"] = ["parameters"]
    cells = [
        nbformat.v4.new_markdown_cell("# Trivial job"),
        params,
        nbformat.v4.new_code_cell("from allocator.shell.calendar import is_session"),
        nbformat.v4.new_code_cell("is_session(trade_date)"),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "capital-allocator",
        "display_name": "CA",
        "language": "python",
    }
    nbformat.write(nb, path)


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def sizes(result) -> dict[str, int]:
    paths = result.paths
    pngs = list(paths.figures_dir.glob("*.png")) if paths.figures_dir.exists() else []
    return {
        "ipynb": paths.notebook.stat().st_size,
        "html": paths.html.stat().st_size,
        "md": paths.markdown.stat().st_size,
        "png": sum(p.stat().st_size for p in pngs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--real-day", action="store_true", help="also measure the real daily job notebooks"
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        notebooks = tmp / "notebooks"
        notebooks.mkdir()
        trivial_notebook(notebooks / "signal.ipynb")
        (notebooks / "fetch.ipynb").write_bytes(
            (ROOT / "tests" / "notebooks" / "probe.ipynb").read_bytes()
        )
        os.environ.update(
            DATABASE_URL=f"sqlite:///{tmp / 'bench.sqlite3'}",
            ALLOCATOR_RUNS_DIR=str(tmp / "runs"),
            ALLOCATOR_REPORTS_DIR=str(tmp / "reports"),
        )
        from allocator.notebook.runner import execute_notebook, run_job
        from allocator.shell.calendar import is_session
        from allocator.shell.persistence import make_engine
        from allocator.shell.persistence.migrate import upgrade

        upgrade(make_engine(os.environ["DATABASE_URL"]))

        trivial_runs = []
        seconds = {
            "run_job (papermill + archive + render + db)": timed(
                lambda: trivial_runs.append(
                    run_job("signal", date=SESSION, notebooks_dir=notebooks)
                ),
                args.repeat,
            ),
            "papermill execution only (runner.execute_notebook)": timed(
                lambda: execute_notebook(
                    notebooks / "signal.ipynb",
                    tmp / "plain.ipynb",
                    {"trade_date": SESSION},
                    kernel_name="capital-allocator",
                    cwd=tmp,
                    start_timeout=120,
                    cell_timeout=900,
                ),
                args.repeat,
            ),
            "direct call, fresh python process": timed(
                lambda: subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        f"from allocator.shell.calendar import is_session; is_session('{SESSION}')",
                    ],
                    check=True,
                ),
                args.repeat,
            ),
            "direct call, in-process (warm)": timed(
                lambda: is_session(dt.date.fromisoformat(SESSION)), args.repeat
            ),
        }
        probe_runs = [run_job("fetch", date=SESSION, notebooks_dir=notebooks) for _ in range(2)]

        print(f"seconds per run (median of {args.repeat}):")
        for name, values in seconds.items():
            print(f"  {name:48s} {statistics.median(values):8.3f}")
        overhead = statistics.median(
            seconds["run_job (papermill + archive + render + db)"]
        ) - statistics.median(seconds["direct call, fresh python process"])
        print(f"  {'overhead of a notebook job vs a script':48s} {overhead:8.3f}")

        print("bytes per run:")
        for label, result in (("trivial", trivial_runs[-1]), ("probe", probe_runs[-1])):
            size = sizes(result)
            total = sum(size.values())
            parts = "  ".join(f"{k} {v:>7,d}" for k, v in size.items())
            print(f"  {label:8s} {parts}  total {total:>8,d}")
        day = 3 * sum(sizes(probe_runs[-1]).values())
        print(f"  three daily jobs like the probe: {day:,d} bytes ({day / 1e6:.2f} MB)")
        if args.real_day:
            real_day(tmp)
    return 0


def real_day(tmp: Path) -> None:
    """Run the real signal, execute and fetch notebooks for one session; print their bytes."""
    from allocator.cli.commands import main as allocator
    from allocator.shell import calendar
    from allocator.shell.persistence import make_engine
    from allocator.shell.persistence.jobruns import list_runs

    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'day.sqlite3'}"
    history = calendar.last_n_sessions(calendar.previous_session(SESSION), 300)
    steps = [
        ["db", "upgrade"],
        ["config", "seed"],
        [
            "backfill",
            "--source",
            "synthetic",
            "--start",
            str(history[0]),
            "--end",
            str(history[-1]),
        ],
        ["run", "signal", "--date", SESSION],
        ["run", "execute", "--date", SESSION],
        ["run", "fetch", "--date", SESSION, "-p", "source", "synthetic"],
    ]
    for argv in steps:
        if allocator(argv) != 0:
            raise SystemExit(f"bench: allocator {' '.join(argv)} failed")
    print(f"real daily jobs of {SESSION} (bytes):")
    total = 0
    for run in reversed(list_runs(make_engine(os.environ["DATABASE_URL"]))):
        size = sizes(SimpleNamespace(paths=paths_of(run)))
        total += sum(size.values())
        parts = "  ".join(f"{k} {v:>7,d}" for k, v in size.items())
        print(f"  {run.job:8s} {parts}  total {sum(size.values()):>8,d}")
    print(f"  the trading day: {total:,d} bytes ({total / 1e6:.2f} MB)")

    # The same fetch again (nothing new to store), through the runner and as a direct call.
    from allocator.jobs.fetch import run_fetch

    argv = ["run", "fetch", "--date", SESSION, "-p", "source", "synthetic"]
    notebook = timed(lambda: allocator(argv), 3)
    direct = timed(lambda: run_fetch(SESSION, source="synthetic"), 3)
    print(
        f"allocator run fetch: {statistics.median(notebook):.2f} s; run_fetch() in-process: "
        f"{statistics.median(direct):.2f} s (median of 3, re-runs that store nothing new)"
    )


def paths_of(run):
    from allocator.notebook.archive import RunPaths

    return RunPaths(Path(run.notebook_path), Path(run.html_path), Path(run.md_path))


if __name__ == "__main__":
    raise SystemExit(main())
