"""The fuzzing properties of tests/fuzz/ with a large budget: 100,000 cases in all by default,
shared equally by the properties (the PDU codec and framing, a connection's frame handling,
receipts, keywords, the import files' rows and CSV files).

    python bench/fuzz.py                      # 100,000 cases
    python bench/fuzz.py --cases 20000 --only "pdu decoder" --only "receipt parser"

Prints, per property, the cases run, the failure (Hypothesis's shrunk example) if any and the
time; exits 1 when a property failed.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import logging

import structlog
from hypothesis import HealthCheck, settings

from tests.fuzz.test_fuzz import ALL


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="cases in all (default 100,000)")
    parser.add_argument("--only", action="append", help="a property's name (repeatable)")
    args = parser.parse_args()
    chosen = [p for p in ALL if not args.only or p.name in args.only]
    if not chosen:
        parser.error(f"no such property; the properties: {', '.join(p.name for p in ALL)}")
    # what the code under test logs about the garbage it is fed is not the report
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    each = max(1, args.cases // len(chosen))
    budget = settings(
        max_examples=each,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    failures = 0
    started = time.perf_counter()
    for prop in chosen:
        t0 = time.perf_counter()
        failure = ""
        try:
            prop.run(budget)
        except Exception as exc:  # the property failed: report it and go on with the next
            failures += 1
            failure = "".join(traceback.format_exception_only(exc)).strip()
        took = time.perf_counter() - t0
        print(
            f"{prop.name:20} {prop.cases:>8,} cases  {'FAILED' if failure else 'ok':6} {took:7.1f} s",
            flush=True,
        )
        if failure:
            print("    " + failure.replace("\n", "\n    "), flush=True)
    total = sum(p.cases for p in chosen)
    print(f"{'total':20} {total:>8,} cases, {failures} failures, {time.perf_counter() - started:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
