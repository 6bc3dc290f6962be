"""The SHA-256 of a file: archived notebooks, their Parquet sidecars and database backups."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_of(path: Path | str) -> str:
    """The SHA-256 of the file at ``path`` in hex, as sha256sum prints it; OSError if unreadable."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
