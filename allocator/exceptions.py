"""Every error a user or a vendor can cause, as named types.

Each message names the input at fault and says what to do about it; the CLI prints it on one line.
"""

from __future__ import annotations


class AllocatorError(Exception):
    """Base class of every error this package raises on purpose."""


class SettingsError(AllocatorError):
    """A required setting is missing or malformed."""


class ConfigValidationError(AllocatorError):
    """A trading config value is invalid; ``field`` names it."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.reason = message
        super().__init__(f"trading_config.{field}: {message}")


class ConfigNotFoundError(AllocatorError):
    """No trading config version covers the requested date."""


class CalendarError(AllocatorError):
    """A date is not an NYSE session where one is required, or is malformed."""


class DatabaseError(AllocatorError):
    """The database is unreachable or not migrated."""


class MarketDataError(AllocatorError):
    """A market data source failed for one symbol; ``symbol`` names it.

    ``stops_source`` is true when no other symbol can succeed now either (the key was refused,
    the plan's quota is spent): an ingest then stops asking that source, and reports the
    symbols after it as not attempted instead of spending more of the quota.
    """

    transient = False
    stops_source = False

    def __init__(self, symbol: str, message: str):
        self.symbol = symbol
        super().__init__(f"{symbol}: {message}")


class VendorError(MarketDataError):
    """The vendor answered with an error message (invalid call, unknown symbol)."""


class RateLimitError(MarketDataError):
    """The vendor refused the call for rate (per-minute or per-day) reasons."""

    def __init__(self, symbol: str, message: str, *, transient: bool):
        super().__init__(symbol, message)
        self.transient = transient


class PremiumRequiredError(MarketDataError):
    """The request needs a premium vendor plan (for example ``outputsize=full``)."""


class TransientVendorError(MarketDataError):
    """A failure worth retrying: HTTP 5xx, timeout, dropped connection."""

    transient = True


class MalformedResponseError(MarketDataError):
    """The vendor's answer could not be parsed or failed validation."""


class MissingBarsError(AllocatorError):
    """Bars a job needs are not stored (for example, yesterday's fetch failed)."""

    def __init__(self, missing: dict[str, list[str]], message: str | None = None):
        self.missing = missing
        detail = "; ".join(f"{sym} {', '.join(days)}" for sym, days in sorted(missing.items()))
        super().__init__(message or f"missing bars: {detail}")


class JobError(AllocatorError):
    """A job was asked for something it cannot do (bad argument, unknown job)."""


class MixedHistoryError(JobError):
    """Synthetic bars and real ones would meet in one database, or in one backtest.

    Refused before anything is written: a database holds one kind of history (the synthetic
    market's made-up prices, or a real source's), and a backtest reads one source unless asked.
    """


class BacktestError(AllocatorError):
    """The backtest cannot run over the period asked for (history, configs)."""


class BrokerError(AllocatorError):
    """The broker refused a request or could not be reached; ``status`` is its HTTP status
    (None without an answer), ``code`` and ``message`` its own error code and text."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class OrderRejectedError(BrokerError):
    """The broker rejected one or more of the day's orders (buying power, an asset that is not
    fractionable, the market closed): each is recorded with the broker's reason."""


class ReconciliationError(BrokerError):
    """The book and the broker disagree (an order, a position or the cash)."""
