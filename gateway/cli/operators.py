"""``smsgw operators add | list | passwd | disable | enable``: operators' accounts.

A password is read from standard input when it is not a terminal (one line, so scripts can
create accounts: ``printf '%s\\n' "$PW" | smsgw operators add ana``), else asked twice without
echo. Every change is in the audit log (actor ``cli:<system user>``). Changing a password or
disabling an account ends that operator's sessions at once.

Exit status: 0 done; 1 the operator exists (add) or does not (the others); 2 nothing could be done
(configuration, schema, name, password).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from config.settings import DEFAULT_CONFIG, ConfigError, Settings
from gateway.domain.operators import Role


def _settings(path: str | None) -> Settings:
    from config.settings import load_settings
    from gateway.cli.common import AnySecret, check_schema, fail

    try:
        settings = load_settings(path or DEFAULT_CONFIG, env=AnySecret(os.environ))
    except ConfigError as exc:
        fail(str(exc))
        raise
    check_schema(settings)
    return settings


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def read_password(stdin=None) -> str:
    """The new password: a line of standard input, or asked twice at a terminal."""
    from gateway.cli.common import fail
    from gateway.services.passwords import check_new_password

    stdin = stdin or sys.stdin
    if stdin.isatty():
        first = getpass.getpass("new password: ")
        if getpass.getpass("again: ") != first:
            fail("the two passwords differ; nothing was changed")
        password = first
    else:
        password = stdin.readline().removesuffix("\n").removesuffix("\r")
        if not password:
            fail("no password on standard input (one line expected); nothing was changed")
    try:
        return check_new_password(password)
    except ValueError as exc:
        fail(f"{exc}; nothing was changed")
        raise


def _database(settings: Settings):
    from gateway.store.db import Database

    return Database(settings.database.url)


def _username(raw: str) -> str:
    from gateway.cli.common import fail
    from gateway.domain.operators import normalize_username

    try:
        return normalize_username(raw)
    except ValueError as exc:
        fail(str(exc))
        raise


def cmd_add(args: argparse.Namespace) -> None:
    from gateway import clock
    from gateway.domain.operators import OperatorExists
    from gateway.services.passwords import Passwords
    from gateway.store import operators as accounts
    from gateway.store.audit import record

    settings = _settings(args.config)
    name = _username(args.name)
    role = Role.parse(args.role)
    password_hash = Passwords().hash(read_password())
    db = _database(settings)

    def add(conn):
        now = clock.utcnow()
        operator = accounts.create(conn, name, role, password_hash, now)
        record(conn, now, "operator.add", _actor(), target=f"operator:{name}", detail={"role": role.label})
        return operator

    try:
        db.transaction(add)
    except OperatorExists as exc:
        print(f"smsgw: {exc}; nothing was changed", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        db.close()
    print(f"operator {name} added with role {role.label}")


def _change(settings: Settings, name: str, action: str, change) -> int:
    """Apply ``change(conn, account, now)`` to an existing operator, audited; its sessions ended."""
    from gateway import clock
    from gateway.domain.operators import UnknownOperator
    from gateway.store import operator_sessions
    from gateway.store import operators as accounts
    from gateway.store.audit import record

    db = _database(settings)

    def apply(conn):
        now = clock.utcnow()
        account = accounts.get(conn, name)
        change(conn, account, now)
        ended = operator_sessions.close_all(conn, account.operator.id)
        detail = {"sessions_ended": ended}
        record(
            conn,
            now,
            action,
            _actor(),
            operator_id=account.operator.id,
            target=f"operator:{name}",
            detail=detail,
        )
        return ended

    try:
        return db.transaction(apply)
    except UnknownOperator as exc:
        print(f"smsgw: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        db.close()


def cmd_passwd(args: argparse.Namespace) -> None:
    from gateway.services.passwords import Passwords
    from gateway.store import operators as accounts

    settings, name = _settings(args.config), _username(args.name)  # before asking for the password
    password_hash = Passwords().hash(read_password())
    ended = _change(
        settings,
        name,
        "operator.passwd",
        lambda conn, account, now: accounts.set_password(conn, account.operator.id, password_hash, now),
    )
    print(f"password of {name} changed; sessions ended: {ended}")


def _set_disabled(args: argparse.Namespace, disabled: bool) -> None:
    from gateway.store import operators as accounts

    name = _username(args.name)
    ended = _change(
        _settings(args.config),
        name,
        "operator.disable" if disabled else "operator.enable",
        lambda conn, account, now: accounts.set_disabled(conn, account.operator.id, disabled, now),
    )
    print(f"operator {name} disabled; sessions ended: {ended}" if disabled else f"operator {name} enabled")


def cmd_disable(args: argparse.Namespace) -> None:
    _set_disabled(args, True)


def cmd_enable(args: argparse.Namespace) -> None:
    _set_disabled(args, False)


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def cmd_list(args: argparse.Namespace) -> None:
    from gateway.store import operators as accounts

    settings = _settings(args.config)
    db = _database(settings)
    try:
        rows = db.transaction(accounts.listing)
    finally:
        db.close()
    if not rows:
        print("no operators yet: smsgw operators add NAME [--role viewer|operator|admin]")
        return
    width = max(len("name"), *(len(r["username"]) for r in rows))
    print(f"{'name':<{width}}  {'role':<8}  {'state':<8}  {'last login':<20}  created")
    for r in rows:
        state = "disabled" if r["disabled_at"] else "active"
        print(
            f"{r['username']:<{width}}  {r['role']:<8}  {state:<8}  {_when(r['last_login_at']):<20}  "
            f"{_when(r['created_at'])}"
        )


def register(sub) -> None:
    """Add ``operators`` to ``smsgw``'s sub-parsers."""
    people = sub.add_parser("operators", help="operators' dashboard accounts: add, list, passwd, disable")
    people_sub = people.add_subparsers(dest="operators_command", required=True)

    def command(name: str, func, help_text: str, with_name: bool = True) -> argparse.ArgumentParser:
        p = people_sub.add_parser(name, help=help_text, description=help_text)
        if with_name:
            p.add_argument("name", metavar="NAME")
        p.add_argument("--config", metavar="PATH", help="TOML configuration file")
        p.set_defaults(func=func)
        return p

    add = command(
        "add",
        cmd_add,
        "create an account; the password is read from standard input when it is not a terminal",
    )
    add.add_argument(
        "--role",
        choices=[r.label for r in Role],
        default=Role.OPERATOR.label,
        help="viewer reads; operator also acts on messages, broadcasts and carriers; admin also "
        "manages accounts and citizens' data (default: operator)",
    )
    command("list", cmd_list, "every account with its role, state and last login", with_name=False)
    command("passwd", cmd_passwd, "set a new password (read like add's) and end the operator's sessions")
    command("disable", cmd_disable, "refuse the operator's logins and end their sessions")
    command("enable", cmd_enable, "allow a disabled operator to sign in again")
