"""[[crm_adapters]] settings (one-line errors naming the key) and migration 0007 against the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from config.settings import DEMO_CONFIG, ConfigError, load_settings
from crm_adapters.wiring import load_mappings
from gateway.store.db import normalize_url
from gateway.store.models import metadata

BASE = """
[[crm_clients]]
id = "cesac"
secret_env = "SECRET"
"""
ENV = {"SECRET": "s", "KEY": "k"}


def load(tmp_path: Path, text: str, env=None):
    path = tmp_path / "smsgw.toml"
    path.write_text(BASE + text, encoding="utf-8")
    return load_settings(path, env=ENV if env is None else env)


def error_of(tmp_path: Path, text: str, env=None) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, env)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_an_open311_adapter_with_its_key_from_the_environment(tmp_path):
    settings = load(
        tmp_path,
        """
[[crm_adapters]]
kind = "open311"
client = "cesac"
url = "https://crm.example/open311/v2/"
api_key_env = "KEY"
jurisdiction_id = "miguelhidalgo.cdmx.gob.mx"
every_seconds = 60
phone_field = "phone"
status_map = { "In_Progress" = "Atendiéndose" }
""",
    )
    (adapter,) = settings.crm_adapters
    assert adapter.adapter_name == "open311-cesac" and adapter.url == "https://crm.example/open311/v2"
    assert adapter.api_key == "k"
    assert adapter.status_map["in_progress"] == "Atendiéndose" and adapter.status_map["open"] == "Abierta"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[crm_adapters]]\nkind = "open311"\nclient = "suac"\nurl = "https://x"\n',
            "config error: crm_adapters[0].client: unknown crm client 'suac'",
        ),
        (
            '[[crm_adapters]]\nkind = "open311"\nclient = "cesac"\nurl = "ftp://x"\n',
            "config error: crm_adapters[0].open311.url: expected an http:// or https:// URL",
        ),
        (
            '[[crm_adapters]]\nkind = "open311"\nclient = "cesac"\nurl = "https://x"\napi_key = "k"\n',
            "config error: crm_adapters[0].open311.api_key: keys do not go in the configuration",
        ),
        (
            '[[crm_adapters]]\nkind = "open311"\nclient = "cesac"\nurl = "https://x"\napi_key_env = "NOPE"\n',
            "config error: crm_adapters[0].open311.api_key_env: environment variable NOPE is not set",
        ),
        (
            '[[crm_adapters]]\nkind = "soap"\nclient = "cesac"\n',
            "config error: crm_adapters[0]: Input tag 'soap' found using 'kind' does not match",
        ),
        (
            '[[crm_adapters]]\nkind = "open311"\nclient = "cesac"\nurl = "https://x"\nmax_window_days = 99\n',
            "config error: crm_adapters[0].open311.max_window_days: Input should be less than or equal to 90",
        ),
        (
            '[[crm_adapters]]\nkind = "open311"\nclient = "cesac"\nurl = "https://x"\n'
            '[[crm_adapters]]\nkind = "open311"\nclient = "cesac"\nurl = "https://y"\n',
            "config error: crm_adapters[1].name: 'open311-cesac' is also crm_adapters[0]",
        ),
        (
            '[[crm_adapters]]\nkind = "open311"\nclient = "cesac"\nurl = "https://x"\n'
            'closing_notes = ["["]\n',
            "config error: crm_adapters[0].open311.closing_notes: [0]: not a regular expression",
        ),
    ],
)
def test_mistakes_are_one_line_naming_the_key(tmp_path, text, message):
    assert error_of(tmp_path, text).startswith(message)


def test_a_mapping_mistake_stops_start_up_naming_the_key(tmp_path):
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "m.toml").write_text("[fields]\nid = 'x'\n", encoding="utf-8")
    settings = load(
        tmp_path, '[[crm_adapters]]\nkind = "mapped_json"\nclient = "cesac"\nmapping = "maps/m.toml"\n'
    )
    with pytest.raises(
        ConfigError, match=r"^config error: crm_adapters\[0\]\.mapping\.fields\.type: required"
    ):
        load_mappings(settings)
    settings = load(
        tmp_path, '[[crm_adapters]]\nkind = "mapped_json"\nclient = "cesac"\nmapping = "nope.toml"\n'
    )
    with pytest.raises(ConfigError, match=r"crm_adapters\[0\]\.mapping: cannot read"):
        load_mappings(settings)


def test_the_demo_configuration_maps_suac_bodies():
    settings = load_settings(DEMO_CONFIG, env={"SMSGW_DEMO_SECRET": "x", "SMSGW_DEMO_SMSC_PASSWORD": "y"})
    assert list(load_mappings(settings)) == ["demo"]


def test_migration_0007_matches_the_models(db_url):
    engine = create_engine(normalize_url(db_url))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    ours = [d for d in diff if "crm_" in repr(d)]
    assert ours == []
