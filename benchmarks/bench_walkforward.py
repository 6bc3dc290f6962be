"""The 2006-2024 walk-forward, wall seconds: monthly tuning replayed on the research kernel.

    python -m benchmarks.bench_walkforward [--design NAME ...]

Each design's tuned backtest of 2006-01-03..2024-12-31 (227 months tuned, ~17 candidate replays
each, :func:`allocator.research.backtest_job.run_backtest_job` with
``config_source="walk_forward"``) is timed in wall seconds in this process, after one short
warm-up run that loads the kernel's compiled code, against the target of issue 17 (<= 40 s on
this 2-core machine). The default designs are the tune job's (``five_years_ttest``) and the
tuner as it was (``legacy``).

It reads the real SPY/QQQ/DIA history beside the checkout (``ALLOCATOR_MARKET_CSV_DIR``
overrides); without it the seeded synthetic market stands in and the output says so.
"""

from __future__ import annotations

import argparse
import time

from allocator.research.backtest_job import run_backtest_job
from allocator.tuning.acceptance import DEFAULT_DESIGN
from benchmarks.bench_backtest import default_csv_dir

START, END = "2006-01-03", "2024-12-31"
TARGET_SECONDS = 40.0


def walk_forward_seconds(design: str, source: dict) -> tuple[float, int, int]:
    """Wall seconds of one walk-forward, the months tuned and the changes accepted."""
    clock = time.perf_counter()
    result = run_backtest_job(START, END, config_source="walk_forward", design=design, **source)
    return time.perf_counter() - clock, len(result.tuning_log), len(result.config_changes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--design", action="append", help="a tuning design (repeatable)")
    args = parser.parse_args(argv)
    designs = args.design or [DEFAULT_DESIGN, "legacy"]
    csv_dir = default_csv_dir()
    source = (
        {"data_source": "csv", "csv_dir": str(csv_dir)} if csv_dir else {"data_source": "synthetic"}
    )
    where = f"real SPY/QQQ/DIA ({csv_dir})" if csv_dir else "the synthetic market (no real history)"
    print(f"walk-forward {START}..{END} on {where}, replays on the research kernel in process")
    run_backtest_job("2024-10-01", END, config_source="walk_forward", design="legacy", **source)
    for design in designs:
        seconds, months, changes = walk_forward_seconds(design, source)
        verdict = "met" if seconds <= TARGET_SECONDS else "NOT met"
        print(
            f"  {design:<28} {seconds:6.1f} s wall ({months} months tuned, {changes} changes)"
            f"  target <= {TARGET_SECONDS:.0f} s: {verdict}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
