"""Configuration errors: one line naming the key at fault (``config error: <key path>: <what>``)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import ValidationError


class ConfigError(Exception):
    """A configuration problem; ``str(e)`` is one line: ``config error: <key path>: <what is wrong>``."""

    def __init__(self, message: str) -> None:
        message = " ".join(str(message).split())  # always one line
        if not message.startswith("config error: "):
            message = "config error: " + message
        super().__init__(message)


_FRIENDLY = {"extra_forbidden": "unknown key", "missing": "required key is missing"}


def _key_path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def format_validation_error(
    exc: ValidationError,
    prefix: str = "",
    origins: Mapping[tuple[int | str, ...], str] | None = None,
) -> str:
    """One line for the first error: ``<key path>: <what is wrong>`` (``carriers[0].port: …``).

    ``prefix`` is prepended to the key path (``"simulator"`` -> ``simulator.carriers[0].port``);
    ``origins`` maps a loc to the environment variable that supplied it, named in the message.
    Wrap it in ConfigError for the ``config error: `` prefix.
    """
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:
        return f"{prefix or '(top level)'}: {exc}"
    err = errors[0]
    loc = tuple(err["loc"])
    msg = _FRIENDLY.get(err["type"], err["msg"])
    if err["type"] == "value_error" and "error" in err.get("ctx", {}):
        msg = str(err["ctx"]["error"])
    if not loc and re.match(r"[a-z_]+(\[\d+\])?[\w.\[\]]*: ", msg):
        return " ".join(msg.split())  # a whole-file rule naming its key itself (routing, crm_adapters)
    if origins:
        for n in range(len(loc), 0, -1):
            if loc[:n] in origins:
                msg += f" (from environment variable {origins[loc[:n]]})"
                break
    return " ".join(f"{_key_path(loc, prefix)}: {msg}".split())
