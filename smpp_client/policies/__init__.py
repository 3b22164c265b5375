"""The small policies a carrier or the pool is built with, each a Protocol with one default:

- :mod:`.throttle`: how fast a carrier may be sent to, and what a throttling answer does to that
  (default :class:`~.throttle.AimdPolicy`);
- :mod:`.rate`: spending that rate, segment by segment (default :class:`~.rate.TokenBucket`);
- :mod:`.router`: which carrier a number goes to, and which next (default :class:`~.router.RuleRouter`).

A test or a deployment swaps one by passing it to the constructor; nothing else changes.
"""
