"""``python -m portal.phone``: the reference phone, from a terminal.

    python -m portal.phone activate --qr activation.png          # or: activate URL CODE
    python -m portal.phone pending --wait 25
    python -m portal.phone answer TRANSACTION_ID approve --number 42 [--pin 1234]
    python -m portal.phone watch                                 # wait, show, ask, answer; repeat
    python -m portal.phone sign-out

The state (device id and private key) is kept in ``--state`` (default ~/.mfa-phone.json), mode 0600.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from .client import PhoneClient, PhoneError, PhoneState, parse_activation

DEFAULT_STATE = Path.home() / ".mfa-phone.json"


def _qr_payload(image: Path) -> str:
    if shutil.which("zbarimg") is None:
        raise SystemExit("zbarimg is needed to read a QR image (Debian: apt install zbar-tools)")
    out = subprocess.run(["zbarimg", "--raw", "--quiet", "--nodbus", str(image)], capture_output=True, text=True,
                         timeout=30)
    if out.returncode != 0 or not out.stdout.strip():
        raise SystemExit(f"no QR code found in {image}")
    return out.stdout.strip().splitlines()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portal.phone", description=__doc__.split("\n\n")[0])
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE, help="where the device key is kept")
    parser.add_argument("--ca", help="CA bundle to verify the server's certificate")
    sub = parser.add_subparsers(dest="command", required=True)
    act = sub.add_parser("activate", help="activate from a QR image, or from URL and code")
    act.add_argument("url", nargs="?")
    act.add_argument("code", nargs="?")
    act.add_argument("--qr", type=Path, help="an image of the activation QR code")
    act.add_argument("--name", default="Reference phone")
    pend = sub.add_parser("pending", help="list pending sign-in requests")
    pend.add_argument("--wait", type=int, default=0)
    ans = sub.add_parser("answer", help="answer a request")
    ans.add_argument("transaction_id")
    ans.add_argument("result", choices=["approve", "deny", "fraud"])
    ans.add_argument("--pin")
    ans.add_argument("--number", type=int)
    sub.add_parser("watch", help="wait for requests and answer them interactively")
    sub.add_parser("sign-out", help="deactivate this device")
    args = parser.parse_args(argv)
    verify: str | bool = args.ca or True
    try:
        if args.command == "activate":
            if args.qr:
                url, code = parse_activation(_qr_payload(args.qr))
            elif args.url and args.code:
                url, code = args.url, args.code
            else:
                parser.error("give --qr IMAGE, or URL and CODE")
            phone = PhoneClient.activate(url, code, device_name=args.name, verify=verify)
            phone.state.save(args.state)
            print(f"Activated {phone.state.account_name} ({phone.state.username}) as device {phone.state.device_id}.")
            return 0
        phone = PhoneClient(PhoneState.load(args.state), verify=verify)
        if args.command == "pending":
            for r in phone.pending(args.wait):
                _show(r)
        elif args.command == "answer":
            outcome = phone.answer(args.transaction_id, args.result, pin=args.pin, number=args.number)
            print(outcome["status"])
        elif args.command == "watch":
            _watch(phone)
        elif args.command == "sign-out":
            phone.sign_out()
            args.state.unlink()
            print("Signed out; the device is deactivated.")
    except PhoneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _show(r: dict[str, object]) -> None:
    print(f"{r['transaction_id']}  {r['username']}  from {r.get('application') or '?'}"
          f" ({r.get('client_ip') or '?'})  until {r['expires_at']}"
          + (f"  numbers {r['number_choices']}" if r["number_choices"] else "")
          + ("  PIN required" if r["pin_required"] else ""))


def _watch(phone: PhoneClient) -> None:  # pragma: no cover - interactive
    while True:
        for r in phone.pending(25):
            _show(r)
            choice = input("approve / deny / fraud? ").strip() or "deny"
            number = int(input("number shown on the sign-in page: ")) if r["number_choices"] else None
            pin = input("PIN: ") if r["pin_required"] else None
            print(phone.answer(str(r["transaction_id"]), choice, pin=pin, number=number)["status"])


if __name__ == "__main__":
    sys.exit(main())
