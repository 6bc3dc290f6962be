"""The shell — everything that touches the outside world.

- :mod:`~allocator.shell.settings` — settings from the environment and ``.env``;
- :mod:`~allocator.shell.calendar` — NYSE sessions and dates in America/New_York;
- :mod:`~allocator.shell.logs` — logging set-up for the CLI and the notebooks;
- :mod:`allocator.shell.persistence` — the database: schema, migrations and all SQL;
- :mod:`allocator.shell.marketdata` — market-data sources (vendor, CSV, synthetic).

The pure packages (:mod:`allocator.strategy`, :mod:`allocator.portfolio`,
:mod:`allocator.backtest`) never import from here; :mod:`allocator.jobs` composes the two.
"""
