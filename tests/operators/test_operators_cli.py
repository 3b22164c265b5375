"""``smsgw operators …``: creating and changing accounts as a script would (a real process, the
password on standard input); the other cases in this process, which is much faster."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select

from gateway import clock
from gateway.cli.demo import DEMO_OPERATOR, DEMO_OPERATOR_PASSWORD, ensure_demo_operator
from gateway.cli.main import main
from gateway.domain.operators import Role, SessionPolicy
from gateway.services.passwords import Passwords
from gateway.store import operator_sessions as sessions
from gateway.store import operators as accounts
from gateway.store.db import Database
from gateway.store.models import audit_log, operator_sessions

from .helpers import add_operator


def _config(tmp_path, url: str) -> str:
    path = tmp_path / "smsgw.toml"
    path.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    return str(path)


@pytest.fixture
def config(tmp_path, db_url):
    return _config(tmp_path, db_url)


@pytest.fixture
def sqlite_db(tmp_path, sqlite_template):
    """Refusals do not depend on the database's dialect."""
    path = tmp_path / "smsgw.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    yield db
    db.close()


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(monkeypatch, capsys):
    """``smsgw operators ARGS`` in this process, with ``stdin`` as its (non-terminal) standard input."""

    def run(*args: str, stdin: str = "") -> Done:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = 0
        try:
            main(["operators", *args])
        except SystemExit as exc:
            code = exc.code
        captured = capsys.readouterr()
        return Done(code, captured.out, captured.err)

    return run


def smsgw(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGW_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli.main", "operators", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_add_reads_the_password_from_standard_input(db, config):
    done = smsgw("add", "Ana", "--role", "admin", "--config", config, stdin="correct horse battery\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "operator ana added with role admin"
    account = db.transaction(accounts.find, "ana")
    assert account.operator.role is Role.ADMIN
    assert account.password_hash.startswith("$argon2id$")
    assert Passwords().verify(account.password_hash, "correct horse battery")[0]
    assert "correct horse" not in done.stdout + done.stderr
    with db.engine.connect() as conn:
        row = conn.execute(select(audit_log.c.actor, audit_log.c.action, audit_log.c.target)).one()
    assert row.actor.startswith("cli") and (row.action, row.target) == ("operator.add", "operator:ana")


def test_add_refuses_what_it_cannot_do_and_changes_nothing(tmp_path, sqlite_db, cli):
    db, config = sqlite_db, _config(tmp_path, sqlite_db.url)
    assert cli("add", "ana", "--config", config, stdin="correct horse battery\n").returncode == 0
    again = cli("add", "ANA", "--config", config, stdin="another password\n")
    assert again.returncode == 1 and "already exists" in again.stderr
    short = cli("add", "bob", "--config", config, stdin="short\n")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    empty = cli("add", "bob", "--config", config, stdin="")
    assert empty.returncode == 2 and "no password on standard input" in empty.stderr
    bad_name = cli("add", "bob smith", "--config", config, stdin="correct horse battery\n")
    assert bad_name.returncode == 2 and "invalid operator name" in bad_name.stderr
    role = cli("add", "bob", "--role", "root", "--config", config, stdin="correct horse battery\n")
    assert role.returncode == 2 and "invalid choice: 'root'" in role.stderr
    assert [r["username"] for r in db.transaction(accounts.listing)] == ["ana"]


def test_list_passwd_disable_enable(db, config, cli):
    ana = add_operator(db, "ana", "correct horse")
    add_operator(db, "bob", "bob's password", Role.VIEWER)
    listing = cli("list", "--config", config)
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["name", "role", "state", "last", "login", "created"]
    assert lines[1].split()[:4] == ["ana", "operator", "active", "never"]
    assert lines[2].split()[:3] == ["bob", "viewer", "active"]
    policy = SessionPolicy(timedelta(hours=1), timedelta(hours=1))
    db.transaction(sessions.open_session, ana, clock.utcnow(), policy, None, None)
    changed = smsgw("passwd", "ana", "--config", config, stdin="new battery staple\n")
    assert changed.returncode == 0 and changed.stdout.strip() == "password of ana changed; sessions ended: 1"
    assert Passwords().verify(db.transaction(accounts.find, "ana").password_hash, "new battery staple")[0]

    assert cli("disable", "bob", "--config", config).returncode == 0
    assert db.transaction(accounts.find, "bob").operator.disabled
    assert "bob   viewer    disabled" in cli("list", "--config", config).stdout
    assert cli("enable", "bob", "--config", config).returncode == 0
    assert not db.transaction(accounts.find, "bob").operator.disabled
    missing = cli("disable", "carl", "--config", config)
    assert missing.returncode == 1 and "no operator named 'carl'" in missing.stderr
    with db.engine.connect() as conn:
        actions = conn.execute(select(audit_log.c.action).order_by(audit_log.c.id)).scalars().all()
        assert conn.execute(select(operator_sessions.c.id)).first() is None
    assert actions == ["operator.passwd", "operator.disable", "operator.enable"]


def test_an_empty_list_says_how_to_add_one(tmp_path, sqlite_db, cli):
    done = cli("list", "--config", _config(tmp_path, sqlite_db.url))
    assert done.returncode == 0 and "smsgw operators add NAME" in done.stdout


def test_the_demo_creates_its_admin_once(db, db_url):
    assert ensure_demo_operator(db_url) is True
    account = db.transaction(accounts.find, DEMO_OPERATOR)
    assert account.operator.role is Role.ADMIN
    assert Passwords().verify(account.password_hash, DEMO_OPERATOR_PASSWORD)[0]
    assert ensure_demo_operator(db_url) is False  # an existing account is left as it is
