"""Import: ``smsgw subscribers import`` of a 100,000-row CSV into a fresh SQLite database.

Generates the file once (distinct valid numbers, mostly ``+52XXXXXXXXXX`` and ten digits, some
written "55 1234 5678" or "+52 1 55 …"; one to three topics or none; zones from a few colonias by
name, accents and sections as people write them, or by postal code, or none; language es / en /
none; 10 bad rows: invalid numbers, unknown topic, unknown zone, ambiguous zone, bad language).
Each run: a fresh database migrated (not timed), then the command in a subprocess, timed from its
start to its exit (Python start-up included); rows/s = data rows in the file / that time. The run
then checks the database (subscriptions and consent events) and that a second import of the same
file changes nothing (not timed).

    python bench/import_subscribers.py               # 100,000 rows, 3 runs, median
    python bench/import_subscribers.py --rows 20000 --runs 1
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import peak_rss_mb  # noqa: E402,F401  (kept for parity with the other benches)

ZONES = [
    "Polanco V Sección",
    "polanco 2",
    "Anzures",
    "11590",
    "Anáhuac I Sección",
    "anahuac 2a seccion",
    "Tacubaya",
    "11560",
    "Escandón I Sección",
    "Granada",
]
TOPICS = ["AGUA", "VIAL", "EMERGENCIA", "AVISOS"]
BAD_ROWS = [
    "12345,AGUA,Polanco V Sección,es",
    "+1 212 555 0100,AGUA,,es",
    "800 123 4567,AGUA,,es",
    "5512345678x,AGUA,,es",
    ",AGUA,,es",
    "+525598765431,LUZ,,es",
    "+525598765432,AGUA,Colonia Inexistente,es",
    "+525598765433,AGUA,Polanco,es",
    "+525598765434,AGUA,11590,fr",
    "+525598765435,AGUA;GAS,11590,es",
]


def generate(path: Path, rows: int, seed: int = 6) -> None:
    rng = random.Random(seed)
    numbers = rng.sample(range(10**8), rows)
    bad_at = {rng.randrange(rows) for _ in range(len(BAD_ROWS))}
    bad = iter(BAD_ROWS)
    with path.open("w", encoding="utf-8") as f:
        f.write("msisdn,topics,zones,language\n")
        for i, n in enumerate(numbers):
            if i in bad_at:
                f.write(next(bad, BAD_ROWS[0]) + "\n")
                continue
            national = f"55{n:08d}"
            form = rng.random()
            if form < 0.6:
                msisdn = "+52" + national
            elif form < 0.9:
                msisdn = national
            elif form < 0.97:
                msisdn = f"55 {national[2:6]} {national[6:]}"
            else:
                msisdn = f"+52 1 {national}"
            topics = ";".join(rng.sample(TOPICS, rng.choice((0, 1, 1, 2, 3))))
            zones = ";".join(rng.sample(ZONES, rng.choice((0, 1, 1, 1, 2))))
            if "," in zones:
                zones = f'"{zones}"'
            language = rng.choice(("es", "es", "es", "en", ""))
            f.write(f"{msisdn},{topics},{zones},{language}\n")


def write_config(path: Path, db_url: str) -> None:
    path.write_text(f'[database]\nurl = "{db_url}"\n\n[gateway]\nlog_format = "console"\n', encoding="utf-8")


def run_once(csv_path: Path, rows: int, workdir: Path, n: int) -> dict:
    db = workdir / f"import-{n}.db"
    config = workdir / f"import-{n}.toml"
    write_config(config, f"sqlite:///{db}")
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    smsgw = [sys.executable, "-m", "gateway.cli.main"]
    subprocess.run(
        [*smsgw, "db", "upgrade", "--config", str(config)], check=True, capture_output=True, env=env
    )
    command = [*smsgw, "subscribers", "import", str(csv_path), "--config", str(config)]
    started = time.perf_counter()
    first = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - started
    if first.returncode not in (0, 1):
        raise SystemExit(f"import failed ({first.returncode}):\n{first.stderr}")
    second = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    with sqlite3.connect(db) as conn:
        subs = conn.execute("select count(*) from subscriptions").fetchone()[0]
        citizens = conn.execute("select count(*) from citizens").fetchone()[0]
        ledger = conn.execute("select count(*) from consent_events").fetchone()[0]
    bad_lines = [line for line in first.stderr.splitlines() if line.startswith("line ")]
    assert "nothing changed" in second.stdout, second.stdout
    assert len(bad_lines) == len(BAD_ROWS), bad_lines
    assert citizens == rows - len(BAD_ROWS), citizens
    return {
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "subscriptions": subs,
        "citizens": citizens,
        "consent_events": ledger,
        "summary": first.stdout.strip().splitlines()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smsgw-import-") as tmp:
        workdir = Path(tmp)
        csv_path = workdir / "subscribers.csv"
        generate(csv_path, args.rows)
        print(f"{args.rows:,} rows, {csv_path.stat().st_size / 1e6:.1f} MB; command:")
        print(f"  smsgw subscribers import {csv_path.name} --config <fresh SQLite database>")
        results = []
        for n in range(args.runs):
            result = run_once(csv_path, args.rows, workdir, n)
            results.append(result)
            print(
                f"run {n + 1}: {result['seconds']:.2f} s = {result['rows_per_s']:,.0f} rows/s "
                f"({result['citizens']:,} citizens, {result['subscriptions']:,} subscriptions, "
                f"{result['consent_events']:,} consent events; second import: nothing changed)"
            )
            print(f"  {result['summary']}")
        median = statistics.median(r["rows_per_s"] for r in results)
        print(f"median: {median:,.0f} rows/s (target >= 20,000)")


if __name__ == "__main__":
    main()
