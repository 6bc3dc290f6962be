"""Capital Allocator: daily capital allocation into ETFs, run as notebook jobs.

The package holds all logic and I/O; the notebooks in ``notebooks/`` only call it, display and plot.
"""

__version__ = "0.1.0"
