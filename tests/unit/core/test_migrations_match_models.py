"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from portal.core.models import Base


def test_migrations_and_models_agree(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            # PostgreSQL-only text_pattern_ops indexes (migration 0005) are not in the models.
            ctx = MigrationContext.configure(conn, opts={"include_object": lambda obj, name, *_: not (
                name or "").endswith("_pattern")})
            diff = compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], diff
