from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from config.settings import (
    DEFAULT_CONFIG,
    DEMO_CONFIG,
    CarrierSettings,
    ConfigError,
    CrmClientSettings,
    DatabaseSettings,
    Settings,
    format_validation_error,
    load_settings,
    load_simulator_settings,
    read_toml,
)
from gateway.cli.demo import port_overrides

PROD_ENV = {
    "SMSGW_TELCEL_PASSWORD": "t-pass",
    "SMSGW_MOVISTAR_PASSWORD": "m-pass",
    "SMSGW_CESAC_SECRET": "s3",
}
DEMO_ENV = {"SMSGW_DEMO_SMSC_PASSWORD": "smsgw", "SMSGW_DEMO_SECRET": "demo-secret"}

MINIMAL = """
[[carriers]]
name = "telcel"
port = 2775
system_id = "smsgw"
password_env = "PW"

[[crm_clients]]
id = "cesac"
secret_env = "SECRET"
"""
MINIMAL_ENV = {"PW": "pw", "SECRET": "s"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "smsgw.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, text), env=MINIMAL_ENV if env is None else env)
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith("config error: ")
    return message


def test_default_config_loads():
    s = load_settings(env=PROD_ENV)
    assert s.source_path == DEFAULT_CONFIG
    assert s.gateway.host == "127.0.0.1" and s.gateway.port == 8080
    assert s.gateway.tz == ZoneInfo("America/Mexico_City")
    assert s.gateway.short_code == "30311" and s.gateway.log_format == "json"
    assert s.database.url == "sqlite:///var/smsgw.db"
    assert [(c.name, c.port, c.password) for c in s.carriers] == [
        ("telcel", 2775, "t-pass"),
        ("movistar", 2776, "m-pass"),
    ]
    telcel = s.carriers[0]
    assert (telcel.source_addr_ton, telcel.dest_addr_ton) == (6, 1)
    assert s.gateway.transliteration == "accents"
    assert [(c.id, c.secret) for c in s.crm_clients] == [("cesac", "s3")]
    assert s.dispatch.batch_size == 500


def test_demo_config_loads():
    s = load_settings(DEMO_CONFIG, env=DEMO_ENV)
    assert s.gateway.log_format == "console"
    assert s.database.url == "sqlite:///var/demo.db"
    assert s.database.sqlite_path == Path("var/demo.db")
    assert [(c.name, c.host, c.port, c.system_id, c.password) for c in s.carriers] == [
        ("telcel", "127.0.0.1", 2775, "smsgw", "smsgw"),
        ("movistar", "127.0.0.1", 2776, "smsgw", "smsgw"),
    ]
    assert s.crm_client("demo").secret == "demo-secret"
    assert s.simulator["http_listen"] == "127.0.0.1:8081"
    assert [c["port"] for c in s.simulator["carriers"]] == [2775, 2776]


def test_secrets_not_in_repr_or_dump():
    s = load_settings(env=PROD_ENV)
    assert "t-pass" not in repr(s) and "s3" not in repr(s)
    assert "t-pass" not in s.model_dump_json()


def test_env_overrides_scalars(tmp_path):
    env = {
        **MINIMAL_ENV,
        "SMSGW_DATABASE_URL": "postgresql://smsgw@db/smsgw",
        "SMSGW_GATEWAY_LISTEN": "0.0.0.0:9000",
        "SMSGW_DISPATCH_BATCH_SIZE": "50",
        "SMSGW_CARRIERS_TELCEL_HOST": "smsc.telcel.example",
        "SMSGW_SIMULATOR_HTTP_LISTEN": "127.0.0.1:9081",
        "SMSGW_UNRELATED_THING": "ignored",
    }
    s = load_settings(write(tmp_path, MINIMAL), env=env)
    assert s.database.url == "postgresql://smsgw@db/smsgw"
    assert s.database.sqlalchemy_url == "postgresql+psycopg://smsgw@db/smsgw"
    assert (s.gateway.host, s.gateway.port) == ("0.0.0.0", 9000)
    assert s.dispatch.batch_size == 50
    assert s.carriers[0].host == "smsc.telcel.example"
    assert s.simulator == {"http_listen": "127.0.0.1:9081"}


def test_env_overrides_a_key_of_one_simulator_carrier():
    env = {**DEMO_ENV, "SMSGW_SIMULATOR_CARRIERS_TELCEL_PORT": "12775", "SMSGW_CARRIERS_TELCEL_PORT": "12775"}
    s = load_settings(DEMO_CONFIG, env=env)
    assert [c["port"] for c in s.simulator["carriers"]] == ["12775", 2776]  # validated by the simulator
    assert s.carriers[0].port == 12775


def test_the_simulator_alone_needs_no_gateway_secret_and_overrides_its_defaults():
    assert [(c.name, c.port) for c in load_simulator_settings(None, env={}).carriers] == [
        ("telcel", 2775),
        ("movistar", 2776),
    ]
    env = {"SMSGW_SIMULATOR_CARRIERS_MOVISTAR_RECEIPT_DELAY": "0.5", "SMSGW_DATABASE_URL": "nonsense"}
    sim = load_simulator_settings(None, env=env)
    assert (sim.carrier("movistar").receipt_delay, sim.carrier("telcel").mo_prefixes) == ((0.5, 0.5), ["52"])
    demo = load_simulator_settings(DEMO_CONFIG, env={"SMSGW_SIMULATOR_CARRIERS_TELCEL_PORT": "0"})
    assert [(c.name, c.port, c.receipt_delay) for c in demo.carriers] == [
        ("telcel", 0, (0.2, 0.2)),
        ("movistar", 2776, (0.2, 0.2)),
    ]
    with pytest.raises(ConfigError) as err:
        load_simulator_settings(None, env={"SMSGW_SIMULATOR_CARRIERS_NEXTEL_PORT": "1"})
    assert str(err.value) == (
        "config error: simulator.carriers_nextel_port: unknown key "
        "(from environment variable SMSGW_SIMULATOR_CARRIERS_NEXTEL_PORT)"
    )


def test_port_base_moves_every_port_of_the_demo():
    env = {**DEMO_ENV, **port_overrides(read_toml(DEMO_CONFIG), 19000)}
    s = load_settings(DEMO_CONFIG, env=env)
    assert s.gateway.listen == "127.0.0.1:19000"
    assert [(c.name, c.port) for c in s.carriers] == [("telcel", 19002), ("movistar", 19003)]
    sim = load_simulator_settings(DEMO_CONFIG, env=env)
    assert sim.http_listen == "127.0.0.1:19001"
    assert [(c.name, c.port) for c in sim.carriers] == [("telcel", 19002), ("movistar", 19003)]
    with pytest.raises(ValueError, match="above 65535"):
        port_overrides(read_toml(DEMO_CONFIG), 65533)


def test_env_override_error_names_variable(tmp_path):
    env = {**MINIMAL_ENV, "SMSGW_DISPATCH_BATCH_SIZE": "lots"}
    message = error_of(tmp_path, MINIMAL, env)
    assert message.startswith("config error: dispatch.batch_size: Input should be a valid integer")
    assert message.endswith("(from environment variable SMSGW_DISPATCH_BATCH_SIZE)")


def test_env_cannot_replace_a_table(tmp_path):
    message = error_of(
        tmp_path,
        MINIMAL + '[simulator]\n[[simulator.carriers]]\nname = "x"\n',
        {**MINIMAL_ENV, "SMSGW_SIMULATOR_CARRIERS": "x"},
    )
    assert message.startswith(
        "config error: simulator.carriers: environment variable SMSGW_SIMULATOR_CARRIERS"
    )


def test_wrong_type(tmp_path):
    message = error_of(tmp_path, MINIMAL.replace("port = 2775", 'port = "two"'))
    assert message.startswith("config error: carriers[0].port: Input should be a valid integer")


def test_unknown_key(tmp_path):
    assert error_of(tmp_path, MINIMAL.replace("port = 2775", "port = 2775\nprot = 1")) == (
        "config error: carriers[0].prot: unknown key"
    )
    assert error_of(tmp_path, "[gatway]\n" + MINIMAL) == "config error: gatway: unknown key"


@pytest.mark.parametrize("listen", ["8080", "localhost", "127.0.0.1:http", "127.0.0.1:70000", ":8080"])
def test_bad_listen(tmp_path, listen):
    message = error_of(tmp_path, f'[gateway]\nlisten = "{listen}"\n' + MINIMAL)
    assert message.startswith("config error: gateway.listen: expected host:port")


def test_ipv6_listen():
    assert Settings(gateway={"listen": "[::1]:8080"}).gateway.host == "::1"


def test_unknown_time_zone(tmp_path):
    message = error_of(tmp_path, '[gateway]\ntimezone = "America/Ciudad_Gotica"\n' + MINIMAL)
    assert message == (
        "config error: gateway.timezone: unknown time zone 'America/Ciudad_Gotica': "
        "expected an IANA name such as America/Mexico_City"
    )


def test_bad_literal_and_range(tmp_path):
    assert error_of(tmp_path, '[gateway]\nlog_format = "xml"\n' + MINIMAL).startswith(
        "config error: gateway.log_format: Input should be 'json' or 'console'"
    )
    assert error_of(tmp_path, MINIMAL.replace("port = 2775", "port = 2775\nwindow = 0")).startswith(
        "config error: carriers[0].window: Input should be greater than or equal to 1"
    )


def test_bad_database_url(tmp_path):
    message = error_of(tmp_path, '[database]\nurl = "mysql://root:hunter2@db/x"\n' + MINIMAL)
    assert message.startswith("config error: database.url: unsupported database URL scheme 'mysql'")
    assert "hunter2" not in message


def test_duplicate_carrier_names(tmp_path):
    twice = MINIMAL + MINIMAL.split("[[crm_clients]]")[0]
    assert error_of(tmp_path, twice) == (
        "config error: carriers: duplicate carrier name 'telcel' (carriers[0] and carriers[1])"
    )


def test_duplicate_crm_client_ids(tmp_path):
    message = error_of(tmp_path, MINIMAL + '[[crm_clients]]\nid = "cesac"\nsecret_env = "SECRET"\n')
    assert message.startswith("config error: crm_clients: duplicate crm client id 'cesac'")


def test_missing_env_var(tmp_path):
    assert error_of(tmp_path, MINIMAL, {"SECRET": "s"}) == (
        "config error: carriers[0].password_env: environment variable PW is not set"
    )
    assert error_of(tmp_path, MINIMAL, {"PW": "pw"}) == (
        "config error: crm_clients[0].secret_env: environment variable SECRET is not set"
    )


def test_password_in_file(tmp_path):
    message = error_of(tmp_path, MINIMAL.replace('password_env = "PW"', 'password = "smsgw"'))
    assert message.startswith("config error: carriers[0].password: passwords do not go in the configuration")
    assert "password_env" in message


def test_secret_in_file(tmp_path):
    message = error_of(
        tmp_path, MINIMAL.replace('secret_env = "SECRET"', 'secret_env = "SECRET"\nsecret = "x"')
    )
    assert message.startswith("config error: crm_clients[0].secret: secrets do not go in the configuration")


def test_toml_syntax_error(tmp_path):
    message = error_of(tmp_path, "[gateway]\nlisten = 127.0.0.1:8080\n")
    assert str(tmp_path / "smsgw.toml") in message
    assert "invalid TOML" in message and "line 2" in message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_settings(tmp_path / "nope.toml", env={})
    assert str(exc.value) == f"config error: {tmp_path / 'nope.toml'}: file not found"


def test_source_path_not_settable_from_file(tmp_path):
    assert error_of(tmp_path, 'source_path = "/etc"\n' + MINIMAL) == "config error: source_path: unknown key"


def test_models_constructed_directly_take_secrets():
    carrier = CarrierSettings(name="telcel", port=2775, system_id="smsgw", password="pa55")
    assert carrier.password == "pa55" and "pa55" not in repr(carrier)
    assert (
        CrmClientSettings(id="demo", secret_env="UNSET_VAR_X", secret="demo-secret").secret == "demo-secret"
    )


def test_format_validation_error_prefix():
    with pytest.raises(ValidationError) as exc:
        DatabaseSettings(url="oracle://x")
    assert format_validation_error(exc.value, prefix="simulator.db").startswith(
        "simulator.db.url: unsupported database URL scheme"
    )
    assert str(ConfigError(format_validation_error(exc.value))).startswith("config error: url: ")


def test_config_error_is_one_line():
    assert str(ConfigError("a:\n  b")) == "config error: a: b"
    assert str(ConfigError("config error: x: y")) == "config error: x: y"
