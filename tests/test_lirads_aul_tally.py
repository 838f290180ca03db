"""benchmarks/lirads_aul.py: the per-class tally of case.json ``lirads.us`` blocks and the seeded
per-class sample (pure functions; no models, no analysis)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "lirads_aul.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("lirads_aul", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _us(status, category=None, reason=None, vis=None, observations=()):
    return {"status": status, "category": category, "reason": reason, "visualization_score": vis,
            "observations": list(observations)}


COUNTS_NO_SIZE = {"id": 1, "long_axis_mm": None, "counts": True, "definitely_benign": None}
CYST = {"id": 2, "long_axis_mm": 14.0, "counts": False, "definitely_benign": "simple_cyst", "malignancy": 0.2}
MALIGNANT_CYST = {**CYST, "malignancy": 0.9}
COUNTS_12MM = {"id": 3, "long_axis_mm": 12.0, "counts": True, "definitely_benign": None}


def test_tally_counts_outcomes_reasons_scores_and_observations(bench):
    cases = [
        ("malignant", _us("not_categorised", reason="size_unknown", vis="A", observations=[COUNTS_NO_SIZE]), False),
        ("malignant", _us("categorised", "US-3", vis="B", observations=[COUNTS_12MM, MALIGNANT_CYST]), True),
        ("benign", _us("categorised", "US-1", vis="C", observations=[CYST]), False),
        ("normal", _us("not_categorised", reason="not_assessable"), False),
        ("normal", _us("not_applicable", reason="not_at_risk"), False),
        ("normal", None, False),
    ]
    t = bench.tally(cases)
    assert t["malignant"]["n"] == 2
    assert t["malignant"]["outcome"] == {"not categorised: size_unknown": 1, "US-3": 1}
    assert t["malignant"]["visualization"] == {"A": 1, "B": 1}
    assert (t["malignant"]["observations"], t["malignant"]["counting"], t["malignant"]["counting_with_size"]) == (3, 2, 1)
    assert t["malignant"]["definitely_benign"] == {"simple_cyst": 1}
    assert (t["malignant"]["benign_malignancy_ge_half"], t["benign"]["benign_malignancy_ge_half"]) == (1, 0)
    assert t["malignant"]["spacing_known"] == 1
    assert t["benign"]["outcome"] == {"US-1": 1} and t["benign"]["visualization"] == {"C": 1}
    assert t["benign"]["counting"] == 0
    assert t["normal"]["outcome"] == {"not categorised: not_assessable": 1, "not applicable: not_at_risk": 1,
                                      "no US result": 1}
    assert t["normal"]["visualization"] == {"none": 3}

    table = bench.format_table(t)
    header = table.splitlines()[0]
    assert "US-1" in header and "not categorised: size_unknown" in header and "vis C" in header
    malignant = next(line for line in table.splitlines() if line.startswith("| malignant | 2 |"))
    assert malignant.split(" | ")[2:5] == ["0", "0", "1"]  # US-1, US-2, US-3


def test_sample_is_seeded_per_class_and_capped(bench):
    ann = {"images": [{"file_name": f"images/{c}_{i}.png", "image_class": c}
                      for c, n in (("benign", 5), ("malignant", 7), ("normal", 2)) for i in range(n)]}
    a = bench.sample_images(ann, 3, seed=0)
    assert a == bench.sample_images(ann, 3, seed=0)
    assert [c for _, c in a] == ["benign"] * 3 + ["malignant"] * 3 + ["normal"] * 2  # normal has only 2
    assert len({f for f, _ in a}) == len(a)
    assert len(bench.sample_images(ann, None, seed=0)) == 14
    assert any(bench.sample_images(ann, 3, seed=s) != a for s in range(1, 5))
