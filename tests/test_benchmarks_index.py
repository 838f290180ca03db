"""benchmarks/README.md has one complete row per script in benchmarks/ (what it measures, the
command, where its figures are quoted)."""

from __future__ import annotations

import re
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _rows() -> dict[str, list[str]]:
    rows = {}
    for line in (BENCH / "README.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| `([A-Za-z0-9_]+\.py)` \|(.*)\|$", line)
        if m:
            rows[m.group(1)] = [c.strip() for c in m.group(2).split(" | ")]
    return rows


def test_every_script_has_one_complete_row():
    rows = _rows()
    scripts = sorted(p.name for p in BENCH.glob("*.py"))
    assert [s for s in scripts if s not in rows] == [], "scripts missing from benchmarks/README.md"
    for name in scripts:
        measures, command, quoted = rows[name]
        assert measures and quoted, name
        assert f"benchmarks/{name}" in command, f"{name}: the command runs another script: {command}"
