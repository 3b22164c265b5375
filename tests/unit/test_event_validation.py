"""parse_event: the canonical case event and errors naming the dotted path of the field at fault."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.domain.catalog import REQUIRED_FIELDS
from gateway.domain.events import Event, EventInvalid, parse_event

VALID = {
    "id": "cesac-000123",
    "type": "case.received",
    "occurred_at": "2026-11-29T10:00:00-06:00",
    "priority": "normal",
    "case": {
        "folio": "MH-2026-004512",
        "category": "Fuga de agua",
        "status": "En proceso",
        "progress": 60,
        "resolution_date": "2026-12-02",
        "appointment": {"at": "2026-12-03T10:30:00-06:00", "place": "Módulo Tacuba"},
    },
    "citizen": {"msisdn": "55 1234 5678", "name": "Ana", "language": "es"},
    "area": {"zones": ["Polanco", "11560"]},
    "notice": {"text": "Corte de agua", "starts_at": "2026-12-01T08:00:00-06:00"},
}

MINIMAL = {
    "id": "cesac-1",
    "type": "case.received",
    "case": {"folio": "MH-1"},
    "citizen": {"msisdn": "5512345678"},
}


def _event(**changes) -> dict:
    data = copy.deepcopy(MINIMAL)
    data.update(changes)
    return data


def _errors(data: object) -> dict[str, str]:
    with pytest.raises(EventInvalid) as info:
        parse_event(data, REQUIRED_FIELDS)
    errors = info.value.errors
    assert errors, "EventInvalid must carry at least one (field, reason)"
    names = [name for name, _ in errors]
    assert len(names) == len(set(names)), f"a field named twice: {errors}"
    return dict(errors)


# --- valid ---------------------------------------------------------------------------------------


def test_full_valid_case_received_is_parsed():
    event = parse_event(copy.deepcopy(VALID), REQUIRED_FIELDS)
    assert isinstance(event, Event)
    assert event.id == "cesac-000123"
    assert event.type == "case.received"
    assert event.occurred_at == datetime(2026, 11, 29, 16, 0, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(hours=-6)
    assert event.priority == "normal"
    assert event.case.folio == "MH-2026-004512"
    assert event.case.category == "Fuga de agua"
    assert event.case.status == "En proceso"
    assert event.case.progress == 60
    assert event.case.resolution_date == date(2026, 12, 2)
    assert event.case.appointment.at == datetime(2026, 12, 3, 16, 30, tzinfo=UTC)
    assert event.case.appointment.place == "Módulo Tacuba"
    assert event.citizen.name == "Ana"
    assert event.citizen.language == "es"
    assert event.area.zones == ["Polanco", "11560"]
    assert event.notice.text == "Corte de agua"
    assert event.notice.ends_at is None


def test_minimal_case_received_gets_the_defaults():
    event = parse_event(copy.deepcopy(MINIMAL), REQUIRED_FIELDS)
    assert event.occurred_at is None
    assert event.priority is None
    assert event.citizen.language is None  # the stored language (or Spanish) applies
    assert event.citizen.name is None
    assert event.area is None and event.notice is None


def test_msisdn_is_normalised_to_e164():
    event = parse_event(copy.deepcopy(VALID), REQUIRED_FIELDS)
    assert event.citizen.msisdn == "+525512345678"


@pytest.mark.parametrize(
    "raw", ["55 1234 5678", "5512345678", "+52 55 1234 5678", "+52 1 55 1234 5678", "044 55 1234 5678"]
)
def test_common_mexican_forms_are_normalised_to_the_same_e164(raw):
    event = parse_event(_event(citizen={"msisdn": raw}), REQUIRED_FIELDS)
    assert event.citizen.msisdn == "+525512345678"


def test_unknown_extra_fields_are_ignored_at_every_level():
    data = _event(crm_internal={"x": 1}, source="cesac")
    data["case"]["crm_field"] = "ignored"
    data["citizen"]["curp"] = "XXXX000000HDFXXX00"
    event = parse_event(data, REQUIRED_FIELDS)
    assert event.case.folio == "MH-1"
    dumped = event.model_dump()
    assert "crm_internal" not in dumped and "source" not in dumped
    assert "crm_field" not in dumped["case"]
    assert "curp" not in dumped["citizen"]


def test_surrounding_whitespace_is_stripped():
    event = parse_event(_event(id="  cesac-1  ", case={"folio": " MH-1 "}), REQUIRED_FIELDS)
    assert event.id == "cesac-1"
    assert event.case.folio == "MH-1"


@pytest.mark.parametrize("folio", ["MH-2026-004512", "A", "2026/77", "cdmx.abc_1"])
def test_folio_characters_allowed(folio):
    assert parse_event(_event(case={"folio": folio}), REQUIRED_FIELDS).case.folio == folio


# --- required fields -----------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["id", "type"])
def test_missing_top_level_field_is_named(field):
    data = _event()
    del data[field]
    errors = _errors(data)
    assert field in errors
    assert "required" in errors[field].lower()


def test_missing_case_folio_is_named_by_dotted_path():
    errors = _errors(_event(case={"category": "Fuga de agua"}))
    assert list(errors) == ["case.folio"]
    assert "required" in errors["case.folio"].lower()


def test_missing_citizen_msisdn_is_named_by_dotted_path():
    errors = _errors(_event(citizen={"name": "Ana"}))
    assert list(errors) == ["citizen.msisdn"]
    assert "required" in errors["citizen.msisdn"].lower()


def test_missing_case_and_citizen_objects_name_both_leaf_paths():
    data = _event()
    del data["case"], data["citizen"]
    errors = _errors(data)
    assert set(errors) == {"case.folio", "citizen.msisdn"}


def test_null_case_is_treated_as_missing():
    errors = _errors(_event(case=None))
    assert set(errors) == {"case.folio"}


# --- invalid values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("123", "10 digits"),
        ("55 1234 567", "10 digits"),
        ("+1 212 555 0100", "Mexican"),
        ("55-ABCD-5678", "only digits"),
        ("800 123 4567", "toll-free"),
        ("", "empty"),
    ],
)
def test_invalid_msisdn_is_named_with_a_clear_reason(raw, reason):
    errors = _errors(_event(citizen={"msisdn": raw}))
    assert list(errors) == ["citizen.msisdn"]
    assert reason in errors["citizen.msisdn"]
    assert not errors["citizen.msisdn"].startswith("Value error")


def test_msisdn_as_a_number_is_refused_with_a_reason():
    errors = _errors(_event(citizen={"msisdn": 5512345678}))
    assert errors["citizen.msisdn"] == "must be a string with a Mexican phone number"


def test_unsupported_type_is_named_type_and_lists_the_supported_ones():
    errors = _errors(_event(type="case.exploded"))
    assert list(errors) == ["type"]
    assert "'case.exploded'" in errors["type"]
    assert "case.received" in errors["type"]


@pytest.mark.parametrize("body", [[], [MINIMAL], "case.received", 42, None, True])
def test_non_object_body_is_refused(body):
    errors = _errors(body)
    assert errors == {"body": "the body must be a JSON object"}


def test_occurred_at_without_offset_is_refused():
    errors = _errors(_event(occurred_at="2026-11-29T10:00:00"))
    assert list(errors) == ["occurred_at"]
    assert "time zone offset" in errors["occurred_at"]


def test_occurred_at_not_a_date_is_refused():
    errors = _errors(_event(occurred_at="yesterday"))
    assert list(errors) == ["occurred_at"]


@pytest.mark.parametrize("folio", ["MH 2026", "-MH-1", "MH-1;DROP", "folio#1", "ÑU-1", "x" * 65])
def test_bad_folio_is_refused(folio):
    errors = _errors(_event(case={"folio": folio}))
    assert list(errors) == ["case.folio"]


def test_progress_not_a_number_is_refused():
    errors = _errors(_event(case={"folio": "MH-1", "progress": "x"}))
    assert list(errors) == ["case.progress"]
    assert "integer" in errors["case.progress"]


@pytest.mark.parametrize("progress", [-1, 101, 50.5])
def test_progress_out_of_range_or_fractional_is_refused(progress):
    errors = _errors(_event(case={"folio": "MH-1", "progress": progress}))
    assert list(errors) == ["case.progress"]


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"id": 123}, "id"),
        ({"id": ""}, "id"),
        ({"id": "x" * 129}, "id"),
        ({"type": ["case.received"]}, "type"),
        ({"priority": "urgent"}, "priority"),
        ({"case": "MH-1"}, "case"),
        ({"citizen": {"msisdn": "5512345678", "language": "español"}}, "citizen.language"),
        ({"area": {"zones": "Polanco"}}, "area.zones"),
        ({"case": {"folio": "MH-1", "appointment": {"at": "tomorrow"}}}, "case.appointment.at"),
        ({"case": {"folio": "MH-1", "resolution_date": "02/12/2026"}}, "case.resolution_date"),
    ],
)
def test_wrong_types_are_named_by_dotted_path(changes, path):
    errors = _errors(_event(**changes))
    assert path in errors


def test_list_items_are_named_with_an_index():
    errors = _errors(_event(area={"zones": ["Polanco", 11560]}))
    assert list(errors) == ["area.zones[1]"]


def test_every_invalid_field_is_reported_at_once():
    errors = _errors(
        _event(
            occurred_at="2026-11-29T10:00:00",
            case={"folio": "bad folio", "progress": "x"},
            citizen={"msisdn": "123"},
        )
    )
    assert set(errors) == {"occurred_at", "case.folio", "case.progress", "citizen.msisdn"}


def test_eventinvalid_message_joins_the_errors():
    with pytest.raises(EventInvalid) as info:
        parse_event(_event(case=None, citizen=None), REQUIRED_FIELDS)
    assert (
        str(info.value)
        == "case.folio: required for case.received; citizen.msisdn: required for case.received"
    )


def test_language_tags_keep_their_primary_subtag():
    event = parse_event(_event(citizen={"msisdn": "5512345678", "language": "es-MX"}), REQUIRED_FIELDS)
    assert event.citizen.language == "es"


def test_only_emergencies_may_claim_emergency_priority():
    errors = _errors(_event(priority="emergency"))
    assert set(errors) == {"priority"}
    assert parse_event(_event(priority="low"), REQUIRED_FIELDS).priority == "low"


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_moment_outside_the_years_1_to_9999_in_utc_is_a_field_error(moment):
    """Both are valid ISO 8601 with an offset; converting them to UTC overflowed (a 500)."""
    out_of_range = "out of range: must fall in the years 1 to 9999 in UTC"
    assert _errors(_event(occurred_at=moment)) == {"occurred_at": out_of_range}
    appointment = _event(type="appointment.scheduled", case={"folio": "MH-1", "appointment": {"at": moment}})
    assert _errors(appointment) == {"case.appointment.at": out_of_range}
    notice = {"id": "w-1", "type": "water.outage", "area": {"zones": ["Anzures"]},
              "notice": {"starts_at": "2030-01-01T08:00:00Z", "ends_at": moment}}  # fmt: skip
    assert _errors(notice) == {"notice.ends_at": out_of_range}
