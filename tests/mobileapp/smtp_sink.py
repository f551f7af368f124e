"""A minimal SMTP server on 127.0.0.1 that keeps what it is sent (RFC 5321's commands only)."""

from __future__ import annotations

import socket
import threading
from email import message_from_bytes
from email.message import Message


class SmtpSink:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []
        self.received = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rwb") as f:
                self._session(f)

    def _session(self, f) -> None:  # type: ignore[no-untyped-def]
        def reply(line: str) -> None:
            f.write(line.encode() + b"\r\n")
            f.flush()

        reply("220 sink ESMTP")
        sender, recipients = "", []
        while True:
            line = f.readline().decode().rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                reply("250 sink")
            elif verb == "MAIL":
                sender = line.split(":", 1)[1].strip(" <>")
                reply("250 ok")
            elif verb == "RCPT":
                recipients.append(line.split(":", 1)[1].strip(" <>"))
                reply("250 ok")
            elif verb == "DATA":
                reply("354 go on")
                data = b""
                while (chunk := f.readline()) not in (b".\r\n", b""):
                    data += chunk
                self.messages.append((sender, recipients, message_from_bytes(data)))
                reply("250 queued")
                self.received.set()
            elif verb == "QUIT" or not line:
                reply("221 bye")
                return
            else:
                reply("250 ok")
