"""`smsgw templates preview` and the start-up refusal of a template that can exceed the maximum parts."""

from __future__ import annotations

import shutil

import pytest

from gateway.cli.main import main
from gateway.domain.preview import TemplateTooLong
from gateway.domain.templates import DEFAULT_DIRECTORY
from gateway.roles import build
from tests.conftest import make_settings


def test_preview_prints_every_template_with_encoding_and_parts(capsys):
    main(["templates", "preview"])
    out = capsys.readouterr().out
    assert "case.received [es]  gsm7, 1 part" in out
    assert "emergency.alert [en]" in out and "appointment.reminder [es]" in out
    assert "Su reporte MH-2026-004512 fue recibido el 29/11/2026." in out


def _bad_templates(tmp_path):
    directory = tmp_path / "templates"
    shutil.copytree(DEFAULT_DIRECTORY, directory)
    (directory / "es" / "notice.txt").write_text("Aviso: {{ text }} {{ text }} {{ text }}", encoding="utf-8")
    return directory


def test_preview_refuses_a_template_that_can_be_too_long(tmp_path, capsys):
    directory = _bad_templates(tmp_path)
    config = tmp_path / "smsgw.toml"
    config.write_text(f'[templates]\ndirectory = "{directory}"\nmax_segments = 3\n', encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(["templates", "preview", "--config", str(config)])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "es/notice.txt: can take 4 parts" in err and "at most 3 are allowed" in err


async def test_the_gateway_refuses_to_start_with_such_a_template(tmp_path, db_url):
    settings = make_settings(
        {
            "gateway": {"listen": "127.0.0.1:0"},
            "database": {"url": db_url},
            "templates": {"directory": str(_bad_templates(tmp_path))},
        }
    )
    with pytest.raises(TemplateTooLong, match=r"notice\.txt"):
        build(settings)
