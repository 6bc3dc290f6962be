"""Atomic file writes: a reader sees the old file or the whole new one, never a part.

Every archive write (the executed notebook at each papermill save, its Parquet sidecars, the
HTML and Markdown reports, their figures, the runs index) goes to a temporary file in the
target's folder, is flushed and ``fsync``-ed, then renamed over the target, and the folder is
``fsync``-ed so the rename survives a crash. When anything fails (a full disk: ``ENOSPC``, a
read-only folder), the temporary file is removed and an :class:`OSError` naming the *target*
(not the temporary file) and the cause is raised: no truncated file, no stray ``.tmp``.

Temporary names start with a dot (``.<name>.<pid>.<random>.tmp``), so no glob of the archive
(``*.ipynb``, ``<stem>_*``) ever picks one up.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


def temporary_path(path: Path) -> Path:
    """A fresh hidden name beside ``path`` for its temporary file."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def fsync_folder(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _naming(error: OSError, path: Path) -> OSError:
    """``error`` about ``path``, the target, rather than its temporary file (same errno/type)."""
    named = OSError(error.errno, error.strerror or str(error), str(path))
    return named if error.errno is not None else error


@contextlib.contextmanager
def atomic_path(path: Path | str, *, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to; publish it when the block ends.

    The block writes the temporary file whole (with any library: pyarrow, nbformat...). Then
    it is ``fsync``-ed, given ``mode`` and renamed over ``path``. If the block or any step
    raises, the temporary file is removed and nothing at ``path`` changes; an :class:`OSError`
    is raised again naming ``path``.
    """
    path = Path(path)
    tmp = temporary_path(path)
    try:
        yield tmp
        descriptor = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _naming(exc, path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def write_atomic(path: Path | str, data: bytes | str, *, mode: int = 0o644) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically (:func:`atomic_path`); ``path``."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path, mode=mode) as tmp, open(tmp, "xb") as handle:
        handle.write(payload)
        handle.flush()
    return path


def write_error_line(exc: BaseException, what: str = "writing") -> str:
    """``cannot write PATH: CAUSE`` for a file that could not be written, else what failed."""
    if isinstance(exc, OSError) and exc.filename:
        return f"cannot write {exc.filename}: {exc.strerror or exc}"
    return f"{what} failed: {type(exc).__name__}: {exc}"
