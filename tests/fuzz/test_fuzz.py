"""Property tests over hostile input, bounded for CI (registry.CI); bench/fuzz.py runs the same
properties with 100,000 cases."""

from __future__ import annotations

import pytest

from .registry import CI, Property
from .smpp_properties import PROPERTIES as SMPP
from .text_properties import PROPERTIES as TEXT

ALL: list[Property] = [*SMPP, *TEXT]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("prop", ALL, ids=[p.name for p in ALL])
def test_no_exception_but_the_documented_ones(prop: Property):
    before = prop.cases
    prop.run(CI)
    assert prop.cases > before  # it ran cases, not zero
