"""A CRM's own JSON by a declarative mapping: the shipped SUAC example, the start-up checks, and
POST /api/v1/crm/{client}/events answering like /api/v1/events with the CRM's own field names."""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from config.settings import CONFIG_DIR, ConfigError
from crm_adapters.mapping import load_mapping
from gateway.http.signing import Signer
from gateway.store.models import cases, events, messages
from tests.api_gateway import api_settings, running

CITY = ZoneInfo("America/Mexico_City")
SUAC = CONFIG_DIR / "crm_mappings" / "suac.toml"
SECRET = "s3cret"
SIGNERS: dict[tuple[str, str], Signer] = {}  # one per client: a repeat is signed afresh
BODY = {
    "solicitud": {"folio": "MH-2026-004512", "tema": "Fuga de agua"},
    "movimiento": {"consecutivo": 3, "estatus": "En proceso", "avance": 60, "fecha": "29/11/2026 12:30"},
    "ciudadano": {"nombre": "Ana", "celular": "55 1234 5678"},
}


def body(**changes) -> dict:
    data = json.loads(json.dumps(BODY))
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split("__")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return data


def test_the_shipped_example_makes_the_case_event():
    mapping = load_mapping(SUAC, CITY)
    payload, errors = mapping.apply(BODY)
    assert errors == []
    assert payload == {
        "id": "suac-MH-2026-004512-3",
        "type": "case.status_changed",
        "occurred_at": "2026-11-29T12:30:00-06:00",
        "case": {
            "folio": "MH-2026-004512",
            "category": "Fuga de agua",
            "status": "En proceso",
            "progress": 60,
        },
        "citizen": {"msisdn": "55 1234 5678", "name": "Ana", "language": "es"},
    }


def test_an_appointment_and_a_resolution_date_through_their_date_formats():
    mapping = load_mapping(SUAC, CITY)
    payload, _ = mapping.apply(
        body(
            movimiento__estatus="CITA PROGRAMADA",
            movimiento__fecha_solucion="02/12/2026",
            cita={"fecha_hora": "03/12/2026 10:30", "lugar": "Módulo Tacuba"},
        )
    )
    assert payload["type"] == "appointment.scheduled"
    assert payload["case"]["appointment"] == {"at": "2026-12-03T10:30:00-06:00", "place": "Módulo Tacuba"}
    assert payload["case"]["resolution_date"] == "2026-12-02"


def test_errors_of_the_mapping_name_the_crms_fields():
    mapping = load_mapping(SUAC, CITY)
    _, errors = mapping.apply(body(movimiento__estatus="ARCHIVADA", movimiento__fecha="ayer"))
    fields = {f for f, _ in errors}
    assert fields == {"movimiento.estatus", "movimiento.fecha"}
    assert any("unknown value 'ARCHIVADA'" in reason for _, reason in errors)
    _, errors = mapping.apply(body(movimiento__consecutivo=None))
    assert errors == [
        ("solicitud.folio, movimiento.consecutivo", "required to build id; missing from the body")
    ]
    assert mapping.source_of("citizen.msisdn") == "ciudadano.celular"
    assert mapping.source_of("case.appointment.at") == "cita.fecha_hora"
    assert mapping.source_of("notice.text") == "notice.text (not given by the mapping suac.toml)"


def write(tmp_path: Path, text: str, name: str = "m.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[fields]\nid = 'a'\n", "config error: mapping.fields.type: required key is missing"),
        (
            "[fields]\nid = 'a'\ntype = 'b'\n'case.foo' = 'c'\n",
            "config error: mapping.fields.case.foo: not a field",
        ),
        (
            "[fields]\nid = 'a'\ntype = { path = 'b', map = 'tipos' }\n",
            "config error: mapping.fields.type.map: no table [maps.tipos] in the mapping",
        ),
        (
            "[fields]\nid = 'a'\ntype = { path = 'b', map = 't' }\n[maps.t]\nX = 'case.open'\n",
            "config error: mapping.maps.t: 'case.open' is not an event type",
        ),
        (
            "[fields]\nid = 'a..b'\ntype = { const = 'notice' }\n",
            "config error: mapping.fields.id.path: not a path",
        ),
        (
            "[fields]\nid = { path = 'a', const = 'x' }\ntype = { const = 'notice' }\n",
            "config error: mapping.fields.id: give exactly one of path, format or const",
        ),
        (
            "[fields]\nid = { path = 'a', formato = 'x' }\ntype = { const = 'notice' }\n",
            "config error: mapping.fields.id.formato: unknown key",
        ),
        (
            "[fields]\nid = 'a'\ntype = { const = 'notice' }\n"
            "'case.folio' = { path = 'f', date_format = '%d' }\n",
            "config error: mapping.fields.case.folio.date_format: only for date fields",
        ),
        ("[fields\n", "config error: mapping: m.toml is not valid TOML"),
    ],
)
def test_a_mapping_mistake_is_one_line_naming_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as caught:
        load_mapping(write(tmp_path, text), CITY)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_json_mapping_file_works_too(tmp_path):
    path = write(
        tmp_path,
        json.dumps(
            {"fields": {"id": "caso.id", "type": {"const": "case.received"}, "case.folio": "caso.id"}}
        ),
        "m.json",
    )
    payload, errors = load_mapping(path, CITY).apply({"caso": {"id": 77}})
    assert errors == [] and payload == {"id": "77", "type": "case.received", "case": {"folio": "77"}}


# --- the route ---------------------------------------------------------------------------------------


@pytest.fixture
async def client(db_url):
    settings = api_settings(
        db_url, crm_adapters=[{"kind": "mapped_json", "client": "cesac", "mapping": str(SUAC)}]
    )
    async with running(settings) as (_, http):
        yield http


async def post(
    client, data: object, *, path: str = "/api/v1/crm/cesac/events", who: str = "cesac", secret=SECRET
):
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    signer = SIGNERS.setdefault((who, secret), Signer(who, secret))
    headers = {"Content-Type": "application/json", **signer.headers("POST", path, raw)}
    response = await client.post(path, data=raw, headers=headers)
    return response.status, await response.json(content_type=None)


def count(db, table) -> int:
    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


async def test_the_crms_body_is_accepted_like_an_event(db, client):
    status, answer = await post(client, BODY)
    assert status == 202
    assert answer["event_id"] == "suac-MH-2026-004512-3" and answer["recipients"] == 1
    assert len(answer["message_ids"]) == 1
    again = await post(client, BODY)
    assert again == (202, answer)
    assert count(db, messages) == 1
    with db.engine.connect() as conn:
        case = conn.execute(select(cases)).mappings().one()
    assert (case["status"], case["progress"]) == ("En proceso", 60)
    # the same event by the webhook answers the same shape
    canonical, _ = load_mapping(SUAC, CITY).apply(body(movimiento__consecutivo=4))
    raw = json.dumps(canonical).encode()
    headers = {
        "Content-Type": "application/json",
        **Signer("cesac", SECRET).headers("POST", "/api/v1/events", raw),
    }
    response = await client.post("/api/v1/events", data=raw, headers=headers)
    assert response.status == 202 and set(await response.json()) == set(answer)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (body(ciudadano__celular="12"), "ciudadano.celular"),
        (body(movimiento__estatus="ARCHIVADA"), "movimiento.estatus"),
        (body(movimiento__avance=150), "movimiento.avance"),
        (body(solicitud__folio="MH 2026"), "solicitud.folio"),
        ([1, 2], "body"),
    ],
)
async def test_problems_name_the_crms_own_field_and_write_nothing(db, client, data, field):
    status, problem = await post(client, data)
    assert status == 422, problem
    assert problem["field"] == field and problem["invalid_params"][0]["name"] == field
    assert count(db, events) == 0


async def test_a_missing_required_field_names_the_crms_field(db, client):
    data = body()
    del data["ciudadano"]["celular"]
    status, problem = await post(client, data)
    assert status == 422 and problem["field"] == "ciudadano.celular"


async def test_malformed_json_is_a_400(client):
    status, problem = await post(client, b"{not json")
    assert status == 400 and problem["field"] == "body"


async def test_an_id_reused_for_another_case_is_a_409(db, client):
    await post(client, BODY)
    data = body()
    data["solicitud"]["folio"] = "MH-2026-004512"
    data["movimiento"]["estatus"] = "CONCLUIDA"  # the same id (folio + consecutivo), another event
    status, problem = await post(client, data)
    assert status == 409 and problem["field"] == "solicitud.folio, movimiento.consecutivo"


async def test_signatures_and_clients(client):
    status, problem = await post(client, BODY, secret="wrong")
    assert status == 401
    status, problem = await post(client, BODY, path="/api/v1/crm/other/events")
    assert status == 403 and "/api/v1/crm/cesac/events" in problem["detail"]
    status, problem = await post(
        client, BODY, path="/api/v1/crm/other/events", who="other", secret="other-secret"
    )
    assert status == 404 and problem["title"] == "No mapping for this client"
