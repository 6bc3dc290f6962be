"""The pages' Jinja2 templates and the filters that format their numbers.

Every figure on a page goes through :mod:`allocator.notebook.formats` (the reports' formatting
layer), so a page and a report show the same number the same way: ``$1,234`` (whole dollars),
``$8,561.55`` (prices and trade amounts), ``6.2 %``, ``0.66``; a missing figure is ``—``, never
``None`` or ``NaN``.
"""

from __future__ import annotations

import math
from pathlib import Path

from fastapi.templating import Jinja2Templates

from allocator.notebook.formats import MISSING, cents, count, dollars, percent, ratio

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def fixed(value: object, digits: int = 2) -> str:
    """A number with ``digits`` decimals and thousands separators (``—`` when missing)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return MISSING
    return f"{number:,.{digits}f}" if math.isfinite(number) else MISSING


def signed(value: object, digits: int = 3) -> str:
    """A score with its sign: ``+0.814``, ``-0.120``."""
    text = fixed(value, digits)
    return text if text == MISSING or text.startswith("-") else f"+{text}"


def quantity(value: object) -> str:
    """Shares to the project's 4 decimals: ``0.8097``."""
    return fixed(value, 4)


def when(value: object) -> str:
    """An ISO timestamp as ``2026-11-09 12:00:00`` (UTC, to the second)."""
    return str(value)[:19].replace("T", " ") if value else MISSING


def seconds(value: object) -> str:
    text = fixed(value, 1)
    return text if text == MISSING else f"{text} s"


templates.env.filters.update(
    {
        "dollars": dollars,
        "cents": cents,
        "percent": percent,
        "ratio": ratio,
        "count": count,
        "fixed": fixed,
        "signed": signed,
        "quantity": quantity,
        "when": when,
        "seconds": seconds,
    }
)
