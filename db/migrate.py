"""Apply the numbered SQL migrations in ``db/migrations`` (yoyo-migrations, idempotent).

yoyo records what it applied in its own version table (``_yoyo_migration``) and takes an
advisory lock, so running ``coldchain db migrate`` twice, or from two processes, is safe.
"""

from __future__ import annotations

import logging
from pathlib import Path

from yoyo import get_backend, read_migrations

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def _yoyo_uri(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1)


def migrate(dsn: str) -> list[str]:
    """Apply every pending migration; return the ids applied (empty when up to date)."""
    backend = get_backend(_yoyo_uri(dsn))
    migrations = read_migrations(str(MIGRATIONS_DIR))
    try:
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
    finally:
        backend.connection.close()
    applied = [m.id for m in pending]
    for mid in applied:
        log.info("applied migration %s", mid)
    return applied


def pending(dsn: str) -> list[str]:
    """Ids of the migrations not applied yet."""
    backend = get_backend(_yoyo_uri(dsn))
    try:
        return [m.id for m in backend.to_apply(read_migrations(str(MIGRATIONS_DIR)))]
    finally:
        backend.connection.close()
