"""Read-side queries over the store: plain SQLAlchemy selects taking a session and filters.

Shared by the console, the reports and the benchmarks, so the SQL they time is the SQL the
console runs. No Flask here.
"""
