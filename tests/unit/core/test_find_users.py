"""Find User with ``*`` inside a pattern: served by trigram indexes (migration 0006), still exact.

SQLite narrows with the FTS5 table ``users_search`` (kept by triggers) and PostgreSQL with pg_trgm
indexes; the ``LIKE`` decides. Each test runs on both databases (the ``services`` fixture).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import create_engine, event, text

from portal.core import search as search_module
from portal.core.audit import Actor
from portal.core.migrate import downgrade, upgrade
from portal.core.users import UserFields
from tests.conftest import PG_DSN, _pg_available, _worker, make_services, require_outside

A = Actor("staff:test", "192.0.2.10")


def _add(services, username: str, name: str | None = None, email: str | None = None,  # type: ignore[no-untyped-def]
         phone: str | None = None) -> None:
    services.users.create(A, username, UserFields(display_name=name, email=email, phone=phone))


def _names(services, pattern: str, **kw: object) -> list[str]:  # type: ignore[no-untyped-def]
    return [u.username for u in services.users.find(pattern, **kw).items]


def _check_search_index(services) -> None:  # type: ignore[no-untyped-def]
    """SQLite: users_search holds exactly what users holds (a stale entry would only cost a recheck, unseen)."""
    if services.db.is_sqlite:
        with services.db.engine.begin() as conn:  # raises "database disk image is malformed" if not
            conn.exec_driver_sql("INSERT INTO users_search (users_search, rank) VALUES ('integrity-check', 1)")


@pytest.fixture
def people(services):  # type: ignore[no-untyped-def]
    _add(services, "anna.lindberg", "Anna Lindberg", "anna@example.org", "+442079460001")
    _add(services, "bob", "Robert Berger", "rb@mail.example.com", "+491701234567")
    _add(services, "carla", "Carla Costa", "Carla.Costa@Example.ORG", "+442079461234")
    _add(services, "dan", "Dan Smith", "dan@other.net", "+33149174917")
    return services


def test_inner_wildcard_matches_each_column(people) -> None:  # type: ignore[no-untyped-def]
    assert _names(people, "*.lind*") == ["anna.lindberg"]  # username only
    assert _names(people, "*bert Ber*") == ["bob"]  # display name only
    assert _names(people, "*@mail.example*") == ["bob"]  # e-mail only
    assert _names(people, "*9174917") == ["dan"]  # phone only
    assert _names(people, "*61234*") == ["carla"]


def test_inner_wildcard_is_case_insensitive_and_ordered_by_username(people) -> None:  # type: ignore[no-untyped-def]
    assert _names(people, "*BERG*") == ["anna.lindberg", "bob"]  # Lindberg, Berger
    assert _names(people, "*@example.org") == ["anna.lindberg", "carla"]  # stored as Example.ORG
    page = people.users.find("*@EXAMPLE.ORG", page=2, page_size=1)
    assert (page.total, [u.username for u in page.items], page.total_is_capped) == (2, ["carla"], False)
    past_the_end = people.users.find("*@example.org", page=3, page_size=1)
    assert (past_the_end.total, past_the_end.items) == (2, ())


def test_parts_match_in_order_within_one_column(people) -> None:  # type: ignore[no-untyped-def]
    # The trigram index finds rows holding every part anywhere; the LIKE then wants them in order, in one column.
    _add(people, "berg.anna", "Berg Anna")  # both parts, wrong order
    _add(people, "annabel", "Lindberg")  # both parts, in different columns
    assert _names(people, "anna*berg") == ["anna.lindberg"]
    assert _names(people, "*nna*dbe*") == ["anna.lindberg"]


def test_sql_and_fts_special_characters_are_literal(services) -> None:  # type: ignore[no-untyped-def]
    _add(services, "a_bcd")
    _add(services, "axbcd")
    _add(services, "dom\\ann")
    _add(services, "domxann")
    _add(services, "pct", "Offer 100% sure")
    _add(services, "pcx", "Offer 100x sure")
    _add(services, "boss", 'The "Boss" Himself')
    _add(services, "bossy", "The Boss Herself")
    _add(services, "ops", "Ops (Team: Red)")
    assert _names(services, "*a_bc*") == ["a_bcd"]
    assert _names(services, "*m\\an*") == ["dom\\ann"]
    assert _names(services, "*100% s*") == ["pct"]
    assert _names(services, '*"boss"*') == ["boss"]
    assert _names(services, '*e "b*') == ["boss"]
    assert _names(services, "*(team: r*") == ["ops"]  # unquoted, FTS5 would read a column filter
    assert _names(services, "*x*AND*") == []


def test_changes_and_deletes_are_found_at_once(people) -> None:  # type: ignore[no-untyped-def]
    people.users.update(A, "carla", UserFields(display_name="Carla Quintero", email="cq@north.example",
                                               phone="+14255550123"))
    assert _names(people, "*costa*") == []
    assert _names(people, "*quinter*") == ["carla"]
    assert _names(people, "*@north.exa*") == ["carla"]
    assert _names(people, "*5550123") == ["carla"]
    assert _names(people, "*46123*") == []  # the old phone
    people.users.update(A, "carla", UserFields(phone=""))  # cleared: its value leaves the index
    assert _names(people, "*5550123") == []
    people.users.delete(A, "anna.lindberg")
    assert _names(people, "*lindberg*") == []
    assert _names(people, "*berg*") == ["bob"]
    _add(people, "erik.lindberg", "Erik Lindberg")
    assert _names(people, "*lindberg*") == ["erik.lindberg"]
    people.users.block(A, "erik.lindberg", "lost phone")  # other columns: the index is left alone
    _check_search_index(people)


def test_parts_shorter_than_three_characters_still_match(people) -> None:  # type: ignore[no-untyped-def]
    # No trigram to look up: these scan the table, and must still be right.
    assert _names(people, "*er*") == ["anna.lindberg", "bob", "dan"]  # Lindberg, Berger, other.net
    assert _names(people, "*RL*") == ["carla"]
    assert _names(people, "a*rg") == ["anna.lindberg"]
    assert _names(people, "b*b") == ["bob"]
    assert _names(people, "*q*") == []
    assert _names(people, "*ab*cd*") == []  # short parts in order, nowhere


def test_beyond_the_limit_a_capped_set_unless_an_exact_total_is_asked(services, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    everyone = [f"user{i}" for i in range(5)]
    for i in range(5):
        _add(services, f"user{4 - i}", f"Person {i}")
    monkeypatch.setattr(search_module, "COUNT_LIMIT", 3)
    for pattern in ("*erso*", "user*", "*s*"):  # through the trigram index, a prefix, a scan
        pages = [services.users.find(pattern, page=n, page_size=2) for n in (1, 2, 3)]
        assert [(p.total, p.total_is_capped) for p in pages] == [(3, True)] * 3
        shown = [u.username for p in pages for u in p.items]
        assert len(shown) == 3 and shown == sorted(shown) and set(shown) < set(everyone)  # 3 of 5, in order
        exact = [services.users.find(pattern, page=n, page_size=2, exact_total=True) for n in (1, 2, 3)]
        assert [(p.total, p.total_is_capped) for p in exact] == [(5, False)] * 3
        assert [u.username for p in exact for u in p.items] == everyone
    assert (services.users.find("*son 1*").total, services.users.find("*son 1*").total_is_capped) == (1, False)
    monkeypatch.setattr(search_module, "COUNT_LIMIT", 5)
    page = services.users.find("*erso*", page=3, page_size=2)
    assert (page.total, page.total_is_capped, [u.username for u in page.items]) == (5, False, ["user4"])


def test_inner_wildcard_search_uses_the_trigram_index(people, db_url: str) -> None:  # type: ignore[no-untyped-def]
    statements: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        statements.append((statement, parameters))

    event.listen(people.db.engine, "before_cursor_execute", capture)
    try:
        people.users.find("*lindberg*")
    finally:
        event.remove(people.db.engine, "before_cursor_execute", capture)
    statement, parameters = next(s for s in statements if "WITH matches" in s[0])
    with people.db.engine.connect() as conn:
        if people.db.is_sqlite:
            plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", parameters))  # type: ignore[arg-type]
            assert "SCAN users_search VIRTUAL TABLE" in plan
        else:
            conn.exec_driver_sql("SET enable_seqscan = off")  # four rows: otherwise a scan is cheaper
            conn.exec_driver_sql("SET enable_indexscan = off")  # nor a walk of a B-tree, filtering
            plan = " ".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {statement}",
                                                                   parameters))  # type: ignore[arg-type]
            assert "_trgm" in plan, plan


def test_migration_indexes_existing_users_and_downgrades(db_url: str, clock) -> None:  # type: ignore[no-untyped-def]
    downgrade(db_url, "0005")
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO users (username, username_key, display_name, display_name_key, email, email_key, phone, "
            "language, enabled, blocked, method, mode, pin_change_required, failed_attempts, created_at, updated_at) "
            "VALUES ('Old.Timer', 'old.timer', 'Olga Lindqvist', 'olga lindqvist', 'olga@legacy.example', "
            "'olga@legacy.example', '+4930123456', 'en', true, false, 'mobile_app', 'standard', false, 0, "
            ":t, :t)"), {"t": clock.now()})
    engine.dispose()
    upgrade(db_url)
    services = make_services(db_url, clock)
    try:
        assert _names(services, "*lindq*") == ["Old.Timer"]
        assert _names(services, "*@legacy*") == ["Old.Timer"]
        _check_search_index(services)
        services.users.delete(A, "old.timer")
        assert _names(services, "*lindq*") == []
        _check_search_index(services)
    finally:
        services.close()


@pytest.fixture
def restricted_pg_url() -> Iterator[str]:
    """An empty database whose user may create tables but not extensions (not the owner, no CREATE on it)."""
    require_outside("PostgreSQL on 127.0.0.1:5432", _pg_available())
    role = database = f"portal_test_{_worker()}_restricted"
    with psycopg.connect(PG_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        admin.execute(f'CREATE DATABASE "{database}"')  # owned by postgres; PUBLIC may not CREATE in it
    with psycopg.connect(PG_DSN.replace("dbname=postgres", f"dbname={database}"), autocommit=True) as conn:
        conn.execute(f'GRANT USAGE, CREATE ON SCHEMA public TO "{role}"')
    yield f"postgresql+psycopg://{role}@127.0.0.1:5432/{database}"
    with psycopg.connect(PG_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.mark.postgres
def test_without_pg_trgm_the_upgrade_completes_and_search_scans(restricted_pg_url: str, clock,  # type: ignore[no-untyped-def]
                                                                 caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="portal.migrations"):
        upgrade(restricted_pg_url)
    assert "could not create the PostgreSQL extension pg_trgm" in caplog.text
    engine = create_engine(restricted_pg_url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == "0006"
        assert conn.scalar(text("SELECT count(*) FROM pg_indexes WHERE indexname LIKE '%\\_trgm'")) == 0
    engine.dispose()
    services = make_services(restricted_pg_url, clock)
    try:
        _add(services, "anna.lindberg", "Anna Lindberg")
        assert _names(services, "*lindb*") == ["anna.lindberg"]
    finally:
        services.close()
