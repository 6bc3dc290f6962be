"""What a job costs through ``allocator run`` against a plain call, and how fast the CLI answers.

    python -m benchmarks.bench_runner [--repeat 1]

Everything is measured as CPU seconds of child processes (``os.times()``: user + system of the
waited-for children, which include the notebook's kernel, a child of ``allocator run``), in a
temporary SQLite database and archive on the seeded synthetic market:

* each daily job (signal, execute, fetch) of one session through ``allocator run JOB`` (the CLI,
  papermill, the kernel, the archive and the rendering) against the same job function called in a
  fresh Python process (``python -c "from allocator.jobs.signal import run_signal; ..."``); both
  are re-runs of a job that already ran once, so both find the same work to do; target <= 2x;
* the CLI's answers that start no job: ``--help`` and three usage errors (unknown job, malformed
  date, unknown ``-p`` name) against a bare ``import pandas`` (target <= 0.5 s each), and
  ``allocator config show`` (target <= 1 s);
* the bytes the trading day left in the archive and the reports, and those of a 20-year
  backtest (real history when ``ALLOCATOR_MARKET_CSV_DIR`` has it).

Prints one table per group and a line for ``benchmarks/results.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SESSION = "2026-11-25"
HISTORY_SESSIONS = 300
#: The daily jobs in the order of a trading day, with the function a script would call.
JOBS = {
    "signal": ("allocator.jobs.signal", f"run_signal('{SESSION}')", []),
    "execute": ("allocator.jobs.execute", f"run_execute('{SESSION}')", []),
    "fetch": (
        "allocator.jobs.fetch",
        f"run_fetch('{SESSION}', source='synthetic')",
        ["-p", "source", "synthetic"],
    ),
}
JOB_TARGET = 2.0
USAGE_TARGET = 0.5
CONFIG_TARGET = 1.0
#: Commands that must answer without starting a job, with the exit code each must give.
USAGE = {
    "allocator --help": (["--help"], 0),
    "unknown job": (["run", "nosuchjob"], 2),
    "malformed date": (["run", "fetch", "--date", "2024-13-45"], 2),
    "unknown -p name": (["run", "fetch", "--date", SESSION, "-p", "nosuch", "1"], 2),
}


def child_cpu(argv: list[str], env: dict[str, str], expect: int = 0) -> float:
    """CPU seconds (user + system) that ``argv`` and every child it waited for used."""
    before = os.times()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    after = os.times()
    if done.returncode != expect:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise SystemExit(
            f"bench: {' '.join(argv)} exited {done.returncode}, expected {expect}: {tail}"
        )
    return (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )


def median_cpu(argv: list[str], env: dict[str, str], repeat: int, expect: int = 0) -> float:
    return statistics.median(child_cpu(argv, env, expect) for _ in range(repeat))


def allocator(*args: str) -> list[str]:
    return [sys.executable, "-m", "allocator", *args]


def prepare(tmp: Path) -> dict[str, str]:
    """A migrated database with a seeded config and synthetic history; the environment to use."""
    env = dict(
        os.environ,
        DATABASE_URL=f"sqlite:///{tmp / 'bench.sqlite3'}",
        ALLOCATOR_RUNS_DIR=str(tmp / "runs"),
        ALLOCATOR_REPORTS_DIR=str(tmp / "reports"),
        ALLOCATOR_LOG_DIR=str(tmp / "log"),
        ALLOCATOR_DOTENV="off",
    )
    from allocator.shell import calendar

    history = calendar.last_n_sessions(calendar.previous_session(SESSION), HISTORY_SESSIONS)
    for argv in (
        ["db", "upgrade"],
        ["config", "seed"],
        ["backfill", "--source", "synthetic", "--start", str(history[0])]
        + ["--end", str(history[-1])],
    ):
        child_cpu(allocator(*argv), env)
    # The trading day once, so that every measured run below is a re-run of the same work.
    for job, (_, _, extra) in JOBS.items():
        child_cpu(allocator("run", job, "--date", SESSION, *extra), env)
    return env


def job_overhead(env: dict[str, str], repeat: int) -> dict[str, float]:
    """Print CPU of ``allocator run JOB`` and of the job function; return job -> ratio."""
    print("== Job overhead: CPU seconds, allocator run (CLI + kernel) vs the function alone")
    print(f"  {'job':8s} {'allocator run':>14s} {'direct call':>12s} {'ratio':>7s}  target")
    ratios = {}
    for job, (module, call, extra) in JOBS.items():
        through = median_cpu(allocator("run", job, "--date", SESSION, *extra), env, repeat)
        name = call.split("(")[0]
        script = f"from {module} import {name}; {call}"
        direct = median_cpu([sys.executable, "-c", script], env, repeat)
        ratios[job] = through / direct
        print(
            f"  {job:8s} {through:12.2f} s {direct:10.2f} s {ratios[job]:6.2f}x  <= {JOB_TARGET:g}x"
        )
    return ratios


def startup(env: dict[str, str], repeat: int) -> dict[str, float]:
    """Print CPU of the CLI's quick answers against ``import pandas``; return name -> seconds."""
    repeat = max(repeat, 3)
    pandas = median_cpu([sys.executable, "-c", "import pandas"], env, repeat)
    print(f"== CLI start-up: CPU seconds (median of {repeat}), against a bare import pandas")
    print(f"  {'import pandas (reference)':28s} {pandas:6.2f} s")
    figures = {"import pandas": pandas}
    for name, (argv, expect) in USAGE.items():
        figures[name] = median_cpu(allocator(*argv), env, repeat, expect)
        print(
            f"  {name:28s} {figures[name]:6.2f} s {figures[name] / pandas:6.2f}x pandas  "
            f"target <= {USAGE_TARGET:g} s"
        )
    figures["config show"] = median_cpu(allocator("config", "show"), env, repeat)
    print(
        f"  {'allocator config show':28s} {figures['config show']:6.2f} s "
        f"{'':15s} target <= {CONFIG_TARGET:g} s"
    )
    return figures


def run_bytes(tmp: Path, job: str) -> dict[str, int] | None:
    """The bytes of ``job``'s last run: the archive (notebook and sidecars), both reports and
    their figure files (PNG or SVG)."""
    notebooks = sorted((tmp / "runs").rglob(f"{job}_*.ipynb"))
    if not notebooks:
        return None
    stem = notebooks[-1].stem
    return {
        "runs": sum(p.stat().st_size for p in (tmp / "runs").rglob(f"{stem}*") if p.is_file()),
        "html": sum(p.stat().st_size for p in (tmp / "reports").rglob(f"{stem}.html")),
        "md": sum(p.stat().st_size for p in (tmp / "reports").rglob(f"{stem}.md")),
        "figures": sum(p.stat().st_size for p in (tmp / "reports").rglob(f"{stem}_files/*")),
    }


def _row(job: str, parts: dict[str, int]) -> str:
    row = "  ".join(f"{k} {v:>8,d}" for k, v in parts.items())
    return f"  {job:8s} {row}  total {sum(parts.values()):>9,d}"


def day_bytes(tmp: Path) -> None:
    """Print the bytes of each job's last run: the archive (notebook and sidecars), the reports."""
    print("== Bytes per run (the last run of each job; budget: 250 KB for the trading day)")
    total = 0
    for job in JOBS:
        parts = run_bytes(tmp, job)
        if parts is None:
            continue
        total += sum(parts.values())
        print(_row(job, parts))
    print(f"  the trading day: {total:,d} bytes ({total / 1e6:.2f} MB)")


def backtest_bytes(tmp: Path, env: dict[str, str]) -> None:
    """Print the bytes of a 20-year backtest through ``allocator run`` (budget 600 KB): on the
    real history of ``ALLOCATOR_MARKET_CSV_DIR`` when it holds SPY.csv, else on the synthetic
    market's 2016-2026 (the output says which)."""
    folder = os.environ.get("ALLOCATOR_MARKET_CSV_DIR")
    if folder and (Path(folder) / "SPY.csv").is_file():
        what, args = (
            "2005-2024, real history",
            ["-p", "start", "2005-01-03", "-p", "end", "2024-12-31"],
        )
        args += ["-p", "data_source", "csv", "-p", "csv_dir", folder]
    else:
        what, args = (
            "2016-2026, synthetic market",
            ["-p", "start", "2016-01-04", "-p", "end", SESSION],
        )
        args += ["-p", "data_source", "synthetic", "-p", "config_source", "default"]
    child_cpu(allocator("run", "backtest", *args), env)
    print(f"== Bytes of a long backtest ({what}; budget 600 KB for 20 years)")
    parts = run_bytes(tmp, "backtest")
    if parts is not None:
        print(_row("backtest", parts))


def results_line(ratios: dict[str, float], figures: dict[str, float]) -> str:
    """The row to add to ``benchmarks/results.md`` (the backtest column is read from its table)."""
    jobs = ", ".join(f"{job} {ratio:.2f}x" for job, ratio in ratios.items())
    usage = max(v for k, v in figures.items() if k in USAGE)
    return (
        f"| {dt.date.today()} | CHANGE | {jobs} | {usage:.2f} s "
        f"({usage / figures['import pandas']:.2f}x pandas) | {figures['config show']:.2f} s | "
        "BACKTEST |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per job figure (median)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="allocator-bench-") as name:
        tmp = Path(name)
        env = prepare(tmp)
        ratios = job_overhead(env, args.repeat)
        figures = startup(env, args.repeat)
        day_bytes(tmp)
        backtest_bytes(tmp, env)
    print("results.md line (name the change, add the backtest figure):")
    print(results_line(ratios, figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
