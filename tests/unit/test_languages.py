"""One rule for languages: a language tag whose primary subtag has templates."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from gateway.domain.languages import parse_language, primary_subtag
from gateway.domain.templates import DEFAULT_DIRECTORY, TemplateRenderer, languages_in

ES_EN = ["es", "en"]


@pytest.mark.parametrize(
    ("written", "language"),
    [("es", "es"), ("ES", "es"), ("es-MX", "es"), ("en_US", "en"), (" en ", "en"), ("", None), (None, None)],
)
def test_tags_with_templates_are_their_primary_subtag(written, language):
    assert parse_language(written, ES_EN) == language


@pytest.mark.parametrize("written", ["fr", "pt-BR", "español", "e", "es-", 3])
def test_anything_else_is_refused_naming_the_choices(written):
    with pytest.raises(ValueError, match=r"^expected es or en \(the languages with templates\)"):
        parse_language(written, ES_EN)


def test_the_languages_are_the_template_folders(tmp_path):
    assert languages_in(DEFAULT_DIRECTORY) == ["es", "en"]
    for name in ("pt", "es", ".git"):
        (tmp_path / name).mkdir()
    (tmp_path / "README.txt").write_text("not a language")
    assert languages_in(tmp_path) == ["es", "pt"]
    renderer = TemplateRenderer(ZoneInfo("America/Mexico_City"), "30311", tmp_path)
    assert parse_language("pt-BR", renderer.languages()) == "pt"
    with pytest.raises(ValueError, match="expected es or pt"):
        parse_language("en", renderer.languages())


def test_primary_subtag_checks_the_shape_only():
    assert primary_subtag("fr-FR") == "fr"
    with pytest.raises(ValueError, match="expected a language such as es or es-MX"):
        primary_subtag("french")
