"""The registry of notebook jobs: which notebook each runs, when, and on which dates.

A job is one parameterized notebook in ``notebooks/``. The runner (:mod:`.runner`) asks this
module three questions before any kernel starts: does the job exist, does it need an NYSE session
as its trade date, and should it run at all on that date (the monthly ``tune`` job runs only on
the first session of a month, unless forced).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from allocator.exceptions import JobError
from allocator.shell.calendar import is_first_session_of_month

DAILY, MONTHLY, MANUAL = "daily", "monthly", "manual"


@dataclass(frozen=True)
class JobSpec:
    """One job: its notebook, its calendar rule and its cron line (Eastern Time)."""

    name: str
    description: str
    #: The trade date must be an NYSE session (daily and monthly jobs); the backtest takes any date.
    needs_session: bool
    frequency: str
    #: Five cron fields in America/New_York, or None for jobs run by hand.
    cron: str | None = None
    #: Parameters the runner itself understands (``-p force True``), True or False, accepted
    #: even when the notebook does not declare them; they reach the notebook only if it does.
    runner_parameters: tuple[str, ...] = ()

    @property
    def notebook(self) -> str:
        return f"{self.name}.ipynb"

    @property
    def log_name(self) -> str:
        return f"{self.name}.log"


JOBS: dict[str, JobSpec] = {
    spec.name: spec
    for spec in (
        JobSpec(
            "fetch",
            "store the day's bars after the close (4:35 PM ET)",
            needs_session=True,
            frequency=DAILY,
            cron="35 16 * * 1-5",
        ),
        JobSpec(
            "signal",
            "compute the day's regime, risk and allocations before the open (6:00 AM ET)",
            needs_session=True,
            frequency=DAILY,
            cron="0 6 * * 1-5",
        ),
        JobSpec(
            "execute",
            "fill the day's orders at the open (9:30 AM ET)",
            needs_session=True,
            frequency=DAILY,
            cron="30 9 * * 1-5",
        ),
        JobSpec(
            "tune",
            "tune the trading config on the first session of each month (5:30 AM ET)",
            needs_session=True,
            frequency=MONTHLY,
            # Every weekday: cron ORs day-of-month with day-of-week, so "1-3 * 1-5" would fire on
            # every weekday anyway. The job decides "first session of the month" itself. It runs
            # before the 6:00 signal, so the month's first signal uses the month's version.
            cron="30 5 * * 1-5",
            runner_parameters=("force",),
        ),
        JobSpec(
            "backtest",
            "replay the daily jobs over a period (run by hand)",
            needs_session=False,
            frequency=MANUAL,
            # A period whose bars come from two sources is refused unless asked for
            # (allocator.notebook.replay_sources); the report then says so.
            runner_parameters=("mixed_sources",),
        ),
        JobSpec(
            "sweep",
            "backtest a grid of config overrides on Dask (research, run by hand)",
            needs_session=False,
            frequency=MANUAL,
        ),
        JobSpec(
            "study",
            "choose the product default in-sample and report it out of sample (run by hand)",
            needs_session=False,
            frequency=MANUAL,
        ),
        JobSpec(
            "walkforward",
            "compare monthly walk-forward tuning with the static presets (run by hand)",
            needs_session=False,
            frequency=MANUAL,
        ),
        JobSpec(
            "review",
            "tabulate the archived runs of a period for reviewers (run by hand)",
            needs_session=False,
            frequency=MANUAL,
        ),
    )
}


def get_job(name: str) -> JobSpec:
    """The job called ``name``, or a :class:`JobError` listing the known jobs."""
    try:
        return JOBS[name]
    except KeyError:
        raise JobError(f"unknown job {name!r}: choose one of {', '.join(JOBS)}") from None


def scheduled_jobs() -> list[JobSpec]:
    """The jobs cron runs, in the order of the trading day as the design document lists them."""
    return [spec for spec in JOBS.values() if spec.cron]


def skip_reason(spec: JobSpec, trade_date: dt.date, *, force: bool = False) -> str | None:
    """Why ``spec`` should not run on the session ``trade_date`` (None: it should run).

    Only the monthly job skips sessions: it runs on the first session of its month, or when forced.
    """
    if spec.frequency == MONTHLY and not force and not is_first_session_of_month(trade_date):
        return (
            f"{trade_date} is not the first session of {trade_date:%Y-%m}; "
            f"{spec.name} runs monthly (pass -p force True to run it anyway)"
        )
    return None
