"""Which config applies on each date: stored versions, or one config for every date."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from allocator.exceptions import BacktestError
from allocator.strategy.config import TradingConfig


@dataclass(frozen=True)
class ScheduledConfig:
    """A config and the first date it applies (until the next one starts)."""

    start_date: dt.date
    config: TradingConfig
    version_id: int | None = None


class ConfigSchedule:
    """Which config applies on each date: stored versions, or one config for every date."""

    def __init__(self, entries: Sequence[ScheduledConfig], label: str):
        if not entries:
            raise BacktestError("the config schedule is empty: seed a config first")
        self.entries = sorted(entries, key=lambda e: e.start_date)
        self._starts = [e.start_date for e in self.entries]
        self.label = label

    @classmethod
    def constant(cls, config: TradingConfig, label: str = "given config") -> ConfigSchedule:
        return cls([ScheduledConfig(dt.date.min, config)], label)

    def at(self, day: dt.date) -> ScheduledConfig:
        i = bisect.bisect_right(self._starts, day) - 1
        if i < 0:
            raise BacktestError(f"no config applies on {day}: the first starts {self._starts[0]}")
        return self.entries[i]

    def configs(self, start: dt.date, end: dt.date) -> list[TradingConfig]:
        """The distinct configs that apply somewhere in [start, end]."""
        seen: list[TradingConfig] = []
        ends = [*self._starts[1:], dt.date.max]  # each entry applies until the next one starts
        for entry, next_start in zip(self.entries, ends, strict=True):
            if entry.start_date <= end and next_start > start and entry.config not in seen:
                seen.append(entry.config)
        return seen

    @property
    def symbols(self) -> list[str]:
        """Every asset of every config, in order of first appearance."""
        out: list[str] = []
        for e in self.entries:
            out += [s for s in e.config.assets if s not in out]
        return out
