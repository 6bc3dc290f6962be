"""All SQL goes through this package: engine, migrations, and one module per table family."""

from allocator.shell.persistence.engine import connect, make_engine, utcnow

__all__ = ["connect", "make_engine", "utcnow"]
