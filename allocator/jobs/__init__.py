"""Jobs: each composes the shell (database, sources, calendar) and the pure core for one date.

The notebooks call these functions, one per cell; the CLI calls some of them directly.
"""
