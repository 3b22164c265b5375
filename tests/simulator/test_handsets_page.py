"""The handsets page rendered by headless Chromium (Debian's ``chromium``): Spanish, 24-hour times,
each message with the status its receipt gives. Skipped where Chromium is not installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest

from smpp_client.constants import Cmd

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TZ = "America/Mexico_City"

RULES = [
    {"number": "5511110001", "behaviour": "never_delivers"},
    {"number": "5511110002", "behaviour": "switched_off"},
    {"number": "5511110003", "behaviour": "reject"},
    {"number": "5511110004", "behaviour": "no_receipt"},
]
EXPECTED = {  # number -> (text sent, status shown)
    "+525512345678": ("Corte de agua en Polanco de 10:00 a 14:00", "entregado"),
    "+525511110001": ("Su cita es el 3 de marzo", "no entregado"),
    "+525511110002": ("El predial vence el viernes", "expirado"),
    "+525511110003": ("Su reporte fue atendido", "rechazado"),
    "+525511110004": ("Simulacro hoy a las 12:00", "pendiente"),
}


class Bubbles(HTMLParser):
    """Each message bubble of the page: its text, the meta line and its status label."""

    def __init__(self) -> None:
        super().__init__()
        self.lang = None
        self.bubbles: list[dict] = []
        self._field: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "html":
            self.lang = attrs.get("lang")
        elif "bubble" in classes:
            self.bubbles.append({"dir": classes[1], "text": "", "meta": "", "status": "", "receipt": ""})
            self._field = "text"
        elif self.bubbles and "meta" in classes:
            self._field = "meta"
        elif self.bubbles and "st" in classes:
            self._field = "status"
        elif self.bubbles and "receipt" in classes:
            self._field = "receipt"

    def handle_endtag(self, tag):
        if tag == "b" and self._field == "status":
            self._field = "meta"
        elif tag in ("span", "div"):
            self._field = None

    def handle_data(self, data):
        if self._field is not None and self.bubbles:
            self.bubbles[-1][self._field] += data


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")
def test_handsets_page_in_spanish_with_receipt_status(make_sim, raw_clients, tmp_path):
    sim = make_sim(telcel={"numbers": RULES})
    raw = raw_clients(sim.port())
    raw.bind()
    for number, (text, _) in EXPECTED.items():
        raw.submit(to=number.lstrip("+"), text=text.encode())
    receipts = 0
    while receipts < 4:  # every one but the no_receipt number
        pdu = raw.read()
        if pdu.command_id == Cmd.DELIVER_SM:
            raw.ack(pdu)
            receipts += 1
    sim.wait_until(lambda: sim.smsc.carriers["telcel"].stats.receipts_acked == 4, what="receipts acked")
    status, _, _ = sim.http("POST", "/sim/mo", {"from": "+525512345678", "text": "ALTA AGUA POLANCO"})
    assert status == 202
    raw.ack(raw.read_until(Cmd.DELIVER_SM))
    sim.wait_until(lambda: sim.store.mo("+525512345678")[0].status == "delivered", what="MO acked")
    handsets = {p["number"]: p for p in sim.get("/sim/handsets")["phones"]}

    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=2000",
            "--dump-dom",
            f"{sim.sim.http_url}/",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"TZ": TZ, "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=True,
    ).stdout
    page = Bubbles()
    page.feed(dom)
    assert page.lang == "es"
    assert "Teléfonos virtuales" in dom and "Nuevo teléfono" in dom and "Enviar" in dom
    shown = {b["text"]: b for b in page.bubbles}
    for number, (text, label) in EXPECTED.items():
        bubble = shown[text]
        assert bubble["dir"] == "in" and bubble["status"] == label, bubble
        at = datetime.fromisoformat(handsets[number]["items"][0]["at"].replace("Z", "+00:00"))
        clock = at.astimezone(ZoneInfo(TZ)).strftime("%H:%M:%S")
        assert f"de 30311 · {clock} · GSM-7" in bubble["meta"], bubble  # 24-hour clock, no a. m. / p. m.
        assert not re.search(r"\b[ap]\.?\s?m\b", bubble["meta"], re.IGNORECASE)
    assert shown["Corte de agua en Polanco de 10:00 a 14:00"]["receipt"] == "acuse confirmado por el gateway"
    assert shown["Simulacro hoy a las 12:00"]["receipt"] == "sin acuse"
    reply = shown["ALTA AGUA POLANCO"]
    assert reply["dir"] == "out" and reply["status"] == "recibido por el gateway"
