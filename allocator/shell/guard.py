"""A job's kernel is tied to its runner: when the runner dies, the kernel stops committing.

The runner (``allocator run``) puts its PID in ``ALLOCATOR_RUNNER_PID`` and starts the kernel
with ``attach()`` as a start-up line, so in the kernel, and only there:

1. Linux's ``PR_SET_PDEATHSIG`` makes the kernel receive ``SIGKILL`` the moment its runner dies
   (an uncommitted transaction is rolled back by the database);
2. every engine the kernel makes checks, before each commit, that its parent is still the runner
   (:func:`require_runner`, hooked by :func:`guard_engine`), so a kernel that outlives its runner
   (on a system without the signal) commits nothing.

Outside a kernel started by the runner, nothing here does anything.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

from allocator.exceptions import AllocatorError

ENV_RUNNER_PID = "ALLOCATOR_RUNNER_PID"
_PR_SET_PDEATHSIG = 1
_attached = False


class RunnerGone(AllocatorError):
    """The runner that started this kernel is gone: nothing more may be committed."""


def runner_pid() -> int | None:
    raw = os.environ.get(ENV_RUNNER_PID, "")
    return int(raw) if raw.isdigit() else None


def attached() -> bool:
    """True in a kernel that :func:`attach` tied to its runner."""
    return _attached


def _die_with_parent() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def attach() -> None:
    """In a kernel started by the runner: die with it, and check it before every commit.

    A kernel whose runner is already gone when this runs exits at once.
    """
    global _attached
    pid = runner_pid()
    if pid is None or pid == os.getpid():
        return
    _die_with_parent()
    if os.getppid() != pid:  # the runner died before the signal was armed
        os._exit(1)
    _attached = True


def require_runner() -> None:
    """Raise :class:`RunnerGone` when this kernel's runner has died (no-op elsewhere)."""
    pid = runner_pid()
    if _attached and pid is not None and os.getppid() != pid:
        raise RunnerGone(
            f"the runner (PID {pid}) that started this kernel is gone: nothing is committed"
        )


def guard_engine(engine) -> None:
    """Check the runner before every commit on ``engine`` (only in an attached kernel)."""
    if not _attached:
        return
    from sqlalchemy import event

    event.listen(engine, "commit", lambda conn: require_runner())
