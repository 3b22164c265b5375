"""Which carrier a message goes to, in order of preference."""

from __future__ import annotations


class Router:
    """Carriers in configured order; the first one with a bound link takes the message.

    Prefix ranges, ported-number tables and weights plug in here (issue #4).
    """

    def __init__(self, carrier_names: list[str]):
        self.carrier_names = list(carrier_names)

    def candidates(self, msisdn: str) -> list[str]:
        return self.carrier_names
