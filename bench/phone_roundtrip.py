"""Benchmark: full push-less sign-in round trips through the phone API.

One client does, as fast as it can and one after the other:
``AuthenticateUser`` (SOAP, asynchronous, number matching) → the phone's signed long poll
(``GET /PA/v1/requests``) → its signed answer (``POST .../answer``, approve with the
number) → ``GetAuthenticationStatus`` (SOAP) says ``approved``.

A third: a phone waits in its long poll; the time from the application's ``AuthenticateUser``
call to the phone's poll returning with the request (the issue's "within 100 ms").

A second measure is the release latency: an application waits in ``GetAuthenticationStatus``
(``waitSeconds``) while the phone answers; the time from sending the answer to the
application's return is what a user waits after tapping Approve.

Layouts: ``one-node`` (role ``all``, gunicorn 2 gthread workers, SQLite) and ``two-tier``
(a ``server`` and a ``frontend`` process, gunicorn 2 workers each; the phone talks to the
frontend, which relays every call to the server over SOAP). Run:
``.venv/bin/python bench/phone_roundtrip.py [--layout one-node|two-tier|both]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from portal.phone import PhoneClient  # noqa: E402
from tests.conftest import ENCRYPTION_KEY_B64, SECRET_KEY  # noqa: E402
from tests.e2e.procs import Gunicorn, base_env, flask, free_port  # noqa: E402

NS = "urn:mfa-portal:PfWsSdk:v1"
SVC, SVC_PASSWORD = "bench-svc", "bench-service-password"


def envelope(op: str, inner: str) -> str:
    return (f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/'
            f'envelope/"><soap:Body><{op} xmlns="{NS}">{inner}</{op}></soap:Body></soap:Envelope>')


class Sdk:
    """Raw SOAP over one keep-alive connection: the application's side, without client overhead."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.auth = (SVC, SVC_PASSWORD)

    def call(self, op: str, inner: str, timeout: float = 30) -> str:
        r = self.http.post(self.url, data=envelope(op, inner).encode(), timeout=timeout,
                           headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{NS}/{op}"'})
        r.raise_for_status()
        return r.text

    def start(self, username: str) -> tuple[str, int]:
        body = self.call("AuthenticateUser", f"<username>{username}</username><applicationName>bench"
                         "</applicationName><asynchronous>true</asynchronous><numberMatching>true</numberMatching>")
        txn = re.search(r"<TransactionId>([0-9a-f]+)<", body)
        number = re.search(r"<NumberToMatch>(\d+)<", body)
        assert txn and number, body
        return txn.group(1), int(number.group(1))

    def status(self, txn: str, wait: int = 0) -> str:
        body = self.call("GetAuthenticationStatus", f"<transactionId>{txn}</transactionId>"
                         f"<waitSeconds>{wait}</waitSeconds>", timeout=wait + 30)
        m = re.search(r"<Status>(\w+)<", body)
        assert m, body
        return m.group(1)


def quantiles(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=100)
    return {"p50_ms": round(q[49], 2), "p90_ms": round(q[89], 2), "p99_ms": round(q[98], 2)}


def run(sdk: Sdk, phone: PhoneClient, username: str, seconds: float, release_samples: int) -> dict[str, object]:
    # warm-up: connections, caches
    for _ in range(20):
        txn, number = sdk.start(username)
        phone.answer(phone.pending(wait=5)[0]["transaction_id"], "approve", number=number)
        sdk.status(txn)
    trips: list[float] = []
    stop = time.monotonic() + seconds
    began = time.monotonic()
    while time.monotonic() < stop:
        t0 = time.perf_counter()
        txn, number = sdk.start(username)
        [req] = phone.pending(wait=5)
        phone.answer(req["transaction_id"], "approve", number=number)
        assert sdk.status(txn) == "approved"
        trips.append((time.perf_counter() - t0) * 1000)
    elapsed = time.monotonic() - began
    releases: list[float] = []
    waiter = Sdk(sdk.url)
    for _ in range(release_samples):
        txn, number = sdk.start(username)
        [req] = phone.pending(wait=5)
        done: dict[str, object] = {}

        def wait(t: str = txn, out: dict[str, object] = done) -> None:
            out["status"] = waiter.status(t, wait=10)
            out["at"] = time.perf_counter()

        th = threading.Thread(target=wait)
        th.start()
        time.sleep(0.05)  # the application is waiting
        sent = time.perf_counter()
        phone.answer(req["transaction_id"], "approve", number=number)
        th.join(15)
        assert done["status"] == "approved"
        releases.append((float(done["at"]) - sent) * 1000)  # type: ignore[arg-type]
    arrivals: list[float] = []
    for _ in range(release_samples):
        got: dict[str, object] = {}

        def poll(out: dict[str, object] = got) -> None:
            out["requests"] = phone.pending(wait=10)
            out["at"] = time.perf_counter()

        th = threading.Thread(target=poll)
        th.start()
        time.sleep(0.05)  # the phone is waiting in its long poll
        started = time.perf_counter()
        txn, number = sdk.start(username)
        th.join(15)
        arrivals.append((float(got["at"]) - started) * 1000)  # type: ignore[arg-type]
        phone.answer(txn, "approve", number=number)
    return {"round_trips_per_s": round(len(trips) / elapsed, 1), "round_trips": len(trips), **quantiles(trips),
            "release_after_answer": quantiles(releases), "release_samples": len(releases),
            "request_reaches_waiting_phone": quantiles(arrivals)}


def one_node(tmp: Path, seconds: float, samples: int) -> dict[str, object]:
    port = free_port()
    env = base_env(PORTAL_ROLE="all", PORTAL_BASE_URL=f"http://127.0.0.1:{port}",
                   PORTAL_DATABASE_URL=f"sqlite:///{tmp / 'one.db'}", PORTAL_SECRET_KEY=SECRET_KEY,
                   PORTAL_ENCRYPTION_KEY=ENCRYPTION_KEY_B64, PORTAL_INSTANCE_PATH=str(tmp / "one"),
                   PORTAL_ADMIN_USERNAME=SVC, PORTAL_ADMIN_PASSWORD=SVC_PASSWORD)
    flask(["setup"], env)
    flask(["create-user", "bench-user"], env)
    with Gunicorn(env, port, log=tmp / "one.log") as server:
        server.wait_ready()
        code = re.search(r"<ActivationCode>(\d+)<", Sdk(server.url + "/PfWsSdk.asmx").call(
            "GenerateActivationCode", "<username>bench-user</username>"))
        assert code
        phone = PhoneClient.activate(server.url + "/PA", code.group(1))
        return run(Sdk(server.url + "/PfWsSdk.asmx"), phone, "bench-user", seconds, samples)


def two_tier(tmp: Path, seconds: float, samples: int) -> dict[str, object]:
    sport, fport = free_port(), free_port()
    server_env = base_env(PORTAL_ROLE="server", PORTAL_BASE_URL=f"http://127.0.0.1:{sport}",
                          PORTAL_DATABASE_URL=f"sqlite:///{tmp / 'server.db'}", PORTAL_SECRET_KEY=SECRET_KEY,
                          PORTAL_ENCRYPTION_KEY=ENCRYPTION_KEY_B64, PORTAL_INSTANCE_PATH=str(tmp / "s"),
                          PORTAL_ADMIN_USERNAME=SVC, PORTAL_ADMIN_PASSWORD=SVC_PASSWORD)
    front_env = base_env(PORTAL_ROLE="frontend", PORTAL_BASE_URL=f"http://127.0.0.1:{fport}",
                         PORTAL_SECRET_KEY=SECRET_KEY, PORTAL_INSTANCE_PATH=str(tmp / "f"),
                         PORTAL_SDK_URL=f"http://127.0.0.1:{sport}/PfWsSdk.asmx",
                         PORTAL_SDK_USERNAME=SVC, PORTAL_SDK_PASSWORD=SVC_PASSWORD)
    flask(["setup"], server_env)
    flask(["create-user", "bench-user"], server_env)
    with Gunicorn(server_env, sport, log=tmp / "server.log") as server, \
            Gunicorn(front_env, fport, log=tmp / "frontend.log") as frontend:
        server.wait_ready()
        frontend.wait_ready()
        sdk = Sdk(server.url + "/PfWsSdk.asmx")
        code = re.search(r"<ActivationCode>(\d+)<", sdk.call("GenerateActivationCode",
                                                              "<username>bench-user</username>"))
        assert code
        phone = PhoneClient.activate(frontend.url + "/PA", code.group(1))
        return run(sdk, phone, "bench-user", seconds, samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--release-samples", type=int, default=200)
    ap.add_argument("--layout", choices=["one-node", "two-tier", "both"], default="both")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-phone-"))
    results: dict[str, object] = {"machine": f"{platform.node()} {platform.machine()} "
                                  f"{__import__('os').cpu_count()} cores, Python {platform.python_version()}"}
    if args.layout in ("one-node", "both"):
        results["one_node"] = one_node(tmp, args.seconds, args.release_samples)
        print("one node:", json.dumps(results["one_node"]), flush=True)
    if args.layout in ("two-tier", "both"):
        results["two_tier"] = two_tier(tmp, args.seconds, args.release_samples)
        print("two tier:", json.dumps(results["two_tier"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
