"""Alembic revision files, applied in order by ``callcenter.store.migrate.upgrade``."""
