"""``portal.config.load``: defaults, the instance file, the environment, overrides and validation.

Every call passes an explicit ``environ`` so the real environment never leaks in, and an
``INSTANCE_PATH`` under ``tmp_path`` so generated keys land in the test's own directory.
"""

from __future__ import annotations

import base64
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

import portal.config as config_module
from portal.config import load
from portal.core.errors import ConfigError

SECRET = "s" * 40
KEY_B64 = base64.b64encode(bytes(range(32))).decode()


def _load(tmp_path: Path, env: dict[str, str] | None = None, **overrides: Any) -> dict[str, Any]:
    return load({"INSTANCE_PATH": str(tmp_path / "instance"), **overrides}, environ=env or {})


def _server_env(**extra: str) -> dict[str, str]:
    env = {"PORTAL_ROLE": "server", "PORTAL_BASE_URL": "https://mfa.example.com", "PORTAL_SECRET_KEY": SECRET,
           "PORTAL_ENCRYPTION_KEY": KEY_B64, "PORTAL_DATABASE_URL": "sqlite:///x.db"}
    env.update(extra)
    return env


def _frontend_env(**extra: str) -> dict[str, str]:
    env = {"PORTAL_ROLE": "frontend", "PORTAL_BASE_URL": "https://portal.example.com", "PORTAL_SECRET_KEY": SECRET,
           "PORTAL_SDK_URL": "https://mfa.example.com/PfWsSdk.asmx", "PORTAL_SDK_USERNAME": "svc",
           "PORTAL_SDK_PASSWORD": "service-password"}
    env.update(extra)
    return env


def _config_error(tmp_path: Path, env: dict[str, str], **overrides: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, env, **overrides)
    return info.value


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- the embedded default -----------------------------------------------------------------
def test_embedded_default_generates_keys_with_mode_0600_and_reuses_them(tmp_path: Path) -> None:
    first = _load(tmp_path)
    instance = tmp_path / "instance"
    secret_file, key_file = instance / "secret_key", instance / "encryption_key"

    assert first["ROLE"] == "all"
    assert secret_file.is_file() and key_file.is_file()
    assert _mode(secret_file) == 0o600
    assert _mode(key_file) == 0o600
    assert secret_file.read_text().strip() == first["SECRET_KEY"]
    assert key_file.read_text().strip() == first["ENCRYPTION_KEY"]
    assert len(first["SECRET_KEY"]) >= 32
    assert len(base64.b64decode(first["ENCRYPTION_KEY"], validate=True)) == 32
    assert first["ENCRYPTION_KEY_BYTES"] == base64.b64decode(first["ENCRYPTION_KEY"])
    assert first["DATABASE_URL"] == f"sqlite:///{instance / 'portal.db'}"
    assert first["BASE_URL"] == "http://127.0.0.1:5000"
    assert first["INSTANCE_PATH"] == str(instance)

    second = _load(tmp_path)
    assert second["SECRET_KEY"] == first["SECRET_KEY"]
    assert second["ENCRYPTION_KEY"] == first["ENCRYPTION_KEY"]
    assert _mode(secret_file) == 0o600 and _mode(key_file) == 0o600


def test_embedded_default_base_url_follows_port(tmp_path: Path) -> None:
    assert _load(tmp_path, {"PORT": "8123"})["BASE_URL"] == "http://127.0.0.1:8123"


def test_given_keys_are_used_and_nothing_is_generated(tmp_path: Path) -> None:
    cfg = _load(tmp_path, {"PORTAL_SECRET_KEY": SECRET, "PORTAL_ENCRYPTION_KEY": KEY_B64})
    assert cfg["SECRET_KEY"] == SECRET and cfg["ENCRYPTION_KEY_BYTES"] == bytes(range(32))
    assert not (tmp_path / "instance" / "secret_key").exists()
    assert not (tmp_path / "instance" / "encryption_key").exists()


def test_valid_server_and_frontend_configurations_load(tmp_path: Path) -> None:
    server = _load(tmp_path, _server_env())
    assert server["ROLE"] == "server" and server["SSL_REQUIRED"] is True
    front = _load(tmp_path, _frontend_env())
    assert front["ROLE"] == "frontend" and front["ENCRYPTION_KEY_BYTES"] is None
    assert not (tmp_path / "instance" / "secret_key").exists()


# -- each invalid value names its variable -------------------------------------------------
@pytest.mark.parametrize(("env", "variable"), [
    ({"PORTAL_ROLE": "bogus"}, "PORTAL_ROLE"),
    ({"PORTAL_BASE_URL": "ftp://x"}, "PORTAL_BASE_URL"),
    ({"PORTAL_BASE_URL": "https://"}, "PORTAL_BASE_URL"),
    ({"PORTAL_BASE_URL": "http://mfa.example.com"}, "PORTAL_BASE_URL"),
    ({"PORTAL_BASE_URL": "http://mfa.example.com", "PORTAL_SSL_REQUIRED": "true"}, "PORTAL_BASE_URL"),
    ({"PORTAL_SSL_REQUIRED": "maybe"}, "PORTAL_SSL_REQUIRED"),
    ({"PORTAL_TRUSTED_PROXIES": "abc"}, "PORTAL_TRUSTED_PROXIES"),
    ({"PORTAL_TRUSTED_PROXIES": "9"}, "PORTAL_TRUSTED_PROXIES"),
    ({"PORTAL_TRUSTED_PROXIES": "-1"}, "PORTAL_TRUSTED_PROXIES"),
    ({"PORTAL_SECRET_KEY": "too-short"}, "PORTAL_SECRET_KEY"),
    ({"PORTAL_ENCRYPTION_KEY": "not base64 at all!"}, "PORTAL_ENCRYPTION_KEY"),
    ({"PORTAL_ENCRYPTION_KEY": base64.b64encode(b"16 bytes only...").decode()}, "PORTAL_ENCRYPTION_KEY"),
    ({"PORTAL_DATABASE_URL": "mysql://u:p@db/portal"}, "PORTAL_DATABASE_URL"),
    ({"PORTAL_MOBILE_APP_PATH": "PA"}, "PORTAL_MOBILE_APP_PATH"),
    ({"PORTAL_MOBILE_APP_PATH": "/PA/"}, "PORTAL_MOBILE_APP_PATH"),
    ({"PORTAL_MOBILE_APP_PATH": "/"}, "PORTAL_MOBILE_APP_PATH"),
    ({"PORTAL_ARGON2_MEMORY_COST": "16"}, "PORTAL_ARGON2_MEMORY_COST"),
])
def test_invalid_value_names_its_variable(tmp_path: Path, env: dict[str, str], variable: str) -> None:
    err = _config_error(tmp_path, env)
    assert err.variable == variable
    assert err.message.startswith(variable + ":")


@pytest.mark.parametrize("role", ["server", "frontend"])
def test_base_url_is_required_outside_the_embedded_default(tmp_path: Path, role: str) -> None:
    env = _server_env() if role == "server" else _frontend_env()
    del env["PORTAL_BASE_URL"]
    assert _config_error(tmp_path, env).variable == "PORTAL_BASE_URL"


def test_database_url_is_required_for_the_server_role(tmp_path: Path) -> None:
    env = _server_env()
    del env["PORTAL_DATABASE_URL"]
    assert _config_error(tmp_path, env).variable == "PORTAL_DATABASE_URL"


def test_mysql_url_refused_for_the_server_role(tmp_path: Path) -> None:
    err = _config_error(tmp_path, _server_env(PORTAL_DATABASE_URL="mysql://u:p@db/portal"))
    assert err.variable == "PORTAL_DATABASE_URL"


@pytest.mark.parametrize("name", ["SECRET_KEY", "ENCRYPTION_KEY"])
def test_server_role_needs_its_keys(tmp_path: Path, name: str) -> None:
    env = _server_env()
    del env[f"PORTAL_{name}"]
    assert _config_error(tmp_path, env).variable == f"PORTAL_{name}"
    assert not (tmp_path / "instance" / name.lower()).exists()


@pytest.mark.parametrize("name", ["SDK_URL", "SDK_USERNAME", "SDK_PASSWORD"])
def test_frontend_needs_the_sdk_settings(tmp_path: Path, name: str) -> None:
    env = _frontend_env()
    del env[f"PORTAL_{name}"]
    assert _config_error(tmp_path, env).variable == f"PORTAL_{name}"


def test_frontend_refuses_a_plain_http_sdk_url_to_a_remote_host(tmp_path: Path) -> None:
    err = _config_error(tmp_path, _frontend_env(PORTAL_SDK_URL="http://mfa.example.com/PfWsSdk.asmx"))
    assert err.variable == "PORTAL_SDK_URL"


# -- SSL_REQUIRED defaults ------------------------------------------------------------------
@pytest.mark.parametrize(("base_url", "expected"), [
    ("http://127.0.0.1", False),
    ("http://localhost:8080", False),
    ("http://[::1]:5000", False),
    ("https://mfa.example.com", True),
])
def test_ssl_required_default_depends_on_loopback(tmp_path: Path, base_url: str, expected: bool) -> None:
    assert _load(tmp_path, {"PORTAL_BASE_URL": base_url})["SSL_REQUIRED"] is expected


def test_ssl_required_can_be_switched_off_for_a_remote_http_url(tmp_path: Path) -> None:
    cfg = _load(tmp_path, {"PORTAL_BASE_URL": "http://mfa.example.com/", "PORTAL_SSL_REQUIRED": "off"})
    assert cfg["SSL_REQUIRED"] is False
    assert cfg["BASE_URL"] == "http://mfa.example.com"  # trailing slash removed


# -- the instance file, the environment and overrides ----------------------------------------
def _write_toml(tmp_path: Path, text: str) -> Path:
    instance = tmp_path / "instance"
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "portal.toml"
    path.write_text(text)
    return path


def test_instance_file_is_read(tmp_path: Path) -> None:
    _write_toml(tmp_path, 'base_url = "https://file.example.com"\nPORTAL_TRUSTED_PROXIES = 2\n'
                          'ssl_required = true\nadmins_group = "File Admins"\n')
    cfg = _load(tmp_path)
    assert cfg["BASE_URL"] == "https://file.example.com"
    assert cfg["TRUSTED_PROXIES"] == 2
    assert cfg["SSL_REQUIRED"] is True
    assert cfg["ADMINS_GROUP"] == "File Admins"


def test_config_file_variable_points_elsewhere(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text('admins_group = "Elsewhere"\n')
    _write_toml(tmp_path, 'admins_group = "Instance"\n')
    assert _load(tmp_path, {"PORTAL_CONFIG_FILE": str(other)})["ADMINS_GROUP"] == "Elsewhere"


def test_unknown_key_in_instance_file_is_named(tmp_path: Path) -> None:
    _write_toml(tmp_path, 'favourite_colour = "blue"\n')
    err = _config_error(tmp_path, {})
    assert err.variable == "PORTAL_FAVOURITE_COLOUR"
    assert "portal.toml" in err.message


def test_invalid_toml_is_refused(tmp_path: Path) -> None:
    _write_toml(tmp_path, "base_url = \n[[[")
    err = _config_error(tmp_path, {})
    assert err.variable == "PORTAL_CONFIG_FILE"
    assert "portal.toml" in err.message


def test_wrongly_typed_value_in_instance_file_is_named(tmp_path: Path) -> None:
    _write_toml(tmp_path, 'trusted_proxies = "many"\n')
    assert _config_error(tmp_path, {}).variable == "PORTAL_TRUSTED_PROXIES"


def test_environment_beats_the_file_and_overrides_beat_the_environment(tmp_path: Path) -> None:
    _write_toml(tmp_path, 'admins_group = "File"\ntrusted_proxies = 1\nlog_level = "DEBUG"\n')
    env = {"PORTAL_ADMINS_GROUP": "Env", "PORTAL_TRUSTED_PROXIES": "2"}

    cfg = _load(tmp_path, env)
    assert (cfg["ADMINS_GROUP"], cfg["TRUSTED_PROXIES"], cfg["LOG_LEVEL"]) == ("Env", 2, "DEBUG")

    cfg = _load(tmp_path, env, ADMINS_GROUP="Override", TRUSTED_PROXIES=3)
    assert (cfg["ADMINS_GROUP"], cfg["TRUSTED_PROXIES"], cfg["LOG_LEVEL"]) == ("Override", 3, "DEBUG")


def test_invalid_override_is_named_like_the_variable(tmp_path: Path) -> None:
    assert _config_error(tmp_path, {}, TRUSTED_PROXIES="lots").variable == "PORTAL_TRUSTED_PROXIES"
    assert _config_error(tmp_path, {}, SSL_REQUIRED="perhaps").variable == "PORTAL_SSL_REQUIRED"


def test_unknown_overrides_pass_through(tmp_path: Path) -> None:
    cfg = _load(tmp_path, TESTING=True, SOMETHING_ELSE=42)
    assert cfg["TESTING"] is True and cfg["SOMETHING_ELSE"] == 42


@pytest.mark.parametrize("password", ["123456789012", "007007007007", "1e3000000000", "0x1000000000", "true" * 3])
def test_numeric_looking_admin_password_stays_a_string(tmp_path: Path, password: str) -> None:
    cfg = _load(tmp_path, {"PORTAL_ADMIN_PASSWORD": password})
    assert cfg["ADMIN_PASSWORD"] == password
    assert isinstance(cfg["ADMIN_PASSWORD"], str)


def test_quoted_numeric_admin_password_in_the_file_stays_a_string(tmp_path: Path) -> None:
    _write_toml(tmp_path, 'admin_password = "000123000123"\n')
    assert _load(tmp_path)["ADMIN_PASSWORD"] == "000123000123"


def test_a_short_admin_password_is_refused_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, {"PORTAL_ADMIN_PASSWORD": "short"})
    assert err.value.variable == "PORTAL_ADMIN_PASSWORD"


def test_an_empty_key_file_gets_a_clear_message(tmp_path: Path) -> None:
    inst = tmp_path / "instance"
    inst.mkdir()
    (inst / "secret_key").write_text("")
    with pytest.raises(ConfigError) as err:
        _load(tmp_path)
    assert err.value.variable == "PORTAL_SECRET_KEY" and "is empty" in str(err.value)


def test_a_bad_port_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, {"PORT": "http"})
    assert err.value.variable == "PORT"


def test_environment_ints_and_bools_are_typed(tmp_path: Path) -> None:
    cfg = _load(tmp_path, {"PORTAL_TRUSTED_PROXIES": " 1 ", "PORTAL_SSL_REQUIRED": "No",
                           "PORTAL_ARGON2_TIME_COST": "2"})
    assert cfg["TRUSTED_PROXIES"] == 1 and cfg["SSL_REQUIRED"] is False and cfg["ARGON2_TIME_COST"] == 2


def test_a_second_process_starting_during_key_generation_gets_the_same_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generating, release = threading.Event(), threading.Event()
    real_token_urlsafe = config_module.secrets.token_urlsafe

    def slow_token_urlsafe(nbytes: int | None = None) -> str:
        if threading.current_thread().name == "first-start" and not release.is_set():
            generating.set()  # the first process is generating its secret key ...
            release.wait(10)  # ... and is descheduled for a moment
        return real_token_urlsafe(nbytes)

    monkeypatch.setattr(config_module.secrets, "token_urlsafe", slow_token_urlsafe)
    first: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: first.update(_load(tmp_path)), name="first-start")
    thread.start()
    try:
        assert generating.wait(10)
        second = _load(tmp_path)  # the second process starts meanwhile
    finally:
        release.set()
        thread.join(10)
    assert second["SECRET_KEY"] == first["SECRET_KEY"]
    assert second["ENCRYPTION_KEY"] == first["ENCRYPTION_KEY"]
