"""What every configuration section shares: unknown keys refused, and the validation context.

:func:`config.settings.load_settings` validates with the context ``{"env": the environment,
"from_file": True}``; settings built in code (tests, tools) may leave it out.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, ValidationInfo


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def context_env(info: ValidationInfo) -> Mapping[str, str]:
    """The environment the settings are read with (default: the process's)."""
    env = (info.context or {}).get("env")
    return os.environ if env is None else env


def from_file(info: ValidationInfo) -> bool:
    """Whether the values come from the configuration file (not from code)."""
    return bool((info.context or {}).get("from_file"))
