"""Benchmark helper: CPU per SDK call in the gunicorn workers, beside throughput and latency.

Throughput on a shared 2-core machine swings with whatever else runs; the CPU a worker spends per
request does not, so this is the figure to compare between two versions of the code. Serves
``ValidateOathCode`` (or ``--op AuthenticateUser`` with an OTP) like ``bench/sdk_validate.py``
(fresh valid HOTP codes, wrk with 16 connections) and prints requests per second, p50/p99, the
workers' user and system CPU per request, and how idle the machine was (idle CPU with a
saturated server means the requests wait on each other, not on the CPU).

Run: ``.venv/bin/python bench/sdk_worker_cpu.py [--workers 2] [--threads 8] [--seconds 8]``.
To compare a change, run it in a checkout of each version (``git worktree add``) one after the other.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sdk_validate import KEY, PASSWORD, USER, envelope, prepare, write_bodies  # noqa: E402

from tests.e2e.procs import Gunicorn, base_env, free_port  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pids: list[int]) -> tuple[int, int]:
    user = system = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user, system = user + int(fields[11]), system + int(fields[12])
    return user, system


def idle_ticks() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--op", choices=("ValidateOathCode", "AuthenticateUser"), default="ValidateOathCode")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="portal-cpu-"))
    db = f"sqlite:///{tmp / 'bench.db'}"
    prepare(db, args.users)
    write_bodies(tmp / "validate", args.op, range(args.users), 0, 60, 2)
    for t in range(2):
        (tmp / f"warm.{t}").write_text(envelope("TestPfWsSdkConnection", "") + "\n")
    port = free_port()
    env = base_env(PORTAL_ROLE="all", PORTAL_BASE_URL=f"http://127.0.0.1:{port}", PORTAL_DATABASE_URL=db,
                   PORTAL_SECRET_KEY="bench-secret-key-0123456789-abcdefghijk",
                   PORTAL_ENCRYPTION_KEY=base64.b64encode(KEY).decode(), PORTAL_INSTANCE_PATH=str(tmp / "inst"))
    env["PORTAL_LOG_LEVEL"] = "WARNING"
    auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    lua = str(ROOT / "bench" / "wrk_bodies.lua")
    with Gunicorn(env, port, workers=args.workers, threads=args.threads, log=tmp / "gunicorn.log") as server:
        server.wait_ready()
        wrk_env = dict(os.environ, BENCH_BODIES=str(tmp / "warm"), BENCH_PATH="/PfWsSdk.asmx", BENCH_AUTH=auth)
        subprocess.run(["wrk", "-t2", "-c16", "-d2s", "-s", lua, server.url + "/PfWsSdk.asmx"], env=wrk_env,
                       capture_output=True, check=True)  # each worker checks the password once, then caches
        pids = server.workers()
        (u0, s0), (i0, t0) = cpu_ticks(pids), idle_ticks()
        wrk_env["BENCH_BODIES"] = str(tmp / "validate")
        out = subprocess.run(["wrk", "-t2", "-c16", f"-d{args.seconds}s", "--latency", "-s", lua,
                              server.url + "/PfWsSdk.asmx"], env=wrk_env, capture_output=True, text=True,
                             check=True).stdout
        (u1, s1), (i1, t1) = cpu_ticks(pids), idle_ticks()
    n = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p = {k: v for k, v in re.findall(r"\s(50|99)%\s+([\d.]+\w+)", out)}
    print(f"{args.op}, workers {args.workers} x {args.threads} threads: {n / args.seconds:.0f} req/s, "
          f"p50 {p.get('50')}, p99 {p.get('99')}, non-2xx {non2xx.group(1) if non2xx else 0}")
    print(f"worker CPU per request: user {(u1 - u0) / TICK / n * 1000:.3f} ms, system "
          f"{(s1 - s0) / TICK / n * 1000:.3f} ms; machine idle {100 * (i1 - i0) / max(1, t1 - t0):.0f}%")


if __name__ == "__main__":
    main()
