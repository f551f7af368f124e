"""HOTP/TOTP against RFC 4226 and RFC 6238, and against Debian's oathtool on random seeds."""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
import subprocess

import pytest

from portal.core import otp
from tests.conftest import require_outside

RFC4226 = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]
KEYS = {"SHA1": b"12345678901234567890", "SHA256": b"12345678901234567890123456789012",
        "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234"}
RFC6238 = {  # time: (SHA1, SHA256, SHA512), 8 digits, 30 s steps
    59: ("94287082", "46119246", "90693936"),
    1111111109: ("07081804", "68084774", "25091201"),
    1111111111: ("14050471", "67062674", "99943326"),
    1234567890: ("89005924", "91819424", "93441116"),
    2000000000: ("69279037", "90698825", "38618901"),
    20000000000: ("65353130", "77737706", "47863826"),
}


@pytest.mark.parametrize("counter", range(10))
def test_rfc4226_appendix_d(counter: int) -> None:
    assert otp.hotp(KEYS["SHA1"], counter) == RFC4226[counter]


@pytest.mark.parametrize("unix_time", sorted(RFC6238))
@pytest.mark.parametrize("index,algorithm", list(enumerate(("SHA1", "SHA256", "SHA512"))))
def test_rfc6238_appendix_b(unix_time: int, index: int, algorithm: str) -> None:
    assert otp.totp(KEYS[algorithm], unix_time, digits=8, algorithm=algorithm) == RFC6238[unix_time][index]


def test_seed_lengths_follow_the_rfc() -> None:
    assert {a: len(otp.random_seed(a)) for a in KEYS} == {"SHA1": 20, "SHA256": 32, "SHA512": 64}


def _oathtool(*args: str) -> str:
    return subprocess.run(["oathtool", *args], capture_output=True, text=True, check=True, timeout=10).stdout


@pytest.mark.parametrize("algorithm", ["SHA1", "SHA256", "SHA512"])
@pytest.mark.parametrize("digits", [6, 8])
def test_totp_agrees_with_oathtool_on_random_seeds(algorithm: str, digits: int) -> None:
    require_outside("oathtool", shutil.which("oathtool") is not None)
    for _ in range(4):
        seed = otp.random_seed(algorithm)
        when = secrets.randbelow(4_000_000_000)
        stamp = dt.datetime.fromtimestamp(when, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        # -w 2: the code at that time and the next two steps, one per line.
        out = _oathtool(f"--totp={algorithm.lower()}", "-b", "-d", str(digits), "-N", stamp, "-w", "2",
                        otp.b32encode(seed)).split()
        ours = [otp.totp(seed, when + 30 * i, digits=digits, algorithm=algorithm) for i in range(3)]
        assert out == ours


def test_hotp_agrees_with_oathtool_on_random_seeds() -> None:
    require_outside("oathtool", shutil.which("oathtool") is not None)
    for _ in range(5):
        seed = otp.random_seed("SHA1")
        start = secrets.randbelow(1_000_000)
        out = _oathtool("-b", "-c", str(start), "-w", "9", otp.b32encode(seed)).split()
        assert out == [otp.hotp(seed, start + i) for i in range(10)]
