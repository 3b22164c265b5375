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


def clip(value: object, limit: int) -> str:
    """At most ``limit`` characters, cut at a word and ended with "..." when longer (an ellipsis
    character is not GSM 03.38 and would turn the whole message into UCS-2). Bounds a template's
    length whatever the CRM sends."""
    text = " ".join(str(value).split())
    if len(text) <= limit:
        return text
    cut = text[: max(1, limit - 3)]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:-") + "..."


def languages_in(directory: Path) -> list[str]:
    """The languages with a template folder in ``directory``, Spanish first."""
    found = sorted(p.name for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    return sorted(found, key=lambda lang: lang != FALLBACK_LANGUAGE)


class TemplateRenderer:
    def __init__(self, tz: ZoneInfo, short_code: str, directory: Path = DEFAULT_DIRECTORY):
        self.tz = tz
        self.short_code = short_code
        self.directory = directory
        self._envs: dict[str, SandboxedEnvironment] = {}
        self._templates: dict[tuple[str, str], tuple] = {}  # (name, language) -> (template, its language)
        self._languages: list[str] | None = None

    def _env(self, language: str) -> SandboxedEnvironment:
        """One environment per language, so date filters speak it (and renders stay thread-safe)."""
        env = self._envs.get(language)
        if env is None:
            # auto_reload off: a template is read once (and checked at start-up against the maximum
            # parts); an edited file takes effect at the next start, after the same check
            env = SandboxedEnvironment(
                loader=FileSystemLoader(str(self.directory)),
                undefined=StrictUndefined,
                autoescape=False,
                auto_reload=False,
            )
            tz = self.tz
            env.filters.update(
                long_date=lambda d: dates.long_date(d, tz, language),
                long_datetime=lambda d: dates.long_datetime(d, tz, language),
                short_date=lambda d: dates.short_date(d, tz, language),
                time=lambda d: dates.clock_time(d, tz, language),
                span=lambda start, end=None: dates.time_span(start, end, tz, language),
                clip=clip,
            )
            self._envs[language] = env
        return env

    def _template(self, name: str, language: str):
        found = self._templates.get((name, language))
        if found is None:
            for lang in dict.fromkeys((language, FALLBACK_LANGUAGE)):
                try:
                    found = (self._env(lang).get_template(f"{lang}/{name}.txt"), lang)
                except TemplateNotFound:
                    continue
                break
            else:
                raise TemplateMissing(f"no template {name!r} for language {language!r}")
            self._templates[(name, language)] = found
        return found

    def render(self, name: str, language: str, /, **context) -> str:
        template, lang = self._template(name, language)
        text = template.render(short_code=self.short_code, language=lang, **context)
        return _SPACES.sub(" ", text).strip()

    def languages(self) -> list[str]:
        """Languages with a template folder, Spanish first (read once, like the templates)."""
        if self._languages is None:
            self._languages = languages_in(self.directory)
        return list(self._languages)

    def has(self, name: str, language: str) -> bool:
        return (self.directory / language / f"{name}.txt").is_file()
