"""Dates as citizens read them, in the city's time zone ("martes 3 de diciembre, 10:30"), and the
UTC times of the API, callbacks and logs ("2026-12-03T16:30:00Z")."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

_DAYS = {
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
_MONTHS = {
    "es": (
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}


def _local(moment: date | datetime, tz: ZoneInfo) -> date | datetime:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo("UTC"))
        return moment.astimezone(tz)
    return moment


def long_date(moment: date | datetime, tz: ZoneInfo, language: str = "es") -> str:
    local = _local(moment, tz)
    day = _DAYS[language][local.weekday()]
    month = _MONTHS[language][local.month - 1]
    if language == "en":
        return f"{day}, {month} {local.day}"
    return f"{day} {local.day} de {month}"


def long_datetime(moment: datetime, tz: ZoneInfo, language: str = "es") -> str:
    local = _local(moment, tz)
    return f"{long_date(local, tz, language)}, {local:%H:%M}"


def short_date(moment: date | datetime, tz: ZoneInfo, language: str = "es") -> str:
    local = _local(moment, tz)
    return f"{local:%m/%d/%Y}" if language == "en" else f"{local:%d/%m/%Y}"


def clock_time(moment: datetime, tz: ZoneInfo, language: str = "es") -> str:
    return f"{_local(moment, tz):%H:%M}"


def time_span(start: datetime, end: datetime | None, tz: ZoneInfo, language: str = "es") -> str:
    """A window as citizens read it: "el martes 1 de diciembre de 08:00 a 18:00", or over two days
    "del martes 1 de diciembre, 22:00 al miércoles 2 de diciembre, 06:00"."""
    first = _local(start, tz)
    if end is None:
        return (
            f"from {long_datetime(first, tz, language)}"
            if language == "en"
            else (f"desde el {long_datetime(first, tz, language)}")
        )
    last = _local(end, tz)
    if first.date() == last.date():
        day = long_date(first, tz, language)
        if language == "en":
            return f"on {day} from {first:%H:%M} to {last:%H:%M}"
        return f"el {day} de {first:%H:%M} a {last:%H:%M}"
    if language == "en":
        return f"from {long_datetime(first, tz, language)} to {long_datetime(last, tz, language)}"
    return f"del {long_datetime(first, tz, language)} al {long_datetime(last, tz, language)}"


def iso_utc(moment: datetime | None) -> str | None:
    """A naive UTC time of the database as ISO 8601 with ``Z``; None stays None."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
