"""The production cron schedule (and logrotate snippet) for this checkout, as text to install.

The schedule is the design document's, with three corrections: the monthly job runs on every
weekday and decides "first session of the month" itself (cron ORs day-of-month with day-of-week,
so the design document's ``30 9 1-3 * 1-5`` fires on every weekday anyway); the backup runs
``allocator db backup`` (a checksum, 30 days kept, no password on the line) instead of the design
document's ``pg_dump ... $(date +%Y%m%d)``, whose bare ``%`` cron turns into a newline; and the
design document's API-server watchdog line is replaced (see :data:`WATCHDOG_NOTE`): with
``--with-web`` (``with_web=True``) a line every 5 minutes runs ``allocator serve --if-down``,
which asks the web app's ``/api/health`` and starts the app only when nothing answers.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import sys
import time
from dataclasses import replace
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url

from allocator.exceptions import JobError
from allocator.notebook.jobspec import JobSpec, scheduled_jobs
from allocator.shell.settings import PROJECT_ROOT, Settings, mask_url

CRON_TZ = "America/New_York"
BACKUP_CRON = "0 18 * * *"
#: ``allocator health`` on weekdays, 30 minutes after the 16:35 fetch job (time to retry a vendor).
HEALTH_CRON = "5 17 * * 1-5"
LOGROTATE_TEMPLATE = "capital-allocator.logrotate"
_ADDRESS = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+$")

#: Every five minutes, as the design document asks ("check every 5 minutes, restart if down").
WEB_CRON = "*/5 * * * *"
WATCHDOG_NOTE = """\
# The design document's API-server watchdog
#   */5 * * * * pgrep -f "uvicorn main:app" || cd /path && uvicorn main:app ... &
# parses as (pgrep || cd) && uvicorn &: when a server is running, pgrep succeeds and another
# uvicorn is started anyway (from the wrong folder), every five minutes; and pgrep -f also
# matches the cron shell's own command line. It is not used."""
NO_WEB_NOTE = """\
# No API-server watchdog line: `allocator crontab --with-web` adds one for the read-only web
# app (`allocator serve`), checked through its /api/health every five minutes."""


def machine_timezone() -> str:
    """The zone cron uses on this machine: ``$TZ``, else /etc/localtime's target, else its name."""
    if os.environ.get("TZ"):
        return os.environ["TZ"].lstrip(":")
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    timezone_file = Path("/etc/timezone")
    if timezone_file.is_file():
        name = timezone_file.read_text().strip()
        if name:
            return name
    return time.tzname[0]


def _same_clock(zone: str) -> bool:
    """True when ``zone`` shows the same wall-clock time as New York all year."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    ny = ZoneInfo(CRON_TZ)
    year = dt.date.today().year
    probes = [dt.datetime(year, month, 15, 12, tzinfo=ny) for month in (1, 7)]
    return all(p.astimezone(tz).replace(tzinfo=None) == p.replace(tzinfo=None) for p in probes)


def _clock(cron: str) -> str:
    minute, hour = (int(f) for f in cron.split()[:2])
    return f"{hour:02d}:{minute:02d}"


def converted_times(cron: str, zone: str) -> str | None:
    """An ET cron time on ``zone``'s clock in winter and in summer (None: unknown zone)."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    minute, hour = (int(f) for f in cron.split()[:2])
    year = dt.date.today().year
    ny = ZoneInfo(CRON_TZ)
    winter = dt.datetime(year, 1, 15, hour, minute, tzinfo=ny).astimezone(tz)
    summer = dt.datetime(year, 7, 15, hour, minute, tzinfo=ny).astimezone(tz)
    return f"{winter:%H:%M} while New York is on EST, {summer:%H:%M} while on EDT"


def allocator_command() -> str:
    """How cron starts ``allocator``: this interpreter (the venv's) with ``-m allocator``."""
    python = Path(sys.executable)
    if not python.is_absolute() or not python.exists():
        python = PROJECT_ROOT / ".venv" / "bin" / "python"
    return f"{shlex.quote(str(python))} -m allocator"


def check_address(address: str) -> str:
    if not _ADDRESS.match(address):
        raise JobError(f"--mail {address!r} is not an e-mail address like ops@example.com")
    return address


def cron_line(
    when: str, root: Path, command: str, log: Path, mail: str | None, failed: tuple[str, str]
) -> str:
    """``when cd ROOT && COMMAND >> LOG 2>&1``, and with ``mail`` ``|| echo BODY | mail -s SUBJECT``
    where ``failed`` is (subject, body) and the body names the log."""
    line = f"{when} cd {shlex.quote(str(root))} && {command} >> {shlex.quote(str(log))} 2>&1"
    if mail:
        subject, body = (shlex.quote(text) for text in failed)
        line += f" || echo {body} | mail -s {subject} {shlex.quote(mail)}"
    return line


def job_line(spec: JobSpec, *, root: Path, command: str, log_dir: Path, mail: str | None) -> str:
    """One crontab line: cd into the checkout, run the job, append to its log, mail on failure."""
    log = log_dir / spec.log_name
    failed = (
        f"Capital Allocator: {spec.name} failed",
        f"allocator run {spec.name} failed; see {log}",
    )
    return cron_line(spec.cron, root, f"{command} run {spec.name}", log, mail, failed)


def health_lines(*, root: Path, command: str, log_dir: Path, mail: str | None) -> list[str]:
    """The daily ``allocator health`` line, after the fetch job; it exits 1 on a failed check."""
    log = log_dir / "health.log"
    failed = (
        "Capital Allocator: health check failed",
        f"allocator health found a failed check; see {log}",
    )
    line = cron_line(HEALTH_CRON, root, f"{command} health --sessions-only", log, mail, failed)
    return [
        "# health: the design document's daily, weekly and monthly checks of the day's session",
        "# (17:05 ET, after the fetch job); failed checks are also posted to ALERT_WEBHOOK_URL.",
        line,
        "",
    ]


def backup_lines(
    database_url: str,
    backup_dir: Path,
    *,
    root: Path,
    command: str,
    log_dir: Path,
    mail: str | None,
) -> list[str]:
    """The daily backup: comments and one cron line running ``allocator db backup``.

    The command reads DATABASE_URL (with its password) from the environment or ``.env`` as the
    jobs do, so no password is ever written here; it keeps 30 days of backups in the folder.
    """
    try:
        url = make_url(database_url)
        backend = url.get_backend_name()
    except Exception:  # noqa: BLE001 - the jobs report a malformed URL; here there is no line
        url, backend = None, "unknown"
    if backend == "sqlite" and url.database in (None, "", ":memory:"):
        backend = "in-memory SQLite"
    lines = [
        "# DATABASE BACKUP: daily at 18:00 ET, `allocator db backup` (pg_dump -Fc for PostgreSQL,",
        "# SQLite's online backup for SQLite), a .sha256 beside each file, 30 days kept.",
        f"# DATABASE_URL = {mask_url(database_url)} (from .env; its password never appears here)",
        "# Restore: allocator db restore FILE [--force] (see the README, Backup and restore).",
    ]
    if backend not in ("postgresql", "sqlite"):
        return [*lines, f"# (no backup line: `allocator db backup` cannot back up a {backend} URL)"]
    log = log_dir / "backup.log"
    failed = ("Capital Allocator: backup failed", f"allocator db backup failed; see {log}")
    backup = f"{command} db backup --to {shlex.quote(str(backup_dir))}"
    return [*lines, cron_line(BACKUP_CRON, root, backup, log, mail, failed)]


def web_lines(*, root: Path, command: str, log_dir: Path, mail: str | None, port: int) -> list[str]:
    """The web app's watchdog: every 5 minutes ``allocator serve --port PORT --if-down``.

    ``--if-down`` asks ``http://127.0.0.1:PORT/api/health``; when the app answers (even 503,
    database not ready) it exits 0 at once, printing nothing; when nothing answers it logs one
    line and starts the app, which then runs as that cron job until it stops. A port held by
    something else, or a server that hangs, makes the start fail (exit 1), and with ``mail``
    that is mailed.
    """
    log = log_dir / "web.log"
    failed = (
        "Capital Allocator: web app failed",
        f"allocator serve could not start or stopped with an error; see {log}",
    )
    serve = f"{command} serve --port {port} --if-down"
    return [
        "# web app watchdog: every 5 minutes, `allocator serve --if-down` asks",
        f"# http://127.0.0.1:{port}/api/health and starts the read-only web app (loopback only)",
        "# when nothing answers; it prints nothing while the app is up.",
        cron_line(WEB_CRON, root, serve, log, mail, failed),
        "",
    ]


def _preamble_lines(root: Path, log_dir: Path, zone: str) -> list[str]:
    """The crontab's opening comments: how to install it, secrets, holidays and CRON_TZ."""
    return [
        f"# Capital Allocator - production schedule for {root}",
        "# Generated by `allocator crontab`. Install: save this output to a file and run",
        "# `crontab FILE` as the user that owns the checkout (it REPLACES that user's crontab),",
        "# or paste it into `crontab -e`. Lines are run by /bin/sh.",
        "#",
        f"# Before installing: mkdir -p {shlex.quote(str(log_dir))}",
        "# Secrets (DATABASE_URL with its password, ALPHAVANTAGE_API_KEY) come from",
        f"# {root / '.env'} (chmod 600), never from this file.",
        "#",
        "# Holidays: every job runs on weekdays and asks the NYSE calendar itself; on a day with",
        "# no session it records a skipped run ('market closed') and exits 0.",
        "#",
        "# All times are Eastern Time, via CRON_TZ below. CRON_TZ is honoured by cronie (RHEL,",
        "# Fedora, Arch, openSUSE) and some other Vixie-cron variants, not by every cron (check",
        "# `man 5 crontab` here for CRON_TZ). A cron that ignores it uses the machine's zone.",
        f"# This machine's zone: {zone}.",
    ]


def _zone_lines(jobs: list[JobSpec], zone: str) -> list[str]:
    """Whether the machine keeps New York time; if not, each job's time in the machine's zone."""
    if _same_clock(zone):
        return ["# It keeps New York time, so the times below are right either way."]
    out = [
        "# It differs from New York: if this cron ignores CRON_TZ, convert every time below",
        f"# to {zone} (and again at each daylight-saving change), e.g.:",
    ]
    for spec in jobs:
        converted = converted_times(spec.cron, zone)
        if converted:
            out.append(f"#   {spec.name} {_clock(spec.cron)} ET = {converted}")
    return out


def _scheduled_lines(
    jobs: list[JobSpec], *, root: Path, command: str, log_dir: Path, mail: str | None
) -> list[str]:
    """Each scheduled job: its description, why a monthly job runs daily, its cron line."""
    out: list[str] = []
    for spec in jobs:
        out.append(f"# {spec.name}: {spec.description}")
        if spec.frequency == "monthly":
            out += [
                "# Every weekday on purpose: the job itself runs on the first NYSE session of the",
                "# month and records a skipped run otherwise (`30 9 1-3 * 1-5` would not help:",
                "# cron ORs day-of-month and day-of-week, so it fires on every weekday).",
            ]
        out.append(job_line(spec, root=root, command=command, log_dir=log_dir, mail=mail))
        out.append("")
    return out


def _unscheduled_lines(missing: list[JobSpec], notebooks_dir: Path) -> list[str]:
    """A comment for each job left out because its notebook is not in this checkout."""
    out: list[str] = []
    for spec in missing:
        out.append(f"# {spec.name} ({spec.description}): not scheduled, because")
        out.append(f"# {notebooks_dir / spec.notebook} does not exist in this checkout.")
        out.append("")
    return out


#: The execute job's time with a real broker: before the open, so Alpaca queues the day orders
#: for the 9:30 open (orders sent outside regular hours that are not for extended hours are
#: queued for the next open), 30 minutes ahead of it to re-run a failed execution in time.
BROKER_EXECUTE_CRON = "0 9 * * 1-5"


def for_broker(spec: JobSpec, broker: str) -> JobSpec:
    """``spec`` as scheduled with ``broker``: the execute job at 9:00 ET with ``alpaca``."""
    if spec.name != "execute" or broker == "simulated":
        return spec
    return replace(
        spec,
        cron=BROKER_EXECUTE_CRON,
        description=(
            f"send the day's orders to {broker} before the open (9:00 AM ET): queued, they "
            "fill at or right after the 9:30 open; the fetch job reconciles them"
        ),
    )


def crontab_text(
    settings: Settings,
    *,
    log_dir: Path | None = None,
    mail: str | None = None,
    backup_dir: Path | None = None,
    root: Path = PROJECT_ROOT,
    command: str | None = None,
    zone: str | None = None,
    notebooks_dir: Path | None = None,
    web_port: int | None = None,
) -> str:
    """The whole crontab for this checkout (paths absolute, times in Eastern Time).

    A scheduled job whose notebook does not exist in ``notebooks_dir`` (default: the runner's
    notebooks folder) is listed as a comment, not scheduled: it would fail every weekday. With
    ``web_port``, the web app's watchdog line (:func:`web_lines`) for that port.
    """
    from allocator.notebook.runner import notebooks_dir_default

    notebooks_dir = Path(notebooks_dir or notebooks_dir_default())
    log_dir = Path(log_dir or settings.log_dir).expanduser().resolve()
    backup_dir = Path(backup_dir or settings.backup_dir).expanduser().resolve()
    command = command or allocator_command()
    zone = zone or machine_timezone()
    if mail:
        check_address(mail)
    scheduled = [for_broker(spec, settings.broker) for spec in scheduled_jobs()]
    jobs = [spec for spec in scheduled if (notebooks_dir / spec.notebook).is_file()]
    missing = [spec for spec in scheduled if spec not in jobs]
    out = _preamble_lines(root, log_dir, zone) + _zone_lines(jobs, zone)
    out += ["", f"CRON_TZ={CRON_TZ}", ""]
    out += _scheduled_lines(jobs, root=root, command=command, log_dir=log_dir, mail=mail)
    out += health_lines(root=root, command=command, log_dir=log_dir, mail=mail)
    out += _unscheduled_lines(missing, notebooks_dir)
    out += backup_lines(
        settings.database_url,
        backup_dir,
        root=root,
        command=command,
        log_dir=log_dir,
        mail=mail,
    )
    out += [""]
    if web_port is not None:
        out += web_lines(root=root, command=command, log_dir=log_dir, mail=mail, port=web_port)
    else:
        out += [NO_WEB_NOTE]
    out += [WATCHDOG_NOTE, ""]
    return "\n".join(out)


def logrotate_text(log_dir: Path) -> str:
    """The logrotate snippet for ``log_dir`` (the template beside this module)."""
    template = resources.files("allocator.notebook").joinpath(LOGROTATE_TEMPLATE).read_text()
    folder = str(Path(log_dir).expanduser().resolve())
    # logrotate reads a pattern with spaces only when it is double-quoted.
    pattern = f'"{folder}/*.log"' if " " in folder else f"{folder}/*.log"
    text = template.replace("@LOG_DIR@/*.log", pattern)
    return text.replace("@LOG_DIR@", folder)
