"""Real processes on loopback for end-to-end tests: gunicorn servers and flask CLI calls."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(PORTAL_ARGON2_TIME_COST="1", PORTAL_ARGON2_MEMORY_COST="8192", PORTAL_ARGON2_PARALLELISM="1",
               PORTAL_LOG_LEVEL="WARNING", FLASK_APP="wsgi")
    env.update(extra)
    return env


def flask(args: list[str], env: Mapping[str, str], *, check: bool = True,
          input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "flask"), *args], cwd=ROOT, env=dict(env), capture_output=True, text=True,
                          timeout=60, check=check, input=input_text)


class Gunicorn:
    """``gunicorn -k gthread`` serving wsgi:app; stopped (whole process group) on exit."""

    def __init__(self, env: Mapping[str, str], port: int, *, workers: int = 2, threads: int = 8,
                 log: Path | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._log = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "--worker-class", "gthread", "--workers", str(workers), "--threads",
             str(threads), "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "2", "wsgi:app"],
            cwd=ROOT, env=dict(env), stdout=self._log, stderr=self._log, start_new_session=True)

    def wait_ready(self, path: str = "/healthz", timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        with requests.Session() as s:
            s.trust_env = False
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"gunicorn exited with {self.proc.returncode}")
                try:
                    if s.get(self.url + path, timeout=1).status_code < 500:
                        return
                except requests.RequestException:
                    pass
                time.sleep(0.1)
        raise TimeoutError(f"{self.url}{path} did not answer in {timeout} s")

    def workers(self) -> list[int]:
        """The worker processes' ids (children of the gunicorn master)."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                found.append(int(stat.parent.name))
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self._log is not subprocess.DEVNULL:
            self._log.close()  # type: ignore[union-attr]

    def __enter__(self) -> Gunicorn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
