"""The Open311 poller against a GeoReport server on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from crm_adapters import state
from gateway.store.models import cases, crm_adapter_state, crm_tracked_requests

from .conftest import bodies, stored_events

PHONE = "55 1234 5678"


async def first_poll(poller):
    """The first cycle reads the server's clock and starts there."""
    report = await poller.poll_once()
    assert report.ok, report.error
    return report


async def test_a_new_request_becomes_case_received_and_its_changes_follow(db, make_poller, georeport, clock):
    poller = make_poller()
    await first_poll(poller)
    created = clock.advance(seconds=30)
    georeport.add("101", created, phone=PHONE, service_name="Bache")
    clock.advance(seconds=30)
    report = await poller.poll_once()
    assert (report.new, report.accepted) == (1, 1)
    assert stored_events(db) == [("open311-101-received-20261201T160030Z", "case.received")]
    (text,) = bodies(db)
    assert "101" in text and "ESTADO 101" in text
    with db.engine.connect() as conn:
        case = conn.execute(select(cases)).mappings().one()
    assert (case["folio"], case["category"], case["status"]) == ("101", "Bache", "Abierta")

    at = clock.advance(minutes=1)
    georeport.change("101", at, status_notes="Cuadrilla asignada")
    report = await poller.poll_once()
    assert (report.changed, report.accepted) == (1, 1)
    at = clock.advance(minutes=1)
    georeport.change("101", at, agency_responsible="Obras Públicas")
    await poller.poll_once()
    at = clock.advance(minutes=1)
    georeport.change("101", at, status="closed", status_notes="Bache tapado")
    await poller.poll_once()
    assert [t for _, t in stored_events(db)] == [
        "case.received",
        "case.status_changed",
        "case.status_changed",
        "case.resolved",
    ]
    texts = bodies(db)
    assert "Abierta: Cuadrilla asignada" in texts[1]
    assert "turnada a Obras Públicas" in texts[2] or "turnada a Obras Publicas" in texts[2]
    assert "resuelto el martes 1 de diciembre" in texts[3]
    with db.engine.connect() as conn:
        tracked = conn.execute(select(crm_tracked_requests)).mappings().one()
    assert tracked["phase"] == "resolved" and tracked["finished_at"] == clock()

    # nothing changed: nothing sent, however often it is polled
    clock.advance(minutes=1)
    report = await poller.poll_once()
    assert report.accepted == 0 and len(stored_events(db)) == 4


async def test_more_than_a_thousand_requests_in_a_window_are_all_read(db, make_poller, georeport, clock):
    poller = make_poller(max_results=1000)
    await first_poll(poller)
    base = clock()
    for i in range(2500):
        georeport.add(f"{5000 + i}", base + timedelta(seconds=1 + i // 10), phone=PHONE)
    clock.advance(minutes=10)
    georeport.queries.clear()
    report = await poller.poll_once()
    assert report.ok, report.error
    assert report.new == 2500 and report.accepted == 2500
    received = [e for e, t in stored_events(db) if t == "case.received"]
    assert len(received) == len(set(received)) == 2500
    windows = [q for path, q in georeport.queries if path == "requests.json" and "start_date" in q]
    assert len(windows) > 3  # the full windows were split
    # a second cycle repeats nothing
    clock.advance(minutes=1)
    report = await poller.poll_once()
    assert report.accepted == 0 and len(stored_events(db)) == 2500


async def test_the_paging_extension_reads_every_page(db, make_poller, georeport, clock):
    georeport.paging = True
    poller = make_poller(max_results=1000, page_size=200)
    await first_poll(poller)
    base = clock()
    for i in range(450):
        georeport.add(f"P{i:04d}", base + timedelta(seconds=1 + i // 100), phone=PHONE)
    clock.advance(minutes=10)
    georeport.queries.clear()
    report = await poller.poll_once()
    assert report.accepted == 450
    pages = [q.get("page") for path, q in georeport.queries if "start_date" in q]
    assert pages == ["1", "2", "3"]


async def test_a_long_absence_is_caught_up_in_windows_of_at_most_90_days(db, make_poller, georeport, clock):
    poller = make_poller()
    await first_poll(poller)
    start = clock()
    for days in (10, 100, 190):
        georeport.add(f"L{days}", start + timedelta(days=days), phone=PHONE)
    clock.advance(days=200)
    georeport.queries.clear()
    report = await poller.poll_once()
    assert report.ok, report.error
    assert sorted(e for e, t in stored_events(db)) == [
        "open311-L10-received-20261211T160000Z",
        "open311-L100-received-20270311T160000Z",
        "open311-L190-received-20270609T160000Z",
    ]
    from .georeport import _parse

    spans = [
        _parse(q["end_date"]) - _parse(q["start_date"]) for path, q in georeport.queries if "start_date" in q
    ]
    assert len(spans) == 3 and max(spans) <= timedelta(days=90)


async def test_a_request_changed_twice_between_polls_sends_its_latest_state(
    db, make_poller, georeport, clock
):
    poller = make_poller()
    await first_poll(poller)
    georeport.add("7", clock.advance(seconds=5), phone=PHONE)
    clock.advance(seconds=30)
    await poller.poll_once()
    georeport.change("7", clock.advance(seconds=10), status_notes="Revisión en sitio")
    georeport.change("7", clock.advance(seconds=10), status_notes="Reparación programada")
    clock.advance(seconds=30)
    report = await poller.poll_once()
    assert report.changed == 1 and report.accepted == 1
    assert "Reparación programada" in bodies(db)[-1] or "Reparacion programada" in bodies(db)[-1]


async def test_with_fixmystreet_updates_each_change_is_an_event_in_order(db, make_poller, georeport, clock):
    georeport.updates_feed = True
    poller = make_poller(updates="auto")
    await first_poll(poller)
    assert poller.mode == "servicerequestupdates"
    georeport.add("FMS-01", clock.advance(seconds=5), phone=PHONE)
    clock.advance(seconds=30)
    await poller.poll_once()
    georeport.update("FMS-01", "FMS-01_1", clock.advance(seconds=10), "in_progress", "Cuadrilla en camino")
    georeport.update("FMS-01", "FMS-01_2", clock.advance(seconds=10), "fixed", "Fuga reparada")
    clock.advance(seconds=30)
    report = await poller.poll_once()
    assert report.ok, report.error
    assert stored_events(db)[1:] == [
        ("open311-FMS-01-status-uFMS-01_1", "case.status_changed"),
        ("open311-FMS-01-resolved-uFMS-01_2", "case.resolved"),
    ]
    assert "En proceso: Cuadrilla en camino" in bodies(db)[1]
    # the feed's window overlaps the last one: the same updates again change nothing
    clock.advance(seconds=30)
    assert (await poller.poll_once()).accepted == 0


async def test_auto_mode_falls_back_to_refetch_when_the_server_has_no_updates_feed(make_poller, georeport):
    poller = make_poller(updates="auto")
    await first_poll(poller)
    assert poller.mode == "refetch"


async def test_chicago_updated_after(db, make_poller, georeport, clock):
    georeport.updated_after = True
    poller = make_poller(updates="updated_after")
    await first_poll(poller)
    georeport.add("C1", clock.advance(seconds=5), phone=PHONE)
    clock.advance(seconds=30)
    await poller.poll_once()
    georeport.change("C1", clock.advance(seconds=10), status="closed", status_notes="Atendido")
    georeport.queries.clear()
    clock.advance(seconds=30)
    report = await poller.poll_once()
    assert report.accepted == 1 and stored_events(db)[-1][1] == "case.resolved"
    assert any("updated_after" in q for _, q in georeport.queries)
    assert not any("service_request_id" in q for _, q in georeport.queries)


async def test_requests_without_an_id_are_ignored_until_they_have_one(db, make_poller, georeport, clock):
    poller = make_poller()
    await first_poll(poller)
    record = georeport.add("tmp", clock.advance(seconds=5), phone=PHONE)
    del georeport.requests["tmp"]
    georeport.requests["pending"] = {k: v for k, v in record.items() if k != "service_request_id"}
    clock.advance(seconds=30)
    report = await poller.poll_once()
    assert report.without_id == 1 and stored_events(db) == []
    georeport.requests["pending"]["service_request_id"] = "900"
    clock.advance(seconds=30)
    report = await poller.poll_once()  # the overlap re-reads the window: now it has an id
    assert [t for _, t in stored_events(db)] == ["case.received"]


async def test_a_closed_duplicate_is_closed_not_resolved(db, make_poller, georeport, clock):
    poller = make_poller()
    await first_poll(poller)
    georeport.add("D1", clock.advance(seconds=5), phone=PHONE)
    clock.advance(seconds=30)
    await poller.poll_once()
    georeport.change("D1", clock.advance(seconds=5), status="closed", status_notes="Solicitud duplicada")
    clock.advance(seconds=30)
    await poller.poll_once()
    assert stored_events(db)[-1][1] == "case.closed"
    # reopened
    georeport.change("D1", clock.advance(seconds=5), status="open", status_notes=None)
    clock.advance(seconds=30)
    await poller.poll_once()
    assert stored_events(db)[-1][1] == "case.status_changed" and "Reabierta" in bodies(db)[-1]


async def test_the_phone_directory_gives_numbers_the_crm_does_not_publish(db, make_poller, georeport, clock):
    poller = make_poller(phone_field="", phone_lookup_field="account_id")
    await first_poll(poller)
    georeport.add("N1", clock.advance(seconds=5), account_id="ACC-1")
    clock.advance(seconds=30)
    report = await poller.poll_once()
    assert report.without_phone == 1 and stored_events(db) == []
    db.transaction(state.save_phone_numbers, "cesac", [("ACC-1", "+525512345678")], clock())
    clock.advance(seconds=30)
    report = await poller.poll_once()  # re-fetched by id: the number is known now
    assert [t for _, t in stored_events(db)] == ["case.received"]
    assert report.accepted == 1


async def test_a_request_older_than_the_backfill_is_followed_unannounced(db, make_poller, georeport, clock):
    poller = make_poller(overlap_seconds=3600)
    georeport.add("OLD", clock() - timedelta(minutes=30), phone=PHONE)
    await first_poll(poller)
    clock.advance(seconds=30)
    await poller.poll_once()  # the overlap reads it: created before the adapter started
    assert stored_events(db) == []
    georeport.change("OLD", clock.advance(seconds=5), status="closed")
    clock.advance(seconds=30)
    await poller.poll_once()
    assert [t for _, t in stored_events(db)] == ["case.resolved"]


async def test_only_the_lease_holder_polls(db, make_poller, georeport, clock):
    first = make_poller(owner="node-a")
    second = make_poller(owner="node-b")
    with db.engine.begin() as conn:
        state.claim(conn, first.name, "open311", "cesac", "node-a", 300, clock(), {})
    report = await second.poll_once()
    assert report.skipped and not georeport.queries
    with db.engine.connect() as conn:
        row = conn.execute(select(crm_adapter_state)).mappings().one()
    assert row["lease_owner"] == "node-a"


async def test_every_query_carries_the_jurisdiction_and_the_api_key(make_poller, georeport, clock):
    poller = make_poller(api_key="k-123", jurisdiction_id="miguelhidalgo.cdmx.gob.mx")
    await first_poll(poller)
    georeport.add("J1", clock.advance(seconds=5), phone=PHONE)
    clock.advance(seconds=30)
    await poller.poll_once()
    assert georeport.queries
    for _, params in georeport.queries:
        assert params["api_key"] == "k-123" and params["jurisdiction_id"] == "miguelhidalgo.cdmx.gob.mx"
