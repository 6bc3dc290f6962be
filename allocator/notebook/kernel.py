"""A job's kernel: its time limits, its presence, and one notebook executed in it by papermill.

:func:`execute_notebook` runs a notebook in a fresh kernel with a start timeout and a per-cell
timeout (``ALLOCATOR_START_TIMEOUT``, ``ALLOCATOR_CELL_TIMEOUT``), on IPC sockets in a private
folder, with :data:`~allocator.notebook.supervision.KERNEL_START_LINES` tying the kernel to the
runner; it returns the error's one-line summary instead of raising. :func:`one_line`,
:func:`redact_file` and :func:`git_commit` are the small tools the runner records a run with.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from allocator.exceptions import SettingsError
from allocator.notebook.supervision import KERNEL_START_LINES
from allocator.shell.atomic import write_atomic, write_error_line
from allocator.shell.settings import PROJECT_ROOT, mask_url

ENV_CELL_TIMEOUT = "ALLOCATOR_CELL_TIMEOUT"
ENV_START_TIMEOUT = "ALLOCATOR_START_TIMEOUT"
DEFAULT_CELL_TIMEOUT = 900.0
DEFAULT_START_TIMEOUT = 120.0
ENV_JOB_TIMEOUT = "ALLOCATOR_JOB_TIMEOUT"
DEFAULT_JOB_TIMEOUT = 1800.0


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(
            f"{name}={raw!r} is not a number of seconds, e.g. {default:g}"
        ) from None
    if not 0 < value < 10**7:  # also refuses nan and inf
        raise SettingsError(f"{name}={raw!r}: set it to a positive number of seconds")
    return value


def job_timeout() -> float:
    """The whole job's limit in seconds, from ``ALLOCATOR_JOB_TIMEOUT`` (default 30 minutes)."""
    return _seconds(ENV_JOB_TIMEOUT, DEFAULT_JOB_TIMEOUT)


def timeouts() -> tuple[float, float]:
    """(kernel start timeout, per-cell execution timeout) in seconds, from the environment."""
    return (
        _seconds(ENV_START_TIMEOUT, DEFAULT_START_TIMEOUT),
        _seconds(ENV_CELL_TIMEOUT, DEFAULT_CELL_TIMEOUT),
    )


def require_kernel(name: str) -> None:
    """Raise a :class:`SettingsError` naming ``make install`` when kernel ``name`` is missing."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        raise SettingsError(
            f"Jupyter kernel {name!r} is not installed: run `make install` (it runs "
            f"`python -m ipykernel install --sys-prefix --name {name}` in the virtualenv)"
        ) from None


def one_line(text: str, secrets: Iterable[str] = (), limit: int = 500) -> str:
    """``text`` on one line, passwords and known secret values masked, at most ``limit`` chars."""
    line = " ".join(str(text).split())
    line = mask_url(line)
    for secret in secrets:
        if secret:
            line = line.replace(secret, "***")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def execute_notebook(
    notebook: Path,
    output: Path,
    parameters: Mapping[str, object],
    *,
    kernel_name: str,
    cwd: Path,
    start_timeout: float,
    cell_timeout: float,
) -> str | None:
    """Execute ``notebook`` into ``output``; returns None on success or the error's summary.

    papermill saves the output notebook after every cell and before it raises, so ``output`` is
    complete whether the notebook succeeds, raises, times out or loses its kernel. When the
    checkout differs from HEAD, ``output`` records how, the notebook's own diff included
    (:func:`~allocator.notebook.hygiene.checkout_changes`, taken before the kernel starts).
    """
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from traitlets.config import Config

    from allocator.notebook.hygiene import checkout_changes, record_checkout

    changes = checkout_changes(notebook)

    config = Config()
    # IPC sockets instead of localhost TCP: no ports to other local users, and no ipykernel
    # "running over TCP without encryption" warning in every cron log. They live in a private
    # folder per run: with the default (kernel-ipc-N in the notebook's folder) two runs started
    # together pick the same socket names and break each other ("Invalid Signature").
    sockets = tempfile.TemporaryDirectory(prefix="allocator-kernel-")
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = os.path.join(sockets.name, "kernel")
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=dict(parameters),
            kernel_name=kernel_name,
            cwd=str(cwd),
            progress_bar=False,
            log_output=False,
            request_save_on_cell_execute=True,
            start_timeout=start_timeout,
            execution_timeout=cell_timeout,
            config=config,
            # The kernel's own log goes to our stderr, i.e. the cron log. At shutdown
            # jupyter_client interrupts the kernel first, and ipykernel sometimes logs a harmless
            # "KeyboardInterrupt caught in kernel" ERROR. Cell errors are in the notebook and a
            # dead kernel is reported as such, so the kernel's log is only noise there.
            # KERNEL_START_LINES ties the kernel to this process (allocator.shell.guard).
            # A batch kernel keeps no input history (no SQLite database written by every job).
            # Its file descriptors 1 and 2 stay captured: without that, what the kernel's
            # libraries print there at shutdown (tornado's "Uncaught exception in ZMQStream
            # callback" on an interrupted kernel) lands on our stderr, i.e. in the one-line error.
            extra_arguments=[
                "--IPKernelApp.log_level=CRITICAL",
                f"--IPKernelApp.exec_lines={KERNEL_START_LINES}",
                "--HistoryManager.enabled=False",
            ],
        )
    except papermill.PapermillExecutionError as exc:
        evalue = str(exc.evalue).strip().splitlines()
        where = f" (cell In [{exc.exec_count}])" if exc.exec_count else ""
        return f"{exc.ename}: {evalue[0] if evalue else ''}".rstrip(": ") + where
    except CellTimeoutError:
        return (
            f"CellTimeoutError: a cell ran longer than {cell_timeout:g} s "
            f"({ENV_CELL_TIMEOUT}); the kernel was stopped"
        )
    except DeadKernelError as exc:
        return f"DeadKernelError: the kernel died ({exc})"
    except OSError as exc:  # a save of the archived notebook failed (a full disk)...
        return write_error_line(exc, "executing the notebook")
    except Exception as exc:  # noqa: BLE001 - a kernel that never started, a broken notebook...
        return f"{type(exc).__name__}: {exc}"
    finally:
        sockets.cleanup()
        if changes and output.is_file() and output.stat().st_size:
            record_checkout(output, changes)
    return None


def git_commit(root: Path = PROJECT_ROOT) -> str | None:
    """HEAD of the checkout at ``root``, with ``-dirty`` when tracked or new files changed."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True
        )
        return done.stdout.strip()

    try:
        head, status = git("rev-parse", "HEAD"), git("status", "--porcelain")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if status else head


def redact_file(path: Path, secrets: Iterable[str]) -> int:
    """Replace every secret value in the text file ``path`` with ``***``; returns the count."""
    text = path.read_text(encoding="utf-8")
    count = 0
    for secret in secrets:
        count += text.count(secret)
        text = text.replace(secret, "***")
    if count:
        write_atomic(path, text)
    return count
