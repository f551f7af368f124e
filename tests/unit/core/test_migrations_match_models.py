"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from portal.core.models import Base


def _in_models(obj: object, name: str | None, type_: str, *_: object) -> bool:
    """Search objects the models cannot describe: PostgreSQL's text_pattern_ops (0005) and trigram (0006)
    indexes, SQLite's FTS5 table ``users_search`` and the shadow tables FTS5 keeps beside it (0006)."""
    name = name or ""
    if type_ == "index":
        return not name.endswith(("_pattern", "_trgm"))
    if type_ == "table":
        return not (name == "users_search" or name.startswith("users_search_"))
    return True


def test_migrations_and_models_agree(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"include_object": _in_models})
            diff = compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], diff
