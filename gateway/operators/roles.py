"""Roles, each allowed what the one before it is: a viewer reads, an operator acts on messages,
broadcasts and carriers, an admin also manages operators' accounts and citizens' data."""

from __future__ import annotations

from enum import IntEnum


class Role(IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls[value.strip().upper()]
        except KeyError:
            choices = ", ".join(r.label for r in cls)
            raise ValueError(f"unknown role {value!r}: expected one of {choices}") from None

    def allows(self, needed: Role) -> bool:
        return self >= needed
