"""Message texts from operator-editable template files, rendered in Jinja2's sandbox.

Templates live in ``config/templates/<language>/<event type>.txt``; Spanish is the fallback
language. Whitespace is collapsed so operators may wrap long lines in the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import FileSystemLoader, StrictUndefined, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment

from . import dates

DEFAULT_DIRECTORY = Path(__file__).resolve().parents[2] / "config" / "templates"
FALLBACK_LANGUAGE = "es"
_SPACES = re.compile(r"\s+")


class TemplateMissing(LookupError):
    pass


class TemplateRenderer:
    def __init__(self, tz: ZoneInfo, short_code: str, directory: Path = DEFAULT_DIRECTORY):
        self.tz = tz
        self.short_code = short_code
        self.directory = directory
        self._envs: dict[str, SandboxedEnvironment] = {}

    def _env(self, language: str) -> SandboxedEnvironment:
        """One environment per language, so date filters speak it (and renders stay thread-safe)."""
        env = self._envs.get(language)
        if env is None:
            env = SandboxedEnvironment(
                loader=FileSystemLoader(str(self.directory)), undefined=StrictUndefined, autoescape=False
            )
            tz = self.tz
            env.filters.update(
                long_date=lambda d: dates.long_date(d, tz, language),
                long_datetime=lambda d: dates.long_datetime(d, tz, language),
                short_date=lambda d: dates.short_date(d, tz, language),
            )
            self._envs[language] = env
        return env

    def render(self, name: str, language: str, /, **context) -> str:
        for lang in dict.fromkeys((language, FALLBACK_LANGUAGE)):
            try:
                template = self._env(lang).get_template(f"{lang}/{name}.txt")
            except TemplateNotFound:
                continue
            break
        else:
            raise TemplateMissing(f"no template {name!r} for language {language!r}")
        text = template.render(short_code=self.short_code, language=lang, **context)
        return _SPACES.sub(" ", text).strip()
