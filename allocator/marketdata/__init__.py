"""Market data sources behind one interface: :class:`allocator.marketdata.base.MarketDataSource`."""

from allocator.marketdata.base import BAR_COLUMNS, MarketDataSource, validate_bars

__all__ = ["BAR_COLUMNS", "MarketDataSource", "validate_bars", "make_source", "SOURCE_NAMES"]

SOURCE_NAMES = ("alphavantage", "csv", "synthetic")


def make_source(name: str, *, settings=None, csv_dir=None, outputsize: str = "compact"):
    """Build the source called ``name`` (``alphavantage``, ``csv`` or ``synthetic``)."""
    from allocator.exceptions import SettingsError

    if name == "synthetic":
        from allocator.marketdata.synthetic import SyntheticSource

        return SyntheticSource()
    if name == "csv":
        from allocator.marketdata.csvsource import CsvSource

        if csv_dir is None:
            raise SettingsError("--csv-dir is required with --source csv: a folder of SYMBOL.csv")
        return CsvSource(csv_dir)
    if name == "alphavantage":
        from allocator.marketdata.alphavantage import AlphaVantageSource
        from allocator.settings import get_settings

        settings = settings or get_settings()
        return AlphaVantageSource.from_settings(settings, outputsize=outputsize)
    raise SettingsError(f"unknown source {name!r}: choose one of {', '.join(SOURCE_NAMES)}")
