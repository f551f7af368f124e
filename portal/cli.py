"""``flask --app wsgi <command>``: set-up and operations from the shell."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from .core.audit import Actor
from .core.errors import PortalError
from .core.importer import ImportReport, count_rows, import_tokens, import_users
from .core.migrate import upgrade
from .extensions import backend, services
from .sdk.backend import UserSettingsInput

CLI = Actor("cli")


def _fail(exc: PortalError) -> None:
    raise click.ClickException(exc.message) from exc


def init_app(app: Flask) -> None:
    @app.cli.command("db-upgrade")
    def db_upgrade() -> None:
        """Create or upgrade the database schema (Alembic migrations)."""
        upgrade(current_app.config["DATABASE_URL"])
        click.echo("Database is at the newest schema.")

    @app.cli.command("setup")
    def setup() -> None:
        """Upgrade the schema and create the first staff account if there is none (printed once)."""
        upgrade(current_app.config["DATABASE_URL"])
        try:
            created = services().accounts.bootstrap(current_app.config["ADMIN_USERNAME"],
                                                    current_app.config["ADMIN_PASSWORD"])
        except PortalError as exc:
            _fail(exc)
        if created is None:
            click.echo("Database ready; staff accounts already exist.")
            return
        username, generated = created
        click.echo(f"First staff account created: {username} (administrator, member of "
                   f"{current_app.config['ADMINS_GROUP']!r}).")
        if generated:
            click.echo("")
            click.echo(f"    username: {username}")
            click.echo(f"    one-time password: {generated}")
            click.echo("")
            click.echo("This password is shown once and must be changed at the first sign-in.")

    @app.cli.command("create-staff")
    @click.argument("username")
    @click.option("--role", type=click.Choice(["administrator", "helpdesk", "service"]), default="helpdesk")
    @click.option("--right", "rights", multiple=True, help="A helpdesk right (repeat).")
    @click.option("--group", "groups", multiple=True, help="A group, e.g. 'MFA Admins' for SDK access.")
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
    def create_staff(username: str, role: str, rights: tuple[str, ...], groups: tuple[str, ...],
                     password: str) -> None:
        """Create a staff account, or a service account for the SDK (--role service)."""
        kind = "service" if role == "service" else "staff"
        try:
            p = services().accounts.create(CLI, username, password, kind=kind, role=role, rights=rights,
                                           groups=groups)
        except PortalError as exc:
            _fail(exc)
        click.echo(f"Created {p.kind} account {p.username} ({p.role}).")

    staff = AppGroup("staff", help="List and administer staff and service accounts (recovery included).")
    app.cli.add_command(staff)

    @staff.command("list")
    def staff_list() -> None:
        """Every account: kind, role, rights, state (never a secret)."""
        for a in services().accounts.list_accounts():
            rights = "all" if a.role == "administrator" else ",".join(a.rights) or "-"
            state = ("enabled" if a.enabled else "disabled") + (" change-password" if a.password_change_required
                                                                else "")
            app_state = f" totp={a.totp}" if a.kind == "staff" else ""
            click.echo(f"{a.username}\t{a.kind}\t{a.role}\trights={rights}\tgroups={','.join(a.groups) or '-'}"
                       f"\t{state}{app_state}")

    @staff.command("update")
    @click.argument("username")
    @click.option("--role", type=click.Choice(["administrator", "helpdesk"]))
    @click.option("--right", "rights", multiple=True, help="Replaces the rights (repeat).")
    @click.option("--no-rights", is_flag=True, help="Remove every right.")
    @click.option("--group", "groups", multiple=True, help="Replaces the groups (repeat).")
    def staff_update(username: str, role: str | None, rights: tuple[str, ...], no_rights: bool,
                     groups: tuple[str, ...]) -> None:
        """Change an account's role, rights or groups."""
        try:
            a = services().accounts.update(CLI, username, role=role, rights=rights or (() if no_rights else None),
                                           groups=groups or None)
        except PortalError as exc:
            _fail(exc)
        click.echo(f"{a.username}: role {a.role}, rights {','.join(a.rights) or '-'}, "
                   f"groups {','.join(a.groups) or '-'}.")

    @staff.command("reset-password")
    @click.argument("username")
    @click.option("--reason", required=True)
    def staff_reset_password(username: str, reason: str) -> None:
        """A new generated password, printed once (staff must change it at the next sign-in)."""
        try:
            password = services().accounts.reset_password(CLI, username, reason)
        except PortalError as exc:
            _fail(exc)
        click.echo(f"New password for {username} (shown once): {password}")

    @staff.command("reset-totp")
    @click.argument("username")
    @click.option("--reason", required=True)
    def staff_reset_totp(username: str, reason: str) -> None:
        """Forget a staff member's authenticator app: they set up a new one at the next sign-in."""
        try:
            services().staff.reset_totp(CLI, username, reason)  # type: ignore[union-attr]
        except PortalError as exc:
            _fail(exc)
        click.echo(f"The authenticator app of {username} is reset; a new one is set up at the next sign-in.")

    def _switch(enabled: bool) -> None:
        verb = "enable" if enabled else "disable"

        @staff.command(verb, help=f"{verb.capitalize()} an account (a disabled one's sessions end at once).")
        @click.argument("username")
        @click.option("--reason", required=True)
        def command(username: str, reason: str) -> None:
            try:
                services().accounts.set_enabled(CLI, username, enabled, reason)
            except PortalError as exc:
                _fail(exc)
            click.echo(f"{verb.capitalize()}d {username}.")

    _switch(False)
    _switch(True)

    @app.cli.command("create-user")
    @click.argument("username")
    @click.option("--display-name")
    @click.option("--email")
    @click.option("--phone", help="International format, e.g. +44 20 7946 0000")
    @click.option("--ask-password", is_flag=True, help="Prompt for a local directory password.")
    def create_user(username: str, display_name: str | None, email: str | None, phone: str | None,
                    ask_password: bool) -> None:
        """Create an end user (through the MfaBackend: on a frontend, over the SDK)."""
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True) if ask_password else None
        try:
            u = backend(lambda: CLI).create_user(
                username, UserSettingsInput(display_name=display_name, email=email, phone=phone), password)
        except PortalError as exc:
            _fail(exc)
        click.echo(f"Created user {u.username}.")

    @app.cli.command("user-info")
    @click.argument("username")
    def user_info(username: str) -> None:
        """Show a user's settings (through the MfaBackend, like GetUserInfo)."""
        try:
            u = backend(lambda: CLI).get_user_info(username)
        except PortalError as exc:
            _fail(exc)
        for key, value in vars(u).items():
            if key not in ("oath_tokens", "devices"):
                click.echo(f"{key}: {value}")
        click.echo(f"oath_tokens: {len(u.oath_tokens)}, devices: {len(u.devices)}")

    @app.cli.command("sdk-test")
    def sdk_test() -> None:
        """TestPfWsSdkConnection: on a frontend, checks the SDK URL, credentials and TLS."""
        try:
            info = backend(lambda: CLI).test_connection()
        except PortalError as exc:
            _fail(exc)
        click.echo(f"{info.status}: {info.server_version}, server time {info.server_time:%Y-%m-%d %H:%M:%S} UTC")

    @app.cli.command("import-users")
    @click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    def import_users_command(csv_file: Path) -> None:
        """Import users from CSV (header: username, display_name, email, phone, ...).

        Rejected rows are listed with their line number and reason; valid rows are kept.
        """
        text = csv_file.read_text(encoding="utf-8-sig")
        with click.progressbar(length=count_rows(text), label="Importing users", file=sys.stderr) as bar:
            report = import_users(services().users, CLI, text.splitlines(keepends=True),
                                  on_row=lambda: bar.update(1))
        _report(report, "user")

    @app.cli.command("import-tokens")
    @click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    def import_tokens_command(csv_file: Path) -> None:
        """Import third-party OATH tokens for users to associate (header: serial, secret,
        and optionally type, algorithm, digits, period)."""
        text = csv_file.read_text(encoding="utf-8-sig")
        with click.progressbar(length=count_rows(text), label="Importing tokens", file=sys.stderr) as bar:
            report = import_tokens(services().tokens, CLI, text.splitlines(keepends=True),
                                   on_row=lambda: bar.update(1))
        _report(report, "token")

    @app.cli.command("verify-audit")
    def verify_audit() -> None:
        """Check the audit log's HMAC chain; name the first broken entry."""
        s = services()
        result = s.audit.verify(s.db)
        if result.ok:
            click.echo(f"Audit chain intact: {result.checked} entries.")
            return
        click.echo(f"Audit chain BROKEN at entry {result.first_broken_seq}: {result.reason} "
                   f"({result.checked} entries verified before it).")
        sys.exit(2)

    @app.cli.command("settings")
    @click.argument("assignments", nargs=-1)
    def settings_command(assignments: tuple[str, ...]) -> None:
        """Show the portal settings, or change them: settings key=value ..."""
        from .core.settings import BY_KEY

        svc = services().settings
        if assignments:
            changes = {}
            for item in assignments:
                key, sep, value = item.partition("=")
                if not sep:
                    raise click.BadParameter(f"{item!r} is not key=value")
                changes[key.strip()] = value
            try:
                svc.update(CLI, changes)
            except PortalError as exc:
                _fail(exc)
        offered = services().enrollment.offered_methods()
        for key, value in svc.get().items():
            note = ""
            if key.startswith("method_") and value and key[len("method_"):] not in offered:
                note = " (not offered to users: no phone/SMS provider is configured)"
            click.echo(f"{key} = {value!r}    # {BY_KEY[key].name}{note}")


def _report(report: ImportReport, what: str) -> None:
    """Print an import's outcome; exit 1 when a row was rejected."""
    click.echo(f"Imported {report.created} {what}(s); rejected {len(report.rejected)}.")
    for line, reason in report.rejected:
        click.echo(f"  line {line}: {reason}")
    if report.rejected:
        sys.exit(1)
