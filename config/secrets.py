"""Secrets come only from the environment: the file names the variable that holds each one.

A section with secrets lists them in ``secrets`` (the field and what the file must not hold:
``{"password": "passwords"}``); next to each secret ``X`` is ``X_env``, the variable's name. In
the file, ``X`` itself is refused; ``X_env``, when given, must name a variable that is set and not
empty, and ``X`` is read from it. Settings built in code may give ``X`` directly (``X`` is
declared before ``X_env``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ValidationInfo, field_validator, model_validator

from .base import Section, context_env, from_file


def read_secret(variable: str, info: ValidationInfo) -> str:
    """The value of the environment variable ``variable``; raises ValueError when it is unset or
    empty."""
    if not variable.strip():
        raise ValueError("must name an environment variable")
    env = context_env(info)
    if variable not in env:
        raise ValueError(f"environment variable {variable} is not set")
    if not env[variable]:
        raise ValueError(f"environment variable {variable} is empty")
    return env[variable]


class WithSecrets(Section):
    secrets: ClassVar[dict[str, str]] = {}  # secret field -> what it holds, plural ("passwords")

    @field_validator("*")  # after: a union's discriminator takes no "before" validator
    @classmethod
    def _no_secret_in_file(cls, value: Any, info: ValidationInfo) -> Any:
        held = cls.secrets.get(info.field_name)
        if held is not None and from_file(info):
            raise ValueError(
                f"{held} do not go in the configuration: set {info.field_name}_env to the name of "
                "the environment variable that holds it"
            )
        return value

    @field_validator("*")
    @classmethod
    def _variable_is_set(cls, value: Any, info: ValidationInfo) -> Any:
        secret = info.field_name.removesuffix("_env")
        if secret != info.field_name and secret in cls.secrets and value is not None:
            if not info.data.get(secret):  # a secret given in code needs no variable
                read_secret(value, info)
        return value

    @model_validator(mode="after")
    def _read_secrets(self, info: ValidationInfo) -> WithSecrets:
        for secret in self.secrets:
            variable = getattr(self, f"{secret}_env")
            if variable and not getattr(self, secret):
                setattr(self, secret, read_secret(variable, info))
        return self
