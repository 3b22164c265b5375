import io
import json
import logging

import pytest
import structlog

from gateway.logging import configure_logging, get_logger, mask_phone_numbers

NUMBER = "+525512345678"
DIGITS = "5512345678"


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)
    structlog.reset_defaults()


def emit_everything() -> None:
    log = get_logger("smsgw.test")
    log.info(
        "queued sms for +52 55 1234 5678",
        msisdn=NUMBER,
        as_int=5512345678,
        citizen={"name": "Ana", "phones": ["55-1234-5678", {"alt": "044 55 1234 5678"}]},
    )
    logging.getLogger("aiohttp.access").info(
        '"GET /api/v1/messages?msisdn=%s HTTP/1.1" 200', "%2B525512345678"
    )
    try:
        raise ValueError(f"bad number {DIGITS}")
    except ValueError:
        log.exception("failed")


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("+525512345678", "+52******5678"),
        ("525512345678", "52******5678"),
        ("5215512345678", "52*******5678"),
        ("to 55 1234 5678.", "to ** **** 5678."),
        ("(55) 1234-5678", "(**) ****-5678"),
        ("+52 1 55 1234 5678", "+52 * ** **** 5678"),
        ("msisdn=%2B525512345678&x=1", "msisdn=%2B52******5678&x=1"),
        ("5512345678: hola", "******5678: hola"),
    ],
)
def test_mask_phone_numbers(text, masked):
    assert mask_phone_numbers(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "folio MH-2026-004512",
        "at 2026-11-29 10:00:00",
        "2026-11-29T10:00:00Z",
        "id 550e8400-e29b-41d4-a716-446655440000",
        "peer 192.168.100.200",
        "sent 123456789 bytes",
        "",
    ],
)
def test_mask_leaves_other_numbers(text):
    assert mask_phone_numbers(text) == text


def test_json_lines_are_masked(capsys):
    configure_logging("json", "info")
    emit_everything()
    err = capsys.readouterr().err
    assert DIGITS not in err and "1234 5678" not in err and "1234-5678" not in err
    records = [json.loads(line) for line in err.splitlines()]
    assert len(records) == 3
    first, access, failure = records
    assert first["event"] == "queued sms for +52 ** **** 5678"
    assert first["msisdn"] == "+52******5678"
    assert first["as_int"] == "******5678"
    assert first["citizen"] == {"name": "Ana", "phones": ["**-****-5678", {"alt": "*** ** **** 5678"}]}
    assert (first["level"], first["logger"]) == ("info", "smsgw.test")
    assert first["timestamp"].endswith("Z") and "T" in first["timestamp"]
    assert access["logger"] == "aiohttp.access" and access["event"].endswith('%2B52******5678 HTTP/1.1" 200')
    assert failure["level"] == "error" and "ValueError: bad number ******5678" in failure["exception"]


def test_console_output_is_masked(capsys):
    configure_logging("console", "info")
    emit_everything()
    err = capsys.readouterr().err
    assert "queued sms for +52 ** **** 5678" in err
    assert "+52******5678" in err and "**-****-5678" in err
    assert "ValueError: bad number ******5678" in err
    assert DIGITS not in err and "1234 5678" not in err and "1234-5678" not in err


def test_stdlib_logger_masked_and_level_respected():
    stream = io.StringIO()
    configure_logging("json", "warning", stream=stream)
    logging.getLogger("some.lib").info("hidden %s", NUMBER)
    logging.getLogger("some.lib").warning("visible %s", NUMBER)
    get_logger("x").info("hidden too")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["event"] == "visible +52******5678"


def test_configure_is_idempotent():
    stream = io.StringIO()
    configure_logging("console", "info", stream=stream)
    configure_logging("json", "info", stream=stream)
    get_logger("x").info("once", msisdn=NUMBER)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["msisdn"] == "+52******5678"


def test_bad_arguments():
    with pytest.raises(ValueError, match="log format"):
        configure_logging("xml")
    with pytest.raises(ValueError, match="log level"):
        configure_logging("json", "loud")
