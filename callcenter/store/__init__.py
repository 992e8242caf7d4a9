"""Storage: SQLAlchemy models, engines and sessions, Alembic migrations (the I/O edge)."""
