"""Logging for the CLI and the jobs: one format, and secrets masked in every record."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from allocator.shell.settings import Settings, mask_url

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class SecretMaskingFilter(logging.Filter):
    """Replace known secret values and URL passwords in a record's final message.

    ``secrets`` is the list of values, or a function returning it, called at the first record:
    finding the database password parses ``DATABASE_URL`` with SQLAlchemy (~0.15 s of imports),
    which a command that logs nothing (``--help``, a usage error) need not pay.
    """

    def __init__(self, secrets: list[str] | Callable[[], list[str]]):
        super().__init__()
        self._source = secrets
        self._secrets: list[str] | None = None

    @property
    def secrets(self) -> list[str]:
        if self._secrets is None:
            found = self._source() if callable(self._source) else self._source
            self._secrets = [s for s in found if s and len(s) >= 4]
        return self._secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_url(message)
        for secret in self.secrets:
            masked = masked.replace(secret, "***")
        if masked != message:
            record.msg, record.args = masked, None
        return True


def configure_logging(settings: Settings | None = None, level: int = logging.INFO) -> None:
    """Log to stderr (cron redirects it into the job's log file) with secrets masked."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    handler.addFilter(SecretMaskingFilter(settings.secret_values if settings else []))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_allocator", False):
            root.removeHandler(existing)
    handler._allocator = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("alembic", "urllib3", "papermill", "traitlets", "nbconvert"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
