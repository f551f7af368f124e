"""Workers killed mid-approval: one result, never two, nothing left pending.

gunicorn (2 workers) serves everything; while the phone's answer is in flight every worker is
SIGKILLed (after a random few milliseconds, so some answers die before the commit and some
after). The master starts new workers; the phone, whose request failed, answers again with a
new signature. Each sign-in must end approved, by exactly one recorded answer.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import requests

from portal.phone import PhoneClient, PhoneError
from portal.sdk.soap_client import SoapBackend
from tests.conftest import ENCRYPTION_KEY_B64, SECRET_KEY
from tests.e2e.procs import Gunicorn, base_env, flask, free_port

pytestmark = pytest.mark.slow
SVC, SVC_PASSWORD = "svc-crash", "crash-test-service-password"


def test_killed_workers_never_leave_two_results_or_a_stuck_request(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    port = free_port()
    env = base_env(PORTAL_ROLE="all", PORTAL_BASE_URL=f"http://127.0.0.1:{port}", PORTAL_DATABASE_URL=f"sqlite:///{db}",
                   PORTAL_SECRET_KEY=SECRET_KEY, PORTAL_ENCRYPTION_KEY=ENCRYPTION_KEY_B64,
                   PORTAL_INSTANCE_PATH=str(tmp_path / "i"), PORTAL_ADMIN_USERNAME=SVC,
                   PORTAL_ADMIN_PASSWORD=SVC_PASSWORD)
    flask(["setup"], env)
    flask(["create-user", "kai"], env)
    rng = random.Random(20261130)
    with Gunicorn(env, port, log=tmp_path / "gunicorn.log") as server:
        server.wait_ready()
        app = SoapBackend(server.url + "/PfWsSdk.asmx", SVC, SVC_PASSWORD, timeout=10)
        phone = PhoneClient.activate(server.url + "/PA", app.generate_activation_code("kai").code)
        died_before, died_after = 0, 0
        for _ in range(10):
            txn = app.authenticate_user("kai", asynchronous=True, timeout_seconds=60).transaction_id or ""
            outcome: dict[str, object] = {}

            def answer(t: str = txn, out: dict[str, object] = outcome) -> None:
                try:
                    out["status"] = phone.answer(t, "approve")["status"]
                except (requests.RequestException, PhoneError) as exc:
                    out["error"] = exc

            th = threading.Thread(target=answer)
            th.start()
            time.sleep(rng.uniform(0, 0.004))
            for pid in server.workers():
                os.kill(pid, signal.SIGKILL)
            th.join(10)
            server.wait_ready()
            if "error" in outcome:
                try:
                    retried = phone.answer(txn, "approve")["status"]
                    died_before += 1
                except PhoneError as exc:  # the first answer was committed before the kill
                    assert exc.code == "RequestNotPending", exc
                    retried = "approved"
                    died_after += 1
                assert retried == "approved"
            assert app.get_authentication_status(txn).status == "approved"
            with sqlite3.connect(db) as conn:
                answers = conn.execute("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'auth.approved' "
                                       "AND detail LIKE ?", (f'%{txn}%',)).fetchone()[0]
            assert answers == 1, f"{txn}: {answers} recorded answers"
        # A request whose answer never arrives ends expired, not pending.
        lost = app.authenticate_user("kai", asynchronous=True, timeout_seconds=5).transaction_id or ""
        for pid in server.workers():
            os.kill(pid, signal.SIGKILL)
        server.wait_ready()
        time.sleep(5.5)
        assert app.get_authentication_status(lost).status == "expired"
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    print(f"answers killed before commit: {died_before}, after commit: {died_after}, untouched: "
          f"{10 - died_before - died_after}")
