"""How a carrier's messages end: the outcome mix, the ``err:`` codes and the rules for given numbers."""

from __future__ import annotations

import random

from .settings import OUTCOME_STAT, Behaviour, NumberRule, Outcome, SimCarrierSettings, number_key

_RULE_OUTCOME = {
    Behaviour.DELIVER: Outcome.DELIVERED,
    Behaviour.NEVER_DELIVERS: Outcome.UNDELIVERABLE,
    Behaviour.SWITCHED_OFF: Outcome.EXPIRED,
    Behaviour.REJECT: Outcome.REJECTED,
}


class OutcomePlan:
    """Draws each message's final state, error code and delay to it from a carrier's settings."""

    __slots__ = ("_errs", "_expire_delay", "_mix", "_only", "_receipt_delay", "_rng", "fixed", "rules")

    def __init__(self, settings: SimCarrierSettings, rng: random.Random):
        self._rng = rng
        self.rules = {number_key(rule.number): rule for rule in settings.numbers}
        self._receipt_delay = settings.receipt_delay
        self._expire_delay = settings.expire_delay
        mix = settings.outcomes
        weights = [
            (Outcome.DELIVERED, mix.delivered),
            (Outcome.UNDELIVERABLE, mix.undeliverable),
            (Outcome.EXPIRED, mix.expired),
            (Outcome.REJECTED, mix.rejected),
        ]
        total = sum(w for _, w in weights)
        cumulative, acc = [], 0.0
        for outcome, weight in weights:
            if weight > 0:
                acc += weight / total
                cumulative.append((acc, outcome))
        cumulative[-1] = (1.0, cumulative[-1][1])
        self._mix = cumulative
        self._only = cumulative[0][1] if len(cumulative) == 1 else None
        codes = settings.error_codes
        self._errs = {
            Outcome.DELIVERED: codes.delivered,
            Outcome.UNDELIVERABLE: codes.undeliverable,
            Outcome.EXPIRED: codes.expired,
            Outcome.REJECTED: codes.rejected,
        }
        # what :meth:`draw` gives every message without a rule, when nothing in it is random
        low, high = self._expire_delay if self._only is Outcome.EXPIRED else self._receipt_delay
        errs = self._errs[self._only] if self._only is not None else ()
        self.fixed = (OUTCOME_STAT[self._only][1], errs[0], low) if len(errs) == 1 and low == high else None

    def draw(self, rule: NumberRule | None) -> tuple[int, int, float] | None:
        """(message_state, err, seconds to the final state) of a new message; None when it stays ENROUTE."""
        rng = self._rng
        if rule is not None:
            if rule.behaviour is Behaviour.NO_RECEIPT:
                return None
            outcome = _RULE_OUTCOME[rule.behaviour]
            err = rule.err if rule.err is not None else self._errs[outcome][0]
            span = rule.delay
        else:
            outcome = self._only
            if outcome is None:
                r = rng.random()
                for edge, candidate in self._mix:
                    if r < edge:
                        outcome = candidate
                        break
                else:  # pragma: no cover - the last edge is 1.0
                    outcome = self._mix[-1][1]
            errs = self._errs[outcome]
            err = errs[0] if len(errs) == 1 else rng.choice(errs)
            span = None
        if span is None:
            span = self._expire_delay if outcome is Outcome.EXPIRED else self._receipt_delay
        low, high = span
        return OUTCOME_STAT[outcome][1], err, (low if low == high else rng.uniform(low, high))
