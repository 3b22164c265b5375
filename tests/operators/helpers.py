"""Operators for tests: cheap argon2 parameters (the real ones cost 64 MiB a hash), an account, a login."""

from __future__ import annotations

import re

import aiohttp
from argon2 import PasswordHasher

from gateway import clock
from gateway.domain.operators import Operator, Role
from gateway.services.passwords import Passwords
from gateway.store import operators as accounts
from gateway.store.db import Database

CHEAP = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)  # 64 KiB


def cheap_passwords() -> Passwords:
    return Passwords(CHEAP)


def add_operator(db: Database, name: str, password: str, role: Role = Role.OPERATOR) -> Operator:
    return db.transaction(accounts.create, name, role, CHEAP.hash(password), clock.utcnow())


def hidden_field(page: str, name: str) -> str:
    match = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', page)
    assert match, f"no hidden field {name} in the page"
    return match.group(1)


async def sign_in(
    http: aiohttp.ClientSession, base_url: str, username: str, password: str
) -> aiohttp.ClientResponse:
    """Open the login page (its cookie and token), post the form; the response, not followed."""
    async with http.get(f"{base_url}/dashboard/login") as resp:
        assert resp.status == 200
        token = hidden_field(await resp.text(), "csrf_token")
    form = {"username": username, "password": password, "csrf_token": token}
    async with http.post(f"{base_url}/dashboard/login", data=form, allow_redirects=False) as resp:
        await resp.read()
        return resp
