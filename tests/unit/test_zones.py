"""Zone catalogue and matching: accents, section numbering, postal codes, ambiguous names."""

from __future__ import annotations

import pytest

from gateway.domain.zones import (
    DEFAULT_ZONES_FILE,
    Zone,
    ZoneDirectory,
    edit_distance,
    load_zones,
    match_zone,
    parse_name,
)


@pytest.fixture(scope="module")
def zones() -> ZoneDirectory:
    return load_zones()


def names(found) -> list[str]:
    return [z.name for z in found]


def test_the_catalogue_has_every_colonia_of_miguel_hidalgo(zones):
    assert len(zones) == 86  # reference.md section 6.1: all 86 SEPOMEX rows
    assert DEFAULT_ZONES_FILE.name == "miguel_hidalgo.csv"
    assert {z.cp for z in zones.zones} >= {"11000", "11510", "11560", "11590", "11870", "11950"}
    assert len([z for z in zones.zones if z.cp == "11000"]) == 8
    tacuba = zones.match("Tacuba")
    assert [(z.cp, z.type) for z in tacuba] == [("11410", "Pueblo")]


@pytest.mark.parametrize(
    "text",
    [
        "Polanco V Sección",
        "polanco v seccion",
        "POLANCO 5",
        "Polanco 5a secc.",
        "Polanco Quinta Sección",
        "Col. Polanco V",
        "  polanco   5ª  ",
        "Polanco Secc. V",
    ],
)
def test_section_numbering_and_accents_do_not_matter(zones, text):
    assert names(zones.match(text)) == ["Polanco V Sección"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Anáhuac 2a Sección", ["Anáhuac II Sección"]),
        ("anahuac segunda", ["Anáhuac II Sección"]),
        ("Huichapan", ["Huíchapan"]),
        ("Santo Tomás", ["Santo Tomas"]),
        ("Tacuba (Pueblo)", ["Tacuba"]),
        ("Amp. Granada", ["Ampliación Granada"]),
        ("Granada", ["Granada"]),  # not Ampliación Granada: the whole name matches one colonia
        ("Anzures", ["Anzures"]),  # not Verónica Anzures
        ("Francisco I. Madero", ["Francisco I Madero"]),
        ("5 de mayo", ["5 de Mayo"]),
        ("Lomas de Chapultepec III", ["Lomas de Chapultepec III Sección"]),
    ],
)
def test_names_as_people_write_them(zones, text, expected):
    assert names(zones.match(text)) == expected


def test_a_name_without_its_section_means_every_section(zones):
    assert names(zones.match("Polanco")) == [
        "Polanco I Sección",
        "Polanco II Sección",
        "Polanco III Sección",
        "Polanco IV Sección",
        "Polanco V Sección",
    ]
    assert len(zones.match("lomas de chapultepec")) == 8


@pytest.mark.parametrize(("text", "count"), [("11000", 8), ("C.P. 11460", 4), ("cp 11560", 1), ("11590", 1)])
def test_a_postal_code_covers_every_colonia_with_it(zones, text, count):
    found = zones.match(text)
    assert len(found) == count
    assert {z.cp for z in found} == {text[-5:]}


def test_ambiguous_partial_names_return_every_candidate(zones):
    assert names(zones.match("Madero")) == ["Francisco I Madero"]
    chapultepec = zones.match("Chapultepec")
    assert len(chapultepec) == 14  # Lomas (8), Bosque (3), San Miguel (2), Chapultepec Morales
    assert zones.match("Chapultepec", partial=False) == []
    assert zones.match("Narvarte") == []  # Benito Juárez, not Miguel Hidalgo
    assert zones.match("99999") == []


def test_match_zone_is_a_pure_function_of_its_inputs():
    catalogue = [
        Zone.of("01000", "San Ángel"),
        Zone.of("01000", "San Ángel Inn"),
        Zone.of("02000", "Centro I Sección"),
    ]
    assert names(match_zone("san angel", catalogue)) == ["San Ángel"]
    assert names(match_zone("angel", catalogue)) == ["San Ángel", "San Ángel Inn"]
    assert names(match_zone("centro 1", catalogue)) == ["Centro I Sección"]


def test_parse_name():
    assert parse_name("Lomas de Chapultepec VIII Sección") == ("lomas de chapultepec", 8)
    assert parse_name("10 de Abril") == ("10 de abril", None)
    assert parse_name("Escandón 1a. Secc.") == ("escandon", 1)


def test_resolve_an_events_area(zones):
    found, errors = zones.resolve(["Polanco", "11590", "polanco v"])
    assert len(found) == 6  # Polanco I-V and Anzures, Polanco V once
    assert errors == []
    found, errors = zones.resolve(["Anzures", "Narvarte", "Madero", "99999"])
    assert names(found) == ["Anzures"]
    assert [e[0] for e in errors] == ["area.zones[1]", "area.zones[2]", "area.zones[3]"]
    assert "did you mean Francisco I Madero" in errors[1][1]
    assert "postal code" in errors[2][1]


@pytest.mark.parametrize(
    ("written", "suggested"),
    [
        ("Polancoo", ["Polanco"]),  # the colonia: all its sections
        ("Anzurez", ["Anzures"]),
        ("Granad", ["Granada"]),
        ("ANZÚREZ", ["Anzures"]),  # case and accents folded first
        ("Polanko 2", ["Polanco II Sección"]),  # the section written is kept
        ("Polanco 9", ["Polanco"]),  # no such section: the colonia
        ("Lomas de Chapultepek", ["Lomas de Chapultepec"]),
        ("Irigacion", ["Irrigación"]),
        ("Verónica Anzurez", ["Verónica Anzures"]),
        ("Tacubya", ["Tacuba", "Tacubaya"]),  # as close as each other: catalogue order
        ("Narvarte", []),  # another borough: nothing close
        ("Xy", []),
        ("99999", []),
    ],
)
def test_suggestions_for_typos_by_edit_distance(zones, written, suggested):
    assert zones.suggest(written) == suggested


def test_suggestions_for_partial_names_come_first(zones):
    assert zones.suggest("Madero") == ["Francisco I Madero"]
    assert len(zones.suggest("Lomas")) == 5


def test_edit_distance_is_bounded():
    assert edit_distance("anzurez", "anzures", 2) == 1
    assert edit_distance("polacno", "polanco", 2) == 1  # two letters swapped: one edit
    assert edit_distance("kitten", "sitting", 5) == 3
    assert edit_distance("granada", "x", 2) == 3  # beyond the limit: limit + 1
    assert edit_distance("tacuba", "tacuba", 0) == 0


def test_an_events_area_with_typos_gets_suggestions(zones):
    _, errors = zones.resolve(["Polancoo", "Anzurez", "Granad"])
    assert [reason.rsplit("; ", 1)[1] for _, reason in errors] == [
        "did you mean Polanco?",
        "did you mean Anzures?",
        "did you mean Granada?",
    ]


def test_labels_for_messages(zones):
    assert zones.label("polanco") == "Polanco"
    assert zones.label("polanco 5") == "Polanco V Sección"
    assert zones.label("11000") == "C.P. 11000"
    assert zones.label("anzures") == "Anzures"


def test_bad_catalogue_files_are_refused_with_their_line(tmp_path):
    bad = tmp_path / "z.csv"
    bad.write_text("cp,colonia,type\n11000,Uno,Colonia\n1100,Dos,Colonia\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"z.csv:3: postal code must be 5 digits"):
        load_zones(bad)
    bad.write_text("cp,colonia\n11000,Uno\n11000,uno\n", encoding="utf-8")
    with pytest.raises(ValueError, match="listed twice"):
        load_zones(bad)
    bad.write_text("codigo,colonia\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing column"):
        load_zones(bad)
