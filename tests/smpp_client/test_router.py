"""Routing rules: ported numbers, prefixes, weights, failover order; the ported table reloads."""

from __future__ import annotations

import os
from collections import Counter

import pytest

from smpp_client.policies.router import RoutingError, RuleRouter, load_ported

CARRIERS = ["telcel", "movistar", "att"]


def test_configured_order_without_rules():
    router = RuleRouter(CARRIERS)
    assert router.candidates("+525512345678") == ["telcel", "movistar", "att"]
    assert router.primary("+525512345678") == ("telcel", "order")


def test_longest_prefix_wins():
    router = RuleRouter(CARRIERS, prefixes=[("52", "movistar"), ("5255", "att"), ("525512", "telcel")])
    assert router.primary("+525512345678") == ("telcel", "prefix")
    assert router.primary("+525599999999") == ("att", "prefix")
    assert router.primary("+523312345678") == ("movistar", "prefix")
    assert router.candidates("+525599999999") == ["att", "telcel", "movistar"]


def test_prefix_accepts_a_plus():
    router = RuleRouter(CARRIERS, prefixes=[("+5233", "att")])
    assert router.primary("+523312345678")[0] == "att"


def test_weights_split_traffic_evenly_interleaved():
    router = RuleRouter(CARRIERS, weights={"telcel": 3, "movistar": 1})
    picks = [router.primary(f"+52551234{i:04d}")[0] for i in range(400)]
    assert Counter(picks) == {"telcel": 300, "movistar": 100}
    # smooth: never more than 3 in a row for the 3:1 carrier, the 1 spread out
    assert "movistar" in picks[:4] and "movistar" in picks[4:8]
    # the failover list after a weighted pick: the others in configured order
    assert router.candidates("+525512340000")[1:] in (["movistar", "att"], ["telcel", "att"])


def test_zero_weight_carrier_only_takes_failover():
    router = RuleRouter(CARRIERS, weights={"telcel": 1, "movistar": 0})
    assert {router.primary("+525512345678")[0] for _ in range(20)} == {"telcel"}


def test_failover_off_gives_one_candidate():
    router = RuleRouter(CARRIERS, failover=False)
    assert router.candidates("+525512345678") == ["telcel"]


def test_unknown_carriers_are_refused():
    with pytest.raises(RoutingError):
        RuleRouter(CARRIERS, prefixes=[("52", "nope")])
    with pytest.raises(RoutingError):
        RuleRouter(CARRIERS, weights={"nope": 1})


def _write(path, text):
    path.write_text(text)
    return path


def test_ported_numbers_win_over_prefixes(tmp_path):
    csv = _write(
        tmp_path / "ported.csv",
        "msisdn,carrier\n+52 55 1234 5678,movistar\n# comment\n5587654321,att\nbad,telcel\n5511112222,nope\n",
    )
    router = RuleRouter(CARRIERS, prefixes=[("5255", "telcel")], ported_path=csv)
    assert len(router.ported) == 2
    assert router.primary("+525512345678") == ("movistar", "ported")
    assert router.primary("+525587654321") == ("att", "ported")
    assert router.primary("+525500000000") == ("telcel", "prefix")
    assert router.candidates("+525512345678") == ["movistar", "telcel", "att"]


def test_ported_table_reloads_when_the_file_changes(tmp_path):
    csv = _write(tmp_path / "ported.csv", "5512345678,movistar\n")
    router = RuleRouter(CARRIERS, ported_path=csv)
    assert router.primary("+525512345678")[0] == "movistar"
    assert not router.refresh()  # unchanged
    _write(csv, "5512345678,att\n")
    stat = os.stat(csv)
    os.utime(csv, (stat.st_atime, stat.st_mtime + 5))
    assert router.refresh()
    assert router.primary("+525512345678")[0] == "att"
    # a file gone keeps the loaded table
    csv.unlink()
    assert not router.refresh()
    assert router.primary("+525512345678")[0] == "att"


def test_load_ported_reports_bad_rows(tmp_path):
    csv = _write(tmp_path / "p.csv", "5512345678,telcel\n5512345679\n12,telcel\n")
    assert load_ported(csv, CARRIERS) == {"5512345678": "telcel"}
