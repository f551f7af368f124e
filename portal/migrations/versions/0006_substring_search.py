"""substring search for Find User: trigram indexes (PostgreSQL), an FTS5 trigram table (SQLite)

A search with ``*`` inside (``*berg*``, ``*@example.org``) is a ``LIKE '%...%'`` that no B-tree serves.
PostgreSQL: ``pg_trgm`` GIN indexes serve it directly. If the extension cannot be created (it is trusted
since PostgreSQL 13, so the database owner may; otherwise an administrator must), the upgrade goes on
without these indexes and logs a warning: the search still works, it scans.

SQLite: ``users_search``, an FTS5 table with the trigram tokenizer over the searched columns of ``users``
(external content: it stores only the index), kept current by triggers. ``UserService.find`` asks it for
the rows holding every trigram of the pattern, then applies the exact ``LIKE`` to those. ``detail=none``
(no positions) keeps it small: 55 MB instead of 250 MB at 1,000,000 users, and searches are as fast.
A later migration that rebuilds ``users`` with ``batch_alter_table`` on SQLite drops these triggers with
the old table: it must create them again (``SQLITE_TRIGGERS``) and rebuild the index.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 09:00:00
"""
from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

log = logging.getLogger("portal.migrations")

TRIGRAM_INDEXES = {"ix_users_username_key_trgm": "username_key", "ix_users_display_name_key_trgm": "display_name_key",
                   "ix_users_email_key_trgm": "email_key", "ix_users_phone_trgm": "phone"}

COLUMNS = "username_key, display_name_key, email_key, phone"
SQLITE_TRIGGERS = {
    "users_search_insert": """AFTER INSERT ON users BEGIN
        INSERT INTO users_search (rowid, username_key, display_name_key, email_key, phone)
        VALUES (new.id, new.username_key, new.display_name_key, new.email_key, new.phone);
    END""",
    # An external-content FTS5 table forgets a row only when given the values it indexed.
    "users_search_delete": """AFTER DELETE ON users BEGIN
        INSERT INTO users_search (users_search, rowid, username_key, display_name_key, email_key, phone)
        VALUES ('delete', old.id, old.username_key, old.display_name_key, old.email_key, old.phone);
    END""",
    # Only changes to searched columns: sign-ins update other columns of users and pay nothing.
    "users_search_update": """AFTER UPDATE OF id, username_key, display_name_key, email_key, phone ON users BEGIN
        INSERT INTO users_search (users_search, rowid, username_key, display_name_key, email_key, phone)
        VALUES ('delete', old.id, old.username_key, old.display_name_key, old.email_key, old.phone);
        INSERT INTO users_search (rowid, username_key, display_name_key, email_key, phone)
        VALUES (new.id, new.username_key, new.display_name_key, new.email_key, new.phone);
    END""",
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        if _create_pg_trgm():
            for statement in _index_statements():
                op.execute(statement)
    else:
        op.execute(f"CREATE VIRTUAL TABLE users_search USING fts5({COLUMNS}, content='users', content_rowid='id', "
                   "tokenize='trigram', detail='none')")
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
        op.execute("INSERT INTO users_search (users_search) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # The extension stays: an administrator may have created it, and other objects may use it.
        for name in TRIGRAM_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS users_search")


def _create_pg_trgm() -> bool:
    """Create pg_trgm if it is missing; False (and a warning) when this database user may not."""
    conn = op.get_bind()
    try:
        with conn.begin_nested():  # a savepoint: a refusal must not abort the rest of the upgrade
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except sa.exc.DBAPIError as exc:
        log.warning("Find User: could not create the PostgreSQL extension pg_trgm (%s); searches with * inside "
                    "a pattern will scan the users table. To index them, an administrator runs in this database: "
                    "CREATE EXTENSION pg_trgm; %s", str(exc.orig).strip(), "; ".join(_index_statements()))
        return False
    return True


def _index_statements() -> list[str]:
    return [f"CREATE INDEX {name} ON users USING gin ({column} gin_trgm_ops)"
            for name, column in TRIGRAM_INDEXES.items()]
