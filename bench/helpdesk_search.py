"""Benchmark: the helpdesk's Find User at 1,000,000 users (goal: p95 <= 50 ms).

Seeds N users (raw SQL, in batches) into a fresh SQLite file (or an empty PostgreSQL database
with ``--database-url``), then times ``UserService.find`` - what ``/helpdesk/?q=`` runs - for the
searches helpdesk staff make: an exact username, a username prefix, a name prefix, an e-mail
prefix, a phone prefix, a one-letter prefix, wildcards inside (a name with a number, a surname alone,
an e-mail domain, a first name and a surname, a phone fragment, two letters), and a search that finds
nothing. Each is run ``--repeat`` times with different values; p50 and p95 per kind are printed.

The users are seeded at revision ``--seed-at`` (default 0005, before the search index of 0006) and
the remaining migrations then run over them, as they would for an existing installation; both times
are printed (PostgreSQL then gets ``ANALYZE users``). ``--seed-at head`` seeds through the triggers
and indexes instead. Last, single writes (create a user, change its name) are timed on the full table.

Run: ``.venv/bin/python bench/helpdesk_search.py [--users 1000000] [--json out.json]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from portal.core.audit import Actor  # noqa: E402
from portal.core.config import CoreConfig, HashingConfig  # noqa: E402
from portal.core.migrate import upgrade  # noqa: E402
from portal.core.services import Services, build_services  # noqa: E402
from portal.core.users import UserFields  # noqa: E402

FIRST = ["anna", "ben", "carla", "david", "emma", "felix", "greta", "hugo", "ida", "jonas", "karin", "leo",
         "mia", "noah", "olga", "paul", "rosa", "sven", "tara", "ulf", "vera", "will", "xenia", "yusuf", "zoe"]
LAST = ["smith", "jones", "berg", "nguyen", "garcia", "muller", "rossi", "kim", "silva", "novak", "ali",
        "larsen", "dubois", "costa", "weber", "ivanova", "tanaka", "okafor", "haddad", "kowalski"]


def seed(url: str, n: int) -> None:
    engine = create_engine(url)
    now = dt.datetime(2026, 1, 1)
    cols = ("username, username_key, display_name, display_name_key, email, email_key, phone, language, enabled, "
            "blocked, method, mode, pin_change_required, failed_attempts, created_at, updated_at")
    stmt = text(f"INSERT INTO users ({cols}) VALUES (:u, :k, :d, :dk, :e, :ek, :p, 'en', true, false, "
                f"'mobile_app', 'standard', false, 0, :t, :t)")
    rng = random.Random(1)
    batch = []
    with engine.begin() as conn:
        for i in range(n):
            f, last = rng.choice(FIRST), rng.choice(LAST)
            name = f"{f}.{last}{i}"
            display = f"{f.title()} {last.title()}"
            batch.append({"u": name, "k": name.lower(), "d": display, "dk": display.lower(),
                          "e": f"{name}@example.com", "ek": f"{name}@example.com", "p": f"+4420{7000000 + i:08d}",
                          "t": now})
            if len(batch) == 10_000:
                conn.execute(stmt, batch)
                batch.clear()
        if batch:
            conn.execute(stmt, batch)
    engine.dispose()


def time_writes(s: Services, repeat: int) -> dict[str, dict[str, float]]:
    """One user created, then renamed: what the search index adds to a single write."""
    actor = Actor("cli")
    results: dict[str, dict[str, float]] = {}
    for kind, write in {
        "create a user": lambda i: s.users.create(actor, f"bench.writer{i}", UserFields(
            display_name=f"Bench Writer{i}", email=f"bench.writer{i}@example.com", phone=f"+4930{i:08d}")),
        "rename a user": lambda i: s.users.update(actor, f"bench.writer{i}", UserFields(
            display_name=f"Renamed Writer{i}", email=f"renamed{i}@example.org")),
    }.items():
        times = []
        for i in range(repeat):
            t = time.perf_counter()
            write(i)
            times.append((time.perf_counter() - t) * 1000)
        results[kind] = {"p50_ms": round(statistics.median(times), 2),
                         "p95_ms": round(statistics.quantiles(times, n=20)[18], 2)}
        print(f"{kind:18s} p50 {results[kind]['p50_ms']:8.2f} ms   p95 {results[kind]['p95_ms']:8.2f} ms", flush=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--database-url")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--seed-at", default="0005", help="the revision to seed at (default 0005), or head")
    args = ap.parse_args()
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='portal-bench-find-')) / 'find.db'}"
    upgrade(url, args.seed_at)
    t0 = time.monotonic()
    seed(url, args.users)
    print(f"seeded {args.users:,} users at {args.seed_at} in {time.monotonic() - t0:.1f} s ({url.split(':')[0]})",
          file=sys.stderr)
    t0 = time.monotonic()
    upgrade(url)
    print(f"migrated to head in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    if url.startswith("postgresql"):  # statistics, as autovacuum would have gathered them by now
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE users"))
        engine.dispose()
    s = build_services(CoreConfig(database_url=url, encryption_key=bytes(range(32)), hashing=HashingConfig()))
    rng = random.Random(2)
    n = args.users
    kinds = {
        "exact username": lambda: f"{rng.choice(FIRST)}.{rng.choice(LAST)}{rng.randrange(n)}",
        "username prefix": lambda: f"{rng.choice(FIRST)}.{rng.choice(LAST)}{rng.randrange(1, 99)}",
        "name prefix": lambda: f"{rng.choice(FIRST).title()} {rng.choice(LAST)[:3]}",
        "e-mail prefix": lambda: f"{rng.choice(FIRST)}.{rng.choice(LAST)}{rng.randrange(n)}@exa",
        "phone prefix": lambda: f"+4420{7000000 + rng.randrange(n):08d}"[:11],
        "one-letter prefix": lambda: rng.choice(FIRST)[0],
        "wildcard inside": lambda: f"*{rng.choice(LAST)}{rng.randrange(n)}*",
        "surname inside": lambda: f"*{rng.choice(LAST)}*",
        "e-mail domain": lambda: "*@example.com",
        "first*surname": lambda: f"{rng.choice(FIRST)}*{rng.choice(LAST)}",
        "phone fragment": lambda: f"*{rng.randrange(10_000):04d}*",
        "two letters": lambda: f"*{rng.choice(FIRST)[:2]}*",
        "no match": lambda: f"zz{rng.randrange(10**6)}",
    }
    results: dict[str, dict[str, float]] = {}
    for kind, make in kinds.items():
        times = []
        for _ in range(args.repeat):
            q = make()
            t = time.perf_counter()
            page = s.users.find(q, page=1, page_size=25)
            times.append((time.perf_counter() - t) * 1000)
            assert page.page == 1
        q95 = statistics.quantiles(times, n=20)[18]
        results[kind] = {"p50_ms": round(statistics.median(times), 2), "p95_ms": round(q95, 2)}
        print(f"{kind:18s} p50 {results[kind]['p50_ms']:8.2f} ms   p95 {results[kind]['p95_ms']:8.2f} ms", flush=True)
    results.update(time_writes(s, args.repeat))
    s.close()
    if args.json:
        args.json.write_text(json.dumps({"users": n, "results": results}, indent=2))


if __name__ == "__main__":
    main()
