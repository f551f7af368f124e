"""``make run`` as a real process: ``flask setup`` then gunicorn (gthread) on the embedded
default, with nothing configured but the instance directory and the port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
if not (BIN / "gunicorn").exists():  # a venv elsewhere: use the interpreter's own bin directory
    BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(instance: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "FLASK_"))}
    env.update(PORTAL_INSTANCE_PATH=str(instance), PORT=str(port), PORTAL_ARGON2_MEMORY_COST="8192",
               PORTAL_ARGON2_TIME_COST="1", PORTAL_ARGON2_PARALLELISM="1")
    return env


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_setup_then_gunicorn_serves_health(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    port = _free_port()
    env = _env(instance, port)

    setup = subprocess.run([str(BIN / "flask"), "--app", "wsgi", "setup"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "First staff account created: admin" in setup.stdout
    assert setup.stdout.count("one-time password") == 1

    for name in ("secret_key", "encryption_key"):
        path = instance / name
        assert path.is_file(), name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    db_file = instance / "portal.db"
    assert db_file.is_file() and db_file.stat().st_size > 0
    keys = {name: (instance / name).read_text() for name in ("secret_key", "encryption_key")}

    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "--worker-class", "gthread", "--workers", "1", "--threads", "4",
             "--bind", f"127.0.0.1:{port}", "wsgi:app"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with requests.Session() as http:
            http.trust_env = False  # no proxy or CA-bundle variables from the environment
            url = f"http://127.0.0.1:{port}"
            resp = None
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                assert proc.poll() is None, f"gunicorn exited with {proc.returncode}: {log_path.read_text()}"
                try:
                    resp = http.get(url + "/healthz", timeout=2)
                    if resp.status_code == 200:
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.1)
            assert resp is not None and resp.status_code == 200, log_path.read_text()

            assert resp.json() == {"status": "ok", "role": "all", "database": "ok"}
            h = resp.headers
            assert h["Cache-Control"] == "no-store"
            assert h["X-Content-Type-Options"] == "nosniff"
            assert h["X-Frame-Options"] == "DENY"
            assert h["Referrer-Policy"] == "same-origin"
            assert "default-src 'self'" in h["Content-Security-Policy"]
            assert h["X-Request-ID"]
            assert "Strict-Transport-Security" not in h  # plain HTTP on loopback

            # The loopback default needs no TLS: the SDK's WSDL is served and names this address.
            wsdl = http.get(url + "/PfWsSdk.asmx?wsdl", timeout=5)
            assert wsdl.status_code == 200
            assert f"{url}/PfWsSdk.asmx" in wsdl.text
            assert http.get(url + "/no/such/page", timeout=5).status_code == 404

            # The server process reused the keys `setup` generated.
            for name, content in keys.items():
                assert (instance / name).read_text() == content, name
                assert stat.S_IMODE((instance / name).stat().st_mode) == 0o600, name
    finally:
        _stop(proc)
    assert proc.returncode is not None
    assert _group_gone(proc.pid), "a gunicorn process outlived the test"


def _group_gone(pgid: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    os.killpg(pgid, signal.SIGKILL)
    return False
