"""Whole-number command-line options with an allowed range, checked by argparse.

``--limit 99999999999999999999`` or ``--limit -5`` must be refused on one line naming the option
and its range (exit 2), not end in a traceback or be read as "no limit".
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

#: At most this many runs are listed by ``allocator runs --limit``.
MAX_RUNS_LIMIT = 10_000
#: ``allocator backfill --days``: NYSE sessions since 1990 are about 9,300.
MAX_DAYS = 10_000
#: ``allocator sweep --workers``: local cluster processes.
MAX_WORKERS = 256
_WHOLE = re.compile(r"[+-]?[0-9]{1,18}")
_DIGITS = re.compile(r"[+-]?[0-9]+")


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type`` taking a whole number from ``low`` to ``high`` (both included)."""

    def parse(text: str) -> int:
        shown = text if len(text) <= 40 else f"{text[:37]}..."
        if not _DIGITS.fullmatch(text):
            raise argparse.ArgumentTypeError(
                f"{shown!r} is not a whole number: give one from {low:,} to {high:,}"
            )
        value = int(text) if _WHOLE.fullmatch(text) else None  # 19+ digits: out of every range
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{shown} is out of range: give a whole number from {low:,} to {high:,}"
            )
        return value

    parse.__name__ = "whole number"  # argparse names the type in some messages
    return parse
