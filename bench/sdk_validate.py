"""Benchmark: OATH validations through the SDK.

Measures, on this machine, with gunicorn (2 gthread workers) and wrk (2 threads,
16 connections) over loopback:

* ``ValidateOathCode`` over SOAP,
* ``AuthenticateUser`` with an OATH code over SOAP,
* a bare Flask endpoint served the same way (the yardstick: the ratio is what to read),
* ``LocalBackend.validate_oath_code`` in-process from 16 threads (no HTTP).

Every code sent is a fresh, valid HOTP code (each token's counter advances in order),
so each request does the full work: parse, validate, decrypt the seed, compute, claim
the counter, audit. Run: ``make bench`` or ``.venv/bin/python bench/sdk_validate.py``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from portal.core import otp  # noqa: E402
from portal.core.audit import Actor  # noqa: E402
from portal.core.config import CoreConfig, HashingConfig  # noqa: E402
from portal.core.migrate import upgrade  # noqa: E402
from portal.core.services import build_services  # noqa: E402
from portal.sdk.local import LocalBackend  # noqa: E402
from tests.e2e.procs import BIN, Gunicorn, base_env, free_port  # noqa: E402

NS = "urn:mfa-portal:PfWsSdk:v1"
USER, PASSWORD = "bench-svc", "bench-service-password"
KEY = bytes(range(32))


def seed_for(i: int) -> bytes:
    return (f"bench-seed-{i:06d}".encode() * 2)[:20]


def envelope(op: str, inner: str) -> str:
    return (f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/'
            f'envelope/"><soap:Body><{op} xmlns="{NS}">{inner}</{op}></soap:Body></soap:Envelope>')


def prepare(db_url: str, users: int) -> None:
    upgrade(db_url)
    cfg = CoreConfig(database_url=db_url, encryption_key=KEY, hashing=HashingConfig())
    s = build_services(cfg)
    actor = Actor("bench")
    s.accounts.create(actor, USER, PASSWORD, kind="service", role="service", groups=("MFA Admins",))
    for i in range(users):
        name = f"user{i:05d}"
        s.users.create(actor, name)
        s.oath.add_hardware_token(actor, name, serial=f"HW{i:06d}", secret_base32=otp.b32encode(seed_for(i)),
                                  otp_type="hotp")
    s.close()


def write_bodies(path: Path, op: str, users: range, start: int, rounds: int, threads: int) -> None:
    """One file per wrk thread; each token's counters go in order, far apart in the stream."""
    per = len(users) // threads
    for t in range(threads):
        mine = users[t * per:(t + 1) * per]
        with open(f"{path}.{t}", "w") as fh:
            for r in range(start, start + rounds):
                for i in mine:
                    code = otp.hotp(seed_for(i), r)
                    if op == "ValidateOathCode":
                        inner = f"<username>user{i:05d}</username><code>{code}</code>"
                    else:
                        inner = (f"<username>user{i:05d}</username><otp>{code}</otp>"
                                 f"<applicationName>bench</applicationName><clientIp>192.0.2.1</clientIp>")
                    fh.write(envelope(op, inner) + "\n")


def wrk(url: str, path: str, bodies: Path, seconds: int, connections: int) -> dict[str, float]:
    env = dict(os.environ, BENCH_BODIES=str(bodies), BENCH_PATH=path,
               BENCH_AUTH="Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
                          str(ROOT / "bench" / "wrk_bodies.lua"), url + path], env=env, capture_output=True,
                         text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", out)
        assert m, out
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    return {"rps": rps, "p50_ms": pct("50"), "p90_ms": pct("90"), "p99_ms": pct("99"),
            "requests": int(total.group(1)) if total else 0, "non_2xx": int(non2xx.group(1)) if non2xx else 0}


def count_outcomes(db_url: str, action: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT outcome, COUNT(*) FROM audit_log WHERE action = :a GROUP BY outcome"),
                            {"a": action}).all()
    engine.dispose()
    return {r[0]: r[1] for r in rows}


def local_backend(db_url: str, users: range, seconds: float, threads: int, start: int) -> dict[str, float]:
    cfg = CoreConfig(database_url=db_url, encryption_key=KEY, hashing=HashingConfig())
    s = build_services(cfg)
    backend = LocalBackend(s, lambda: Actor("bench"))
    per = len(users) // threads
    latencies: list[list[float]] = [[] for _ in range(threads)]
    ok = [0] * threads
    stop = time.monotonic() + seconds

    def run(t: int) -> None:
        mine = users[t * per:(t + 1) * per]
        r = start
        while time.monotonic() < stop:
            for i in mine:
                t0 = time.perf_counter()
                ok[t] += backend.validate_oath_code(f"user{i:05d}", otp.hotp(seed_for(i), r)).valid
                latencies[t].append((time.perf_counter() - t0) * 1000)
                if time.monotonic() >= stop:
                    break
            r += 1

    began = time.monotonic()
    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.monotonic() - began
    s.close()
    flat = sorted(x for lst in latencies for x in lst)
    q = statistics.quantiles(flat, n=100)
    return {"rps": len(flat) / elapsed, "p50_ms": q[49], "p90_ms": q[89], "p99_ms": q[98], "requests": len(flat),
            "valid": sum(ok)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--database-url", help="an empty PostgreSQL database instead of a fresh SQLite file, e.g. "
                    "postgresql+psycopg://postgres@127.0.0.1:5432/bench (its tables are dropped first)")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    db_url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    if args.database_url:
        from portal.core.migrate import downgrade

        downgrade(db_url, "base")
    print(f"preparing {args.users} users with HOTP tokens in {db_url} ...", file=sys.stderr)
    prepare(db_url, args.users)
    # Each case and round gets its own users, so every token's counter starts at 0 and every
    # code sent is valid (a refused code would measure the lockout path instead).
    fifth = args.users // 5
    groups = [range(i * fifth, (i + 1) * fifth) for i in range(5)]
    local_users = groups[4]
    rounds = 120  # counters per token: more than a run can use at these rates
    for r in range(2):
        write_bodies(tmp / f"validate{r}", "ValidateOathCode", groups[r], 0, rounds, 2)
        write_bodies(tmp / f"authenticate{r}", "AuthenticateUser", groups[2 + r], 0, rounds, 2)
    write_bodies(tmp / "bare", "ValidateOathCode", groups[0], 0, 1, 2)

    port, bare_port = free_port(), free_port()
    env = base_env(PORTAL_ROLE="all", PORTAL_BASE_URL=f"http://127.0.0.1:{port}", PORTAL_DATABASE_URL=db_url,
                   PORTAL_SECRET_KEY="bench-secret-key-0123456789-abcdefghijk",
                   PORTAL_ENCRYPTION_KEY=base64.b64encode(KEY).decode(), PORTAL_INSTANCE_PATH=str(tmp / "inst"),
                   PORTAL_ARGON2_TIME_COST="3", PORTAL_ARGON2_MEMORY_COST="65536", PORTAL_ARGON2_PARALLELISM="4")
    env["PORTAL_LOG_LEVEL"] = "WARNING"
    rounds_out: list[dict[str, dict[str, float]]] = []
    bare_env = dict(env, PYTHONPATH=str(ROOT / "bench"))
    bare = subprocess.Popen([str(BIN / "gunicorn"), "--worker-class", "gthread", "--workers", str(args.workers),
                             "--threads", str(args.threads), "--bind", f"127.0.0.1:{bare_port}", "bare_app:app"],
                            cwd=ROOT / "bench", env=bare_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        with Gunicorn(env, port, workers=args.workers, threads=args.threads, log=tmp / "gunicorn.log") as server:
            server.wait_ready()
            # Warm-up: each worker checks the service account's argon2id hash once, then caches it.
            for t in range(2):
                (tmp / f"warm.{t}").write_text(envelope("TestPfWsSdkConnection", "") + "\n")
            wrk(server.url, "/PfWsSdk.asmx", tmp / "warm", 2, args.connections)
            wrk(f"http://127.0.0.1:{bare_port}", "/bare", tmp / "bare", 1, args.connections)
            # The cases alternate, twice, so a burst of noise on this shared machine hits them alike.
            for r in range(2):
                print(f"round {r + 1}: bare, ValidateOathCode, AuthenticateUser ...", file=sys.stderr)
                res: dict[str, dict[str, float]] = {}
                res["bare Flask endpoint"] = wrk(f"http://127.0.0.1:{bare_port}", "/bare", tmp / "bare",
                                                 args.seconds, args.connections)
                res["SOAP ValidateOathCode"] = wrk(server.url, "/PfWsSdk.asmx", tmp / f"validate{r}",
                                                   args.seconds, args.connections)
                res["SOAP AuthenticateUser+OTP"] = wrk(server.url, "/PfWsSdk.asmx", tmp / f"authenticate{r}",
                                                       args.seconds, args.connections)
                rounds_out.append(res)
            outcomes = count_outcomes(db_url, "oath.validate")
            auth_outcomes = count_outcomes(db_url, "auth.approved"), count_outcomes(db_url, "auth.denied")
    finally:
        os.killpg(bare.pid, 15)
        bare.wait()
    print("LocalBackend in-process ...", file=sys.stderr)
    local = local_backend(db_url, local_users, args.seconds / 2, 16, 0)
    print(f"ValidateOathCode codes accepted: {outcomes.get('success', 0)}, refused: {outcomes.get('failure', 0)}; "
          f"AuthenticateUser approved: {sum(auth_outcomes[0].values())}, denied: {sum(auth_outcomes[1].values())}")
    for i, results in enumerate(rounds_out):
        results["LocalBackend (16 threads)"] = local
        print(f"\nround {i + 1}")
        _table(results, args)
    if args.json:
        args.json.write_text(json.dumps(rounds_out, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)


def _table(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    bare_rps = results["bare Flask endpoint"]["rps"]
    print(f"\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, gunicorn {args.workers} gthread workers x {args.threads} threads, "
          f"wrk -t2 -c{args.connections} -d{args.seconds}s, {args.database_url and 'PostgreSQL' or 'SQLite (WAL)'}, "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"{'case':32} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'x bare':>7}  notes")
    for name, r in results.items():
        notes = {k: v for k, v in r.items() if k not in ("rps", "p50_ms", "p90_ms", "p99_ms")}
        print(f"{name:32} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p90_ms']:8.2f} {r['p99_ms']:8.2f} "
              f"{r['rps'] / bare_rps:7.2f}  {notes}")


if __name__ == "__main__":
    main()
