"""The speed limit under throttling (AIMD) and the token bucket, on a fake clock."""

from __future__ import annotations

import pytest

from smpp_client.policies.rate import TokenBucket
from smpp_client.policies.throttle import AimdPolicy


def test_at_the_configured_rate_until_throttled():
    policy = AimdPolicy(100)
    assert policy.rate(0.0) == policy.rate(1e6) == 100
    assert not policy.paused(0.0)


def test_throttle_halves_the_rate_and_pauses():
    policy = AimdPolicy(100, pause_seconds=1.0)
    assert policy.on_throttle(10.0, epoch=0)
    assert policy.paused(10.5) and not policy.paused(11.0)
    assert policy.rate(10.5) == pytest.approx(50)
    assert policy.decreases == 1 and policy.throttles == 1


def test_one_decrease_per_episode():
    """A full window of throttles answering submits sent before the decrease halves the rate once."""
    policy = AimdPolicy(100)
    epoch = policy.epoch
    assert policy.on_throttle(0.0, epoch)
    for _ in range(50):
        assert not policy.on_throttle(0.01, epoch)
    assert policy.rate(0.5) == pytest.approx(50)
    assert policy.throttles == 51 and policy.decreases == 1
    # a throttle of a submit sent after the decrease is a new episode
    assert policy.on_throttle(2.0, policy.epoch)
    assert policy.decreases == 2


def test_never_below_the_floor():
    policy = AimdPolicy(100, min_rate=5)
    now = 0.0
    for _ in range(20):
        policy.on_throttle(now, policy.epoch)
    assert policy.rate(now) == 5


def test_multiplicative_factor_is_configurable():
    policy = AimdPolicy(200, decrease=0.8, pause_seconds=0)
    policy.on_throttle(0.0, 0)
    assert policy.rate(0.0) == pytest.approx(160)


def test_recovery_is_fast_to_near_the_ceiling_then_additive_then_multiplicative():
    policy = AimdPolicy(
        1000, pause_seconds=1.0, recovery_per_second=2.0, fast_seconds=2.0, probe_seconds=5.0, growth=0.25
    )
    # first throttle at the configured rate: the SMSC's limit is unknown, say it throttled at 1000
    policy.on_throttle(0.0, 0)
    assert policy.rate(1.0) == pytest.approx(500)
    # fast: back to 90 % of the ceiling (900) within fast_seconds after the pause
    assert policy.rate(2.0) == pytest.approx(700)
    assert policy.rate(3.0) == pytest.approx(900)
    # probing: +2/s for probe_seconds
    assert policy.rate(5.0) == pytest.approx(904)
    assert policy.rate(8.0) == pytest.approx(910)
    # then 25 % per second up to the configured rate
    assert policy.rate(8.2) == pytest.approx(910 * 1.25**0.2)
    assert policy.rate(60.0) == 1000
    # fully recovered: the episode is forgotten
    assert policy.rate(61.0) == 1000


def test_settles_below_an_smsc_limit_lower_than_configured():
    """Simulate an SMSC bucket of 50/s (burst 50) and a client configured at 100/s: accepted ≈ 50/s."""
    policy = AimdPolicy(100, pause_seconds=1.0)
    limiter = TokenBucket(policy, now=0.0)
    smsc_tokens, smsc_stamp = 50.0, 0.0
    accepted = throttled = 0
    t, dt, until = 0.0, 0.001, 120.0
    accepted_after_30 = 0
    while t < until:
        if limiter.take(1, t) == 0.0:
            smsc_tokens = min(50.0, smsc_tokens + (t - smsc_stamp) * 50)
            smsc_stamp = t
            if smsc_tokens >= 1:
                smsc_tokens -= 1
                accepted += 1
                if t >= 30:
                    accepted_after_30 += 1
            else:
                throttled += 1
                policy.on_throttle(t + 0.002, policy.epoch)  # the answer comes 2 ms later
        t += dt
    rate = accepted_after_30 / (until - 30)
    assert 45 <= rate <= 50.5, rate
    assert throttled < accepted * 0.05


def test_limiter_holds_the_rate_exactly():
    limiter = TokenBucket(AimdPolicy(100), now=0.0)
    sent = 0
    t = 0.0
    while t < 60.0:
        wait = limiter.take(1, t)
        if wait == 0.0:
            sent += 1
        else:
            t += wait
    # 60 s at 100/s, plus the initial burst of a tenth of a second
    assert 6000 <= sent <= 6011


def test_limiter_answers_the_wait_and_lets_big_messages_borrow():
    limiter = TokenBucket(AimdPolicy(10), now=0.0)  # burst 1 token
    assert limiter.take(1, 0.0) == 0.0
    assert limiter.take(1, 0.0) == pytest.approx(0.1)
    # a message of 5 segments (more than the bucket holds) goes once the bucket is full, then the
    # debt delays what follows
    assert limiter.take(5, 0.1) == 0.0
    assert limiter.take(1, 0.1) == pytest.approx(0.5)


def test_limiter_sends_nothing_during_a_pause_and_starts_empty_after():
    policy = AimdPolicy(100, pause_seconds=1.0)
    limiter = TokenBucket(policy, now=0.0)
    assert policy.on_throttle(5.0, policy.epoch)  # the bucket sees the new epoch
    assert limiter.take(1, 5.2) == pytest.approx(0.8)
    assert limiter.take(1, 6.0) > 0  # empty bucket: no burst right after the pause
    assert limiter.take(1, 6.03) == 0.0  # 50/s: one token after 20 ms


def test_invalid_policy():
    with pytest.raises(ValueError):
        AimdPolicy(0)
    with pytest.raises(ValueError):
        AimdPolicy(10, decrease=1.0)
