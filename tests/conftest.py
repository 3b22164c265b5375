"""Shared fixtures: databases (SQLite and the PostgreSQL server), settings, a clock."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest
from sqlalchemy import text

from config.settings import Settings
from gateway.store.db import Database
from gateway.store.migrate import upgrade
from gateway.store.models import metadata

PG_ADMIN_URL = os.environ.get("SMSGW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TEST_ENV = {"SMSGW_TEST_SECRET": "test-secret", "SMSGW_TEST_SMSC_PASSWORD": "smsgw"}


def _admin():
    import psycopg

    return psycopg.connect(
        PG_ADMIN_URL.replace("postgresql+psycopg", "postgresql"), autocommit=True, connect_timeout=5
    )


@pytest.fixture(scope="session")
def postgres_url():
    """A database of its own for this test run on the PostgreSQL server, migrated to head.

    Without a server the PostgreSQL tests fail (they do not skip) unless SMSGW_SKIP_POSTGRES=1.
    """
    try:
        admin = _admin()
    except Exception as exc:
        if os.environ.get("SMSGW_SKIP_POSTGRES") == "1":
            pytest.skip(f"PostgreSQL unavailable and SMSGW_SKIP_POSTGRES=1: {exc}")
        pytest.fail(f"PostgreSQL is required for these tests ({PG_ADMIN_URL}): {exc}", pytrace=False)
    name = f"smsgw_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    upgrade(url)
    yield url
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def _truncate_postgres(url: str) -> None:
    db = Database(url)
    names = ", ".join(t.name for t in metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    db.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path, sqlite_template):
    """A migrated, empty database: a fresh SQLite file, or the run's PostgreSQL database emptied."""
    if request.param == "sqlite":
        path = tmp_path / "smsgw.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    return url


@pytest.fixture
def db(db_url):
    database = Database(db_url)
    yield database
    database.close()


def make_settings(raw: dict, env: dict | None = None) -> Settings:
    """Settings from a dict shaped like the TOML file, validated exactly as a file is."""
    return Settings.model_validate(raw, context={"env": {**TEST_ENV, **(env or {})}, "from_file": True})
