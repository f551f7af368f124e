"""A stand-in for APNs: HTTP/2 over TLS (ALPN ``h2`` only, as Apple's servers), checking each
push as Apple documents it: ``POST /3/device/<token>``, ``authorization: bearer`` with an ES256
provider token (header ``kid``, claims ``iss`` = team id and a recent ``iat``), ``apns-topic``,
``apns-push-type``, ``apns-priority`` and a JSON body under 4 KB."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from typing import Any

import h2.config
import h2.connection
import h2.events
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .fake_push import jws


class FakeApns:
    def __init__(self, cert_file: str, key_file: str, *, key_id: str, team_id: str, topic: str,
                 public_key: ec.EllipticCurvePublicKey) -> None:
        self.key_id, self.team_id, self.topic, self.public_key = key_id, team_id, topic, public_key
        self.pushes: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.alpn: list[str | None] = []
        self.received = threading.Event()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_file, key_file)
        ctx.set_alpn_protocols(["h2"])
        self._ctx = ctx
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._sock.close()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            conn = self._ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            return
        self.alpn.append(conn.selected_alpn_protocol())
        h2c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
        h2c.initiate_connection()
        conn.sendall(h2c.data_to_send())
        streams: dict[int, dict[str, Any]] = {}
        with conn:
            while True:
                try:
                    data = conn.recv(65535)
                except OSError:
                    return
                if not data:
                    return
                for event in h2c.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        streams[event.stream_id] = {"headers": {k.decode() if isinstance(k, bytes) else k:
                                                                v.decode() if isinstance(v, bytes) else v
                                                                for k, v in event.headers}, "body": b""}
                    elif isinstance(event, h2.events.DataReceived):
                        streams[event.stream_id]["body"] += event.data
                        h2c.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        status, body = self._check(streams.pop(event.stream_id))
                        h2c.send_headers(event.stream_id, [(":status", str(status)), ("apns-id", "00000000-0000")],
                                         end_stream=not body)
                        if body:
                            h2c.send_data(event.stream_id, body, end_stream=True)
                conn.sendall(h2c.data_to_send())

    def _check(self, req: dict[str, Any]) -> tuple[int, bytes]:
        h, body = req["headers"], req["body"]
        try:
            assert h.get(":method") == "POST", "method must be POST"
            path = h.get(":path", "")
            assert path.startswith("/3/device/") and len(path) > len("/3/device/"), "path /3/device/<token>"
            assert h.get("apns-topic") == self.topic, "apns-topic must be the bundle id"
            assert h.get("apns-push-type") in ("alert", "background"), "apns-push-type required"
            assert h.get("apns-priority") in ("5", "10"), "apns-priority 5 or 10"
            if h.get("apns-push-type") == "background":
                assert h.get("apns-priority") == "5", "background pushes must use priority 5"
            auth = h.get("authorization", "")
            assert auth.startswith("bearer "), "token-based authorization required"
            header, claims, signed, sig = jws(auth[len("bearer "):])
            assert header.get("alg") == "ES256" and header.get("kid") == self.key_id, f"bad JWT header {header}"
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            self.public_key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
            assert claims.get("iss") == self.team_id, "iss must be the team id"
            assert time.time() - 3600 < claims.get("iat", 0) <= time.time() + 5, "iat within the hour"
            assert len(body) <= 4096, "payload over 4 KB"
            doc = json.loads(body)
            assert "aps" in doc, "body must hold aps"
        except Exception as exc:  # any failure is a refusal, recorded for the test
            self.errors.append(str(exc) or type(exc).__name__)
            return 403, json.dumps({"reason": "InvalidProviderToken"}).encode()
        self.pushes.append({"token": path[len("/3/device/"):], "headers": h, "body": doc})
        self.received.set()
        return 200, b""
