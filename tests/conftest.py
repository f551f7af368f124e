"""Shared fixtures. Every test stands alone: its own database, clock and app.

* ``db_url`` runs a test on SQLite *and* PostgreSQL (127.0.0.1:5432). Without CI a missing
  PostgreSQL skips those runs; under CI (``CI`` set) it fails them, so nothing skips silently.
* Databases are built by the real Alembic migrations: once per session into a template,
  then copied (SQLite) or truncated and re-seeded (PostgreSQL) for each test.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text

from portal.core.clock import FixedClock
from portal.core.config import CoreConfig, HashingConfig
from portal.core.migrate import upgrade
from portal.core.models import Base
from portal.core.questions import DEFAULT_QUESTIONS
from portal.core.services import Services, build_services
from portal.core.throttle import MemoryThrottle

CHEAP_HASHING = HashingConfig(time_cost=1, memory_cost=8192, parallelism=1)
ENCRYPTION_KEY = bytes(range(32))
ENCRYPTION_KEY_B64 = base64.b64encode(ENCRYPTION_KEY).decode()
SECRET_KEY = "test-secret-key-0123456789-abcdefghijklmnop"
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
OUTPUT = Path(__file__).resolve().parent.parent / "test-output"


def _worker() -> str:
    # PORTAL_TEST_DB_TAG keeps two suites running side by side on one PostgreSQL apart.
    return os.environ.get("PORTAL_TEST_DB_TAG", "") + os.environ.get("PYTEST_XDIST_WORKER", "main")


def require_outside(what: str, ok: bool) -> None:
    """Skip when a local tool/server is missing, except under CI where that is a failure."""
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required under CI (make test installs/starts it)")
    pytest.skip(f"{what} is not available")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    target = tmp_path / "portal.db"
    shutil.copy(sqlite_template, target)
    return f"sqlite:///{target}"


def _pg_available() -> bool:
    try:
        with psycopg.connect(PG_DSN):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    require_outside("PostgreSQL on 127.0.0.1:5432", _pg_available())
    name = f"portal_test_{_worker()}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    upgrade(url)
    yield url
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """A clean, migrated PostgreSQL database: tables emptied and re-seeded as the migration does."""
    engine = create_engine(pg_database)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        conn.execute(text("INSERT INTO audit_head (id, seq, mac) VALUES (1, 0, :m)"), {"m": "0" * 64})
        for i, q in enumerate(DEFAULT_QUESTIONS):
            conn.execute(text("INSERT INTO security_questions (language, text, position, active) "
                              "VALUES ('en', :t, :p, true)"), {"t": q, "p": i})
    engine.dispose()
    return pg_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


def make_services(url: str, clock: FixedClock, **overrides: object) -> Services:
    cfg = CoreConfig(database_url=url, encryption_key=ENCRYPTION_KEY, base_url="https://mfa.example.com",
                     hashing=CHEAP_HASHING, **overrides)  # type: ignore[arg-type]
    return build_services(cfg, clock=clock, throttle=MemoryThrottle())


@pytest.fixture
def services(db_url: str, clock: FixedClock) -> Iterator[Services]:
    s = make_services(db_url, clock)
    yield s
    s.close()


@pytest.fixture
def sqlite_services(sqlite_url: str, clock: FixedClock) -> Iterator[Services]:
    s = make_services(sqlite_url, clock)
    yield s
    s.close()


def app_settings(tmp_path: Path, database_url: str, **extra: object) -> dict[str, object]:
    return {
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET_KEY,
        "ENCRYPTION_KEY": ENCRYPTION_KEY_B64,
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 8192,
        "ARGON2_PARALLELISM": 1,
        **extra,
    }


@pytest.fixture
def app(request: pytest.FixtureRequest, tmp_path: Path, sqlite_url: str):  # type: ignore[no-untyped-def]
    from portal import create_app

    marker = request.node.get_closest_marker("app_config")
    extra = dict(marker.kwargs) if marker else {}
    application = create_app(app_settings(tmp_path, sqlite_url, **extra))
    yield application
    svc = application.extensions.get("portal.services")
    if svc is not None:
        svc.close()


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()
