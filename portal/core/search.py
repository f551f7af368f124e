"""Find User: username, name, e-mail or phone, with ``*`` wildcards, fast at a million users.

A pattern without ``*`` inside is a prefix search on indexed lower-case keys (migration 0005). One
with ``*`` inside is narrowed by a trigram index - ``pg_trgm`` GIN indexes on PostgreSQL, the FTS5
table ``users_search`` on SQLite (migration 0006) - and decided by an escaped ``LIKE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, column, func, literal_column, or_, select, table, text
from sqlalchemy.orm import selectinload

from . import validation as v
from .clock import Clock
from .db import Database
from .models import User
from .users import UserInfo, to_info

# Find gathers at most this many matches: counting and sorting all that a broad pattern (``*a*``)
# matches would read much of the table on every search. Gathering 1,000 takes about 10 ms at
# 1,000,000 users (10,000 took 60-90 ms: a scan meets them ten times later); 40 pages of 25.
COUNT_LIMIT = 1_000


@dataclass(frozen=True)
class Page:
    items: tuple[UserInfo, ...]
    total: int
    page: int
    page_size: int
    total_is_capped: bool = False  # more than ``total`` (COUNT_LIMIT) match: say "more than", suggest narrowing


# SQLite's trigram index of the searched columns of users (migration 0006; not a model: FTS5 virtual table).
_USERS_SEARCH = table("users_search", column("rowid"))


def find_users(db: Database, clock: Clock, pattern: str, *, page: int = 1, page_size: int = 50,
           exact_total: bool = False) -> Page:
    """Username, name, e-mail or phone; ``*`` is a wildcard, otherwise a prefix match; by username.

    When more than COUNT_LIMIT users match, the pages hold COUNT_LIMIT of them (the first the index
    yields, not the alphabetically first), ``total`` is COUNT_LIMIT and ``total_is_capped`` says so:
    like a directory's size limit, it keeps a broad pattern (``*a*``) fast, and a narrower one finds
    the rest. ``exact_total`` counts and pages every match in order instead (the SDK's ``Total``
    promises that), at the cost of a scan of the table for a broad pattern.
    """
    pattern = v.text("pattern", pattern, max_len=128)
    page = v.integer("page", page, minimum=1, maximum=1_000_000)
    page_size = v.integer("page_size", page_size, minimum=1, maximum=500)
    prefix = pattern[:-1] if pattern.endswith("*") else pattern
    if "*" not in prefix:
        cond = _prefix_condition(db, prefix)  # indexed: fast at a million users
        first = select(User.id, User.username_key).where(cond)
    else:
        like = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")
        cond = or_(
            User.username_key.like(like.lower(), escape="\\"),
            User.display_name_key.like(like.lower(), escape="\\"),
            User.email_key.like(like.lower(), escape="\\"),
            User.phone.like(like, escape="\\"),
        )
        first = _substring_candidates(db, pattern).where(cond)
    # One more than the limit tells "more"; MATERIALIZED computes them once for the page and the count,
    # and stops SQLite from folding the ORDER BY into the LIMIT (which would sort every match).
    matches = first.limit(COUNT_LIMIT + 1).cte("matches").prefix_with("MATERIALIZED")
    counted = select(func.count()).select_from(matches)
    offset = (page - 1) * page_size
    with db.read() as s:
        if not db.is_sqlite:
            # The best plan depends on the pattern (the trigram index for "%berg%", a scan for "%yu%",
            # which has no trigram); a prepared statement's generic plan would use one for every pattern.
            s.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        found = s.execute(select(matches.c.id, counted.scalar_subquery()).order_by(matches.c.username_key)
                          .offset(offset).limit(max(0, min(page_size, COUNT_LIMIT - offset)))).all()
        if found:
            count = found[0][1]
        elif offset == 0:
            count = 0  # an empty first page: nothing matches
        else:
            count = s.scalar(counted) or 0  # past the last page: the count alone
        capped = count > COUNT_LIMIT
        if capped and exact_total:
            total = s.scalar(select(func.count()).select_from(User).where(cond)) or 0
            rows = select(User).where(cond).offset(offset).limit(page_size)
        else:
            total = min(count, COUNT_LIMIT)
            rows = select(User).where(User.id.in_([row[0] for row in found]))
        users = s.scalars(rows.order_by(User.username_key)
                          .options(selectinload(User.tokens), selectinload(User.devices)))
        now = clock.now()
        return Page(tuple(to_info(u, now) for u in users), total, page, page_size,
                    total_is_capped=capped and not exact_total)


def _substring_candidates(db: Database, pattern: str) -> Select[int, str]:
    """Users that may match a pattern with ``*`` inside, as narrowed by an index; the caller's LIKE decides.

    PostgreSQL's planner serves the LIKE from the trigram indexes itself (migration 0006). SQLite's
    ``users_search`` (FTS5, trigram tokenizer) yields the rows holding every trigram of the pattern's
    literal parts, in any column. A pattern with no literal part of 3 characters has no trigram: it scans.
    """
    candidates = select(User.id, User.username_key)
    trigrams = sorted({run[i:i + 3] for run in pattern.lower().split("*") for i in range(len(run) - 2)})
    if not db.is_sqlite or not trigrams:
        return candidates
    query = " AND ".join('"' + t.replace('"', '""') + '"' for t in trigrams)  # FTS5 strings: "" is a quote
    return (candidates.join_from(_USERS_SEARCH, User, User.id == _USERS_SEARCH.c.rowid)
            .where(literal_column("users_search").op("MATCH")(query)))


def _prefix_condition(db: Database, prefix: str) -> Any:
    """Starts-with on each search column, in a form its index serves: a range on SQLite
    (binary collation), ``LIKE 'p%'`` on PostgreSQL (``text_pattern_ops`` indexes, migration 0005)."""
    low = prefix.lower()
    if db.is_sqlite:
        def starts(column: Any, p: str) -> Any:
            return and_(column >= p, column < p + "\U0010ffff")
    else:
        def starts(column: Any, p: str) -> Any:
            escaped = p.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return column.like(escaped + "%", escape="\\")
    return or_(starts(User.username_key, low), starts(User.display_name_key, low),
               starts(User.email_key, low), starts(User.phone, prefix))
