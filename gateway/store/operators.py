"""Operators' accounts in the database (every gateway process sees the same ones)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.domain.operators import Operator, OperatorExists, Role, UnknownOperator, normalize_username

from .models import operators


@dataclass(frozen=True)
class Account:
    """An operator with the stored hash, for logins and password changes."""

    operator: Operator
    password_hash: str


def operator_from_row(row) -> Operator:
    """An Operator from a row with id, username, role and disabled_at."""
    return Operator(row["id"], row["username"], Role.parse(row["role"]), row["disabled_at"] is not None)


def create(conn: Connection, username: str, role: Role, password_hash: str, now: datetime) -> Operator:
    name = normalize_username(username)
    if find(conn, name) is not None:
        raise OperatorExists(f"operator {name!r} already exists")
    values = {
        "username": name,
        "role": role.label,
        "password_hash": password_hash,
        "password_changed_at": now,
        "created_at": now,
        "updated_at": now,
    }
    try:
        new_id = conn.execute(insert(operators).values(values).returning(operators.c.id)).scalar_one()
    except IntegrityError:  # created by another process since the check above
        raise OperatorExists(f"operator {name!r} already exists") from None
    return Operator(new_id, name, role, disabled=False)


def find(conn: Connection, username: str) -> Account | None:
    row = (
        conn.execute(select(operators).where(operators.c.username == username.strip().lower()))
        .mappings()
        .first()
    )
    return Account(operator_from_row(row), row["password_hash"]) if row else None


def get(conn: Connection, username: str) -> Account:
    account = find(conn, username)
    if account is None:
        raise UnknownOperator(f"no operator named {username.strip().lower()!r}")
    return account


def listing(conn: Connection) -> list[dict]:
    o = operators.c
    rows = conn.execute(
        select(o.username, o.role, o.disabled_at, o.last_login_at, o.created_at).order_by(o.username)
    ).mappings()
    return [dict(r) for r in rows]


def active_count(conn: Connection) -> int:
    return conn.execute(
        select(func.count()).select_from(operators).where(operators.c.disabled_at.is_(None))
    ).scalar_one()


def set_password(conn: Connection, operator_id: int, password_hash: str, now: datetime) -> None:
    conn.execute(
        update(operators)
        .where(operators.c.id == operator_id)
        .values(password_hash=password_hash, password_changed_at=now, updated_at=now)
    )


def replace_hash(conn: Connection, operator_id: int, password_hash: str) -> None:
    """The same password, hashed again with today's parameters (after a successful login)."""
    conn.execute(update(operators).where(operators.c.id == operator_id).values(password_hash=password_hash))


def set_disabled(conn: Connection, operator_id: int, disabled: bool, now: datetime) -> None:
    conn.execute(
        update(operators)
        .where(operators.c.id == operator_id)
        .values(disabled_at=now if disabled else None, updated_at=now)
    )


def record_login(conn: Connection, operator_id: int, now: datetime) -> None:
    conn.execute(update(operators).where(operators.c.id == operator_id).values(last_login_at=now))
