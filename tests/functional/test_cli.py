"""``flask --app wsgi <command>`` through Flask's CLI runner, against the test's own database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import text

from portal.core.audit import Actor
from portal.core.errors import Unauthorized
from portal.core.services import Services

ONE_TIME = re.compile(r"one-time password: (\S+)")


def _services(app: Flask) -> Services:
    services: Services = app.extensions["portal.services"]
    return services


def _run(app: Flask, *args: str, input: str | None = None) -> Result:
    return app.test_cli_runner().invoke(args=list(args), input=input)


# -- setup -------------------------------------------------------------------------------------
def test_setup_prints_the_generated_password_once(app) -> None:  # type: ignore[no-untyped-def]
    first = _run(app, "setup")
    assert first.exit_code == 0, first.output
    assert "First staff account created: admin (administrator" in first.stdout
    passwords = ONE_TIME.findall(first.stdout)
    assert len(passwords) == 1
    password = passwords[0]
    assert first.stdout.count(password) == 1
    assert len(password) >= 16

    principal = _services(app).accounts.authenticate_sdk(Actor("t"), "admin", password)
    assert principal.role == "administrator" and principal.password_change_required

    second = _run(app, "setup")
    assert second.exit_code == 0, second.output
    assert "already exist" in second.stdout
    assert "password" not in second.stdout.lower()
    assert password not in second.output
    assert _services(app).accounts.count() == 1


@pytest.mark.app_config(ADMIN_USERNAME="root", ADMIN_PASSWORD="a-long-password-123")
def test_setup_with_configured_admin_prints_no_password(app) -> None:  # type: ignore[no-untyped-def]
    result = _run(app, "setup")
    assert result.exit_code == 0, result.output
    assert "First staff account created: root" in result.stdout
    assert "one-time password" not in result.output
    assert "a-long-password-123" not in result.output

    principal = _services(app).accounts.authenticate_sdk(Actor("t"), "root", "a-long-password-123")
    assert principal.username == "root" and principal.role == "administrator"
    assert not principal.password_change_required
    with pytest.raises(Unauthorized):
        _services(app).accounts.authenticate(Actor("t"), "admin", "a-long-password-123")


def test_a_too_short_admin_password_stops_start_up_naming_the_variable(tmp_path, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    from portal import create_app
    from portal.core.errors import ConfigError
    from tests.conftest import app_settings

    with pytest.raises(ConfigError) as err:
        create_app(app_settings(tmp_path, sqlite_url, ADMIN_PASSWORD="short"))
    assert err.value.variable == "PORTAL_ADMIN_PASSWORD"


def test_db_upgrade_is_idempotent(app) -> None:  # type: ignore[no-untyped-def]
    for _ in range(2):
        result = _run(app, "db-upgrade")
        assert result.exit_code == 0, result.output
        assert "newest schema" in result.stdout


# -- create-staff / create-user --------------------------------------------------------------
def test_create_staff_with_password_option(app) -> None:  # type: ignore[no-untyped-def]
    result = _run(app, "create-staff", "helper1", "--right", "unblock", "--password", "helper-password-1")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Created staff account helper1 (helpdesk)."
    principal = _services(app).accounts.authenticate(Actor("t"), "helper1", "helper-password-1")
    assert principal.can("unblock") and not principal.can("delete_user")


def test_create_staff_prompts_for_the_password_twice(app) -> None:  # type: ignore[no-untyped-def]
    pw = "prompted-password-9"
    result = _run(app, "create-staff", "svc-sdk", "--role", "service", "--group", "MFA Admins",
                  input=f"{pw}\n{pw}\n")
    assert result.exit_code == 0, result.output
    assert "Created service account svc-sdk (service)." in result.stdout
    assert pw not in result.output  # hide_input
    principal = _services(app).accounts.authenticate_sdk(Actor("t"), "svc-sdk", pw)
    assert principal.kind == "service"


def test_create_staff_rejects_a_short_password_and_a_duplicate(app) -> None:  # type: ignore[no-untyped-def]
    short = _run(app, "create-staff", "helper2", "--password", "short")
    assert short.exit_code == 1
    assert "password" in short.output and "12" in short.output
    assert "Traceback" not in short.output

    assert _run(app, "create-staff", "helper2", "--password", "helper-password-2").exit_code == 0
    dup = _run(app, "create-staff", "HELPER2", "--password", "helper-password-2")
    assert dup.exit_code == 1
    assert "already exists" in dup.output


def test_create_user(app) -> None:  # type: ignore[no-untyped-def]
    result = _run(app, "create-user", "carol", "--display-name", "Carol C", "--email", "carol@example.com",
                  "--phone", "+44 20 7946 0002")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Created user carol."
    info = _services(app).users.get("carol")
    assert (info.display_name, info.email, info.phone) == ("Carol C", "carol@example.com", "+442079460002")

    shown = _run(app, "user-info", "carol")
    assert shown.exit_code == 0 and "phone: +442079460002" in shown.stdout


def test_create_user_with_a_password_prompt(app) -> None:  # type: ignore[no-untyped-def]
    result = _run(app, "create-user", "dave", "--ask-password", input="dave-password\ndave-password\n")
    assert result.exit_code == 0, result.output
    assert "dave-password" not in result.output
    assert _services(app).primary.validate(Actor("t"), "dave", "dave-password")


def test_create_user_errors_are_messages_not_tracebacks(app) -> None:  # type: ignore[no-untyped-def]
    bad = _run(app, "create-user", "erin", "--phone", "12345")
    assert bad.exit_code == 1
    assert "phone" in bad.output and "Traceback" not in bad.output
    assert not _services(app).users.exists("erin")


# -- import-users ------------------------------------------------------------------------------
def test_import_users_reports_bad_rows_with_line_numbers(app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    csv_file = tmp_path / "users.csv"
    csv_file.write_text(
        "username,display_name,email,phone\n"  # line 1
        "alice,Alice A,alice@example.com,+44 20 7946 0000\n"  # 2 good
        "bad name,Bad,,\n"  # 3 bad username
        "bob,Bob B,not-an-email,\n"  # 4 bad e-mail
        "carol,Carol C,,+44 20 7946 0002\n"  # 5 good
        "dave,Dave,,12345\n"  # 6 bad phone
        "ALICE,Duplicate,,\n"  # 7 duplicate of line 2
        "erin,Erin,,,extra\n"  # 8 too many fields
        "\"frank\",\"Frank, Jr.\",frank@example.com,\n",  # 9 good, quoted comma
        encoding="utf-8",
    )
    result = _run(app, "import-users", str(csv_file))
    assert result.exit_code == 1
    out = result.stdout
    assert "Imported 3 user(s); rejected 5." in out
    rejected = dict(re.findall(r"^  line (\d+): (.+)$", out, flags=re.MULTILINE))
    assert sorted(int(n) for n in rejected) == [3, 4, 6, 7, 8]
    assert "username" in rejected["3"]
    assert "email" in rejected["4"]
    assert "phone" in rejected["6"]
    assert "already exists" in rejected["7"]
    assert "more fields" in rejected["8"]

    users = _services(app).users
    assert users.exists("alice") and users.exists("carol") and users.exists("frank")
    assert users.get("frank").display_name == "Frank, Jr."
    for name in ("bob", "dave", "erin"):
        assert not users.exists(name)


def test_import_users_line_numbers_count_multiline_fields(app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    csv_file = tmp_path / "users.csv"
    csv_file.write_text(
        "username,display_name\n"  # line 1
        "gina,\"Gina\nsecond line\"\n"  # lines 2-3 (a quoted newline)
        "bad name,Bad\n",  # line 4
        encoding="utf-8",
    )
    result = _run(app, "import-users", str(csv_file))
    assert result.exit_code == 1
    assert "  line 4: " in result.stdout


def test_import_users_all_good_exits_zero(app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    csv_file = tmp_path / "users.csv"
    csv_file.write_text("\ufeffusername,email\nhank,hank@example.com\nivy,\n", encoding="utf-8")
    result = _run(app, "import-users", str(csv_file))
    assert result.exit_code == 0, result.output
    assert "Imported 2 user(s); rejected 0." in result.stdout


def test_import_users_bad_header(app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    csv_file = tmp_path / "users.csv"
    csv_file.write_text("name,shoe_size\njack,9\n", encoding="utf-8")
    result = _run(app, "import-users", str(csv_file))
    assert result.exit_code == 1
    assert "  line 1: " in result.stdout and "username" in result.stdout


# -- verify-audit ------------------------------------------------------------------------------
def test_verify_audit_detects_a_tampered_row(app) -> None:  # type: ignore[no-untyped-def]
    assert _run(app, "setup").exit_code == 0
    for name in ("kim", "lee", "max"):
        assert _run(app, "create-user", name).exit_code == 0

    intact = _run(app, "verify-audit")
    assert intact.exit_code == 0, intact.output
    assert re.search(r"Audit chain intact: \d+ entries\.", intact.stdout)
    total = int(re.search(r"intact: (\d+)", intact.stdout).group(1))  # type: ignore[union-attr]
    assert total >= 4

    services = _services(app)
    with services.db.engine.begin() as conn:
        seq = conn.execute(text("SELECT seq FROM audit_log WHERE action = 'user.create' AND target = 'lee'")).scalar()
        assert isinstance(seq, int)
        conn.execute(text("UPDATE audit_log SET target = 'mallory' WHERE seq = :s"), {"s": seq})

    broken = _run(app, "verify-audit")
    assert broken.exit_code == 2
    assert f"Audit chain BROKEN at entry {seq}:" in broken.stdout
    assert f"({seq - 1} entries verified before it)" in broken.stdout


def test_verify_audit_detects_removed_newest_entries(app) -> None:  # type: ignore[no-untyped-def]
    assert _run(app, "setup").exit_code == 0
    assert _run(app, "create-user", "nora").exit_code == 0
    services = _services(app)
    with services.db.engine.begin() as conn:
        last = conn.execute(text("SELECT MAX(seq) FROM audit_log")).scalar()
        conn.execute(text("DELETE FROM audit_log WHERE seq = :s"), {"s": last})
    broken = _run(app, "verify-audit")
    assert broken.exit_code == 2
    assert f"BROKEN at entry {last}" in broken.stdout


# -- settings --------------------------------------------------------------------------------
def test_settings_show_and_change(app) -> None:  # type: ignore[no-untyped-def]
    shown = _run(app, "settings")
    assert shown.exit_code == 0, shown.output
    assert "device_limit = 1    # Device limit" in shown.stdout
    assert "allow_users_to_log_in = True    # Allow users to log in" in shown.stdout

    changed = _run(app, "settings", "device_limit=3")
    assert changed.exit_code == 0, changed.output
    assert "device_limit = 3    # Device limit" in changed.stdout
    assert _services(app).settings.get()["device_limit"] == 3

    too_big = _run(app, "settings", "device_limit=30")
    assert too_big.exit_code == 1
    assert "device_limit" in too_big.output and "between 1 and 10" in too_big.output
    assert _services(app).settings.get()["device_limit"] == 3


def test_settings_refuses_unknown_keys_and_bad_syntax(app) -> None:  # type: ignore[no-untyped-def]
    unknown = _run(app, "settings", "no_such_setting=1")
    assert unknown.exit_code == 1
    assert "no_such_setting" in unknown.output

    bad = _run(app, "settings", "device_limit")
    assert bad.exit_code == 2
    assert "is not key=value" in bad.output


def test_settings_change_is_atomic(app) -> None:  # type: ignore[no-untyped-def]
    result = _run(app, "settings", "device_limit=4", "pin_minimum_length=99")
    assert result.exit_code == 1
    assert "pin_minimum_length" in result.output
    assert _services(app).settings.get()["device_limit"] == 1


def test_setup_creates_a_database_only_its_owner_can_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import stat

    from portal import create_app
    from tests.conftest import app_settings

    db = tmp_path / "fresh" / "portal.db"
    app = create_app(app_settings(tmp_path, f"sqlite:///{db}"))
    try:
        assert app.test_cli_runner().invoke(args=["setup"]).exit_code == 0
        for path in tmp_path.joinpath("fresh").glob("portal.db*"):
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    finally:
        app.extensions["portal.services"].close()


# -- import-tokens and the settings listing ------------------------------------------------------
def test_import_tokens_keeps_good_rows_and_never_echoes_a_secret(app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    csv_file = tmp_path / "tokens.csv"
    csv_file.write_text(
        "serial,secret,type,digits\n"
        f"HW-0001,{secret},totp,6\n"  # 2 good
        "HW-0002,NOT*BASE32,totp,6\n"  # 3 bad secret
        f"HW-0001,{secret},totp,6\n"  # 4 duplicate serial
        f"HW-0003,{secret},hotp,7\n"  # 5 bad digits
        f"HW-0004,{secret},hotp,eight\n",  # 6 not a number
        encoding="utf-8",
    )
    result = _run(app, "import-tokens", str(csv_file))
    assert result.exit_code == 1
    assert "Imported 1 token(s); rejected 4." in result.stdout
    rejected = dict(re.findall(r"^  line (\d+): (.+)$", result.stdout, flags=re.MULTILINE))
    assert sorted(int(n) for n in rejected) == [3, 4, 5, 6]
    assert "Base32" in rejected["3"] and "already exists" in rejected["4"] and "digits" in rejected["5"]
    assert secret not in result.output and "NOT*BASE32" not in result.output


def test_settings_listing_says_why_phone_methods_are_not_offered(app) -> None:  # type: ignore[no-untyped-def]
    out = _run(app, "settings").stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("method_phone_call"))
    assert "not offered to users: no phone/SMS provider is configured" in line
    assert "not offered" not in next(ln for ln in out.splitlines() if ln.startswith("method_mobile_app"))


# -- staff ------------------------------------------------------------------------------------
def test_staff_commands_recover_and_administer_accounts(app) -> None:  # type: ignore[no-untyped-def]
    accounts = _services(app).accounts
    accounts.create(Actor("t"), "ada", "staff-password-123456", role="administrator")
    accounts.create(Actor("t"), "hal", "staff-password-123456", rights=("unblock",))
    listed = _run(app, "staff", "list")
    assert listed.exit_code == 0
    assert "hal\tstaff\thelpdesk\trights=unblock\tgroups=-\tenabled totp=none" in listed.stdout
    assert "password" not in listed.stdout.replace("change-password", "")

    up = _run(app, "staff", "update", "hal", "--right", "unblock", "--right", "view_audit", "--group", "MFA Admins")
    assert up.exit_code == 0 and "rights unblock,view_audit, groups MFA Admins" in up.stdout
    bad = _run(app, "staff", "update", "hal", "--right", "fly")
    assert bad.exit_code == 1 and "rights" in bad.output and "Traceback" not in bad.output

    reset = _run(app, "staff", "reset-password", "ada", "--reason", "lost it")
    password = reset.stdout.rsplit(": ", 1)[1].strip()
    assert accounts.authenticate(Actor("t"), "ada", password).password_change_required
    assert _run(app, "staff", "reset-password", "ada").exit_code == 2  # --reason is required

    assert _run(app, "staff", "reset-totp", "ada", "--reason", "new phone").exit_code == 0
    assert accounts.info("ada").totp == "none"
    last = _run(app, "staff", "disable", "ada", "--reason", "test")
    assert last.exit_code == 1 and "last enabled administrator" in last.output
    assert _run(app, "staff", "disable", "hal", "--reason", "left").exit_code == 0
    assert not accounts.info("hal").enabled
    assert _run(app, "staff", "enable", "hal", "--reason", "back").exit_code == 0
    assert _run(app, "staff", "disable", "nobody", "--reason", "x").exit_code == 1
