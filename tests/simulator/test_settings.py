"""The [simulator] table: defaults from the spec, validation errors naming the key path."""

from __future__ import annotations

import asyncio

import pytest

from config.settings import ConfigError
from simulator.app import Simulator
from simulator.settings import SimulatorSettings, load_settings


def test_defaults_reproduce_the_spec():
    settings = load_settings({})
    assert settings.http_listen == "127.0.0.1:8081"
    assert settings.short_code == "30311"
    assert [(c.name, c.port, c.system_id, c.password) for c in settings.carriers] == [
        ("telcel", 2775, "smsgw", "smsgw"),
        ("movistar", 2776, "smsgw", "smsgw"),
    ]
    assert settings.store_size == 100_000
    carrier = settings.carriers[0]
    assert (carrier.receipt_mode, carrier.deliver_window) == ("batched", 100)
    assert (carrier.message_id_format, carrier.receipt_id_format, carrier.message_id_start) == (
        "hex",
        "same",
        None,
    )
    assert (carrier.bind_timeout, carrier.max_connections) == (30.0, 100)
    assert load_settings(None) == settings


def test_delays_fixed_range_or_from_the_environment():
    carrier = load_settings({"carriers": [{"name": "a", "port": 1, "receipt_delay": 2}]}).carriers[0]
    assert carrier.receipt_delay == (2.0, 2.0)
    carrier = load_settings({"carriers": [{"name": "a", "port": 1, "receipt_delay": [0.5, 3]}]}).carriers[0]
    assert carrier.receipt_delay == (0.5, 3.0)
    carrier = load_settings({"carriers": [{"name": "a", "port": 1, "receipt_delay": "0.5, 2"}]}).carriers[0]
    assert carrier.receipt_delay == (0.5, 2.0)


def test_password_from_environment(monkeypatch):
    monkeypatch.setenv("SIM_TEST_PW", "s3cret")
    carrier = load_settings({"carriers": [{"name": "a", "port": 1, "password_env": "SIM_TEST_PW"}]}).carriers[
        0
    ]
    assert carrier.password == "s3cret"


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"bogus": 1}, "simulator.bogus"),
        ({"http_listen": "8081"}, "simulator.http_listen"),
        ({"carriers": [{"name": "a", "port": "x"}]}, "simulator.carriers[0].port"),
        ({"carriers": [{"name": "a", "port": 1, "tps": 0}]}, "simulator.carriers[0].tps"),
        (
            {"carriers": [{"name": "a", "port": 1, "receipt_delay": [3, 1]}]},
            "simulator.carriers[0].receipt_delay",
        ),
        (
            {"carriers": [{"name": "a", "port": 1, "password": "muchtoolong"}]},
            "simulator.carriers[0].password",
        ),
        (
            {"carriers": [{"name": "a", "port": 1, "outcomes": {"delivered": 0}}]},
            "simulator.carriers[0].outcomes",
        ),
        (
            {"carriers": [{"name": "a", "port": 1, "faults": {"drop_after_pdus": 0}}]},
            "simulator.carriers[0].faults.drop_after_pdus",
        ),
        (
            {"carriers": [{"name": "a", "port": 1, "numbers": [{"number": "55", "behaviour": "explode"}]}]},
            "simulator.carriers[0].numbers[0].behaviour",
        ),
        (
            {"carriers": [{"name": "a", "port": 1, "receipt_mode": "sometimes"}]},
            "simulator.carriers[0].receipt_mode",
        ),
        (
            {"carriers": [{"name": "a", "port": 1, "receipt_id_format": "octal"}]},
            "simulator.carriers[0].receipt_id_format",
        ),
        (
            {"carriers": [{"name": "a", "port": 1, "message_id_start": -1}]},
            "simulator.carriers[0].message_id_start",
        ),
        ({"carriers": [{"name": "a", "port": 1, "bind_timeout": 0}]}, "simulator.carriers[0].bind_timeout"),
        (
            {"carriers": [{"name": "a", "port": 1, "max_binds": 8, "max_connections": 4}]},
            "simulator.carriers[0].max_connections",
        ),
        ({"carriers": [{"name": "a", "port": 1}, {"name": "a", "port": 2}]}, "simulator"),
        ({"carriers": []}, "simulator.carriers"),
    ],
)
def test_errors_name_the_key(raw, path):
    with pytest.raises(ConfigError) as err:
        load_settings(raw)
    message = str(err.value)
    assert message.startswith(f"config error: {path}:"), message
    assert "\n" not in message


async def test_port_zero_and_bound_ports_readable():
    settings = SimulatorSettings.model_validate(
        {
            "http_listen": "127.0.0.1:0",
            "carriers": [{"name": "telcel", "port": 0}, {"name": "movistar", "port": 0}],
        }
    )
    sim = Simulator(settings)
    with pytest.raises(RuntimeError):
        _ = sim.http_port
    async with sim:
        ports = {sim.carrier_port("telcel"), sim.carrier_port("movistar"), sim.http_port}
        assert len(ports) == 3 and 0 not in ports
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", sim.carrier_port("telcel")), 5
        )
        writer.close()
        assert sim.http_url == f"http://127.0.0.1:{sim.http_port}"


async def test_a_taken_port_fails_start_cleanly():
    first = Simulator(
        SimulatorSettings.model_validate(
            {"http_listen": "127.0.0.1:0", "carriers": [{"name": "telcel", "port": 0}]}
        )
    )
    async with first:
        taken = first.carrier_port("telcel")
        second = Simulator(
            SimulatorSettings.model_validate(
                {
                    "http_listen": "127.0.0.1:0",
                    "carriers": [{"name": "a", "port": 0}, {"name": "b", "port": taken}],
                }
            )
        )
        with pytest.raises(OSError):
            await second.start()
        assert second.smsc.carriers["a"].server is None
