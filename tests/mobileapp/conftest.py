"""The phone API against a live server on 127.0.0.1 (the SDK tests' fixtures), driven by the
reference phone client, with applications calling the SDK over SOAP."""

from __future__ import annotations

from ..sdk.conftest import LiveServer, live_pg_server, live_server, live_tls_server, test_ca  # noqa: F401
