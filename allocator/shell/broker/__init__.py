"""Brokers behind the execute step: ``ALLOCATOR_BROKER=simulated`` (the default) or ``alpaca``.

- :mod:`~allocator.shell.broker.base` — orders, account, clock and positions as plain values,
  the :class:`~allocator.shell.broker.base.Broker` protocol and the deterministic client
  order ids;
- :mod:`~allocator.shell.broker.alpaca` — Alpaca's Trading API over HTTP (paper by default).

The simulated broker is the absence of one: :func:`make_broker` returns None and the jobs fill at
the bars' official open, exactly as before brokers existed. The decision, the signal, the ledger
and the backtest never know which broker filled an order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from allocator.shell.broker.base import Broker
    from allocator.shell.settings import Settings


def make_broker(settings: Settings) -> Broker | None:
    """The broker ``settings`` name (``ALLOCATOR_BROKER``): None for ``simulated``, an
    :class:`~allocator.shell.broker.alpaca.AlpacaBroker` for ``alpaca`` (its keys required;
    a live endpoint was already refused by the settings unless ``ALLOCATOR_BROKER_LIVE=yes``)."""
    if settings.broker != "alpaca":
        return None
    from allocator.shell.broker.alpaca import AlpacaBroker

    key_id, secret = settings.require_alpaca_keys()
    return AlpacaBroker(key_id, secret, settings.apca_base_url, live=settings.broker_is_live)
