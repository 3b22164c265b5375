"""What every ``smsgw`` command shares: a one-line failure, loading the settings, the start-up checks."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from config.settings import ConfigError, Settings, load_settings


def fail(message: str, code: int = 2) -> None:
    print(f"smsgw: {message}", file=sys.stderr)
    raise SystemExit(code)


def load(path: str | None, default: Path | None = None) -> Settings:
    try:
        return load_settings(path or default)
    except ConfigError as exc:
        fail(str(exc))
        raise


def check_schema(settings: Settings) -> None:
    from gateway.store.migrate import current, head

    have = current(settings.database.url)
    if have != head():
        fail(
            f"the database is at revision {have or 'none'}, this smsgw needs {head()}: "
            f"run `smsgw db upgrade --config {settings.source_path or 'PATH'}` first"
        )


def check_templates(settings: Settings) -> None:
    """A template that can render longer than [templates] max_segments stops start-up."""
    from gateway.domain.preview import TemplateTooLong
    from gateway.roles import check_all_templates

    try:
        check_all_templates(settings)
    except (TemplateTooLong, ValueError, OSError) as exc:
        fail(f"templates: {exc}")


def check_crm_mappings(settings: Settings) -> None:
    """A CRM mapping file with a mistake stops start-up with one line naming the key."""
    from crm_adapters.wiring import load_mappings

    try:
        load_mappings(settings)
    except ConfigError as exc:
        fail(str(exc))


class AnySecret(dict):
    """The environment, where every *_env secret counts as set: previews need no secrets."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return os.environ.get(key) or "(not needed for a preview)"
