"""The package builds without setuptools warnings and carries its data files (templates, zones,
static pages, migrations), so an installed smsgw runs outside the repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WARNINGS = ("BuildBackendWarning", "SetuptoolsDeprecationWarning", "would be ignored", "is deprecated")


def test_the_wheel_builds_quietly_with_every_data_file(tmp_path):
    source = tmp_path / "source"  # a copy: the build writes build/ and *.egg-info beside the sources
    skip = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "var", "__pycache__", ".*cache")
    shutil.copytree(REPO, source, ignore=skip)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-v", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    log = build.stdout + build.stderr
    assert build.returncode == 0, log
    assert [line for line in log.splitlines() if any(w in line for w in WARNINGS)] == []
    (wheel,) = tmp_path.glob("smsgw-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for language in ("es", "en"):
        templates = {p.name for p in (REPO / "config" / "templates" / language).glob("*.txt")}
        assert templates and {f"config/templates/{language}/{n}" for n in templates} <= names
    assert {
        "config/default.toml",
        "config/demo.toml",
        "config/zones/miguel_hidalgo.csv",
        "gateway/http/static/dashboard.html",
        "gateway/http/operators/templates/login.html",
        "simulator/static/handsets.html",
        "migrations/script.py.mako",
        "migrations/versions/0001_initial_schema.py",
        "gateway/cli/main.py",
    } <= names
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in metadata
