"""The read-only web app (``allocator serve``): a JSON API under ``/api/``, server-rendered pages
(dashboard, runs) and the archived artifacts of ``runs/`` and ``reports/``.

It never writes: only GET and HEAD are answered. It binds to loopback by default; beyond it a
bearer token (``ALLOCATOR_API_TOKEN``) is required.
"""
