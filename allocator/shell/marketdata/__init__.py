"""Market data sources behind one interface: :class:`.base.MarketDataSource`."""

from allocator.shell.marketdata.base import BAR_COLUMNS, MarketDataSource, validate_bars

__all__ = [
    "BAR_COLUMNS",
    "MarketDataSource",
    "validate_bars",
    "make_source",
    "make_quote_source",
    "SOURCE_NAMES",
]

SOURCE_NAMES = ("alphavantage", "tiingo", "csv", "synthetic")


#: A folder of SYMBOL.csv files used when a CSV source is asked for without one.
ENV_MARKET_CSV_DIR = "ALLOCATOR_MARKET_CSV_DIR"


def make_source(name: str, *, settings=None, csv_dir=None, outputsize: str = "compact"):
    """Build the source called ``name`` (``alphavantage``, ``tiingo``, ``csv`` or ``synthetic``).

    ``outputsize`` applies to Alpha Vantage only; Tiingo always serves the whole range asked for.
    """
    from allocator.exceptions import SettingsError

    if name == "synthetic":
        from allocator.shell.marketdata.synthetic import SyntheticSource

        return SyntheticSource()
    if name == "csv":
        import os

        from allocator.shell.marketdata.csvsource import CsvSource

        csv_dir = csv_dir or os.environ.get(ENV_MARKET_CSV_DIR) or None
        if csv_dir is None:
            raise SettingsError(
                f"--csv-dir is required with --source csv (or set {ENV_MARKET_CSV_DIR}): "
                "a folder of SYMBOL.csv"
            )
        return CsvSource(csv_dir)
    if name == "alphavantage":
        from allocator.shell.marketdata.alphavantage import AlphaVantageSource
        from allocator.shell.settings import get_settings

        settings = settings or get_settings()
        return AlphaVantageSource.from_settings(settings, outputsize=outputsize)
    if name == "tiingo":
        from allocator.shell.marketdata.tiingo import TiingoSource
        from allocator.shell.settings import get_settings

        return TiingoSource.from_settings(settings or get_settings())
    raise SettingsError(f"unknown source {name!r}: choose one of {', '.join(SOURCE_NAMES)}")


def make_quote_source(settings=None):
    """The live quote source ``ALLOCATOR_QUOTE_SOURCE`` names, or ``None`` when it is unset.

    With ``None`` the execute job fills from ``price_history`` only and otherwise leaves orders
    pending for the fetch job. ``alphavantage`` needs ``ALPHAVANTAGE_API_KEY``; a missing key or
    an unknown value is a :class:`~allocator.exceptions.SettingsError` naming the variable.
    """
    from allocator.exceptions import SettingsError
    from allocator.shell.settings import QUOTE_SOURCES, get_settings

    settings = settings or get_settings()
    name = settings.quote_source
    if name in (None, "", "none"):
        return None
    if name == "alphavantage":
        from allocator.shell.marketdata.alphavantage import AlphaVantageQuotes

        return AlphaVantageQuotes.from_settings(settings)
    raise SettingsError(
        f"ALLOCATOR_QUOTE_SOURCE={name!r} is not a quote source: use {' or '.join(QUOTE_SOURCES)}"
    )
