"""Sensitivity/specificity per model version over a sliding window, and alerts."""

from __future__ import annotations

from livus.monitor.performance import OutcomeRecord, confusion, performance_alerts, rates, rolling_series, window_metrics


def recs(version: str, pairs: list[tuple[float | None, bool]], start: int = 0) -> list[OutcomeRecord]:
    return [OutcomeRecord(version, p, m, f"t{start + i:05d}") for i, (p, m) in enumerate(pairs)]


def test_confusion_and_rates():
    r = recs("v1", [(0.9, True), (0.2, True), (0.6, False), (0.1, False), (None, False), (0.5, True)])
    c = confusion(r, 0.5)
    assert c == {"tp": 2, "fn": 1, "tn": 2, "fp": 1}
    assert rates(c) == {"sensitivity": 2 / 3, "specificity": 2 / 3}
    assert rates(confusion([], 0.5)) == {"sensitivity": None, "specificity": None}


def test_window_uses_latest_outcomes_per_version():
    good = recs("v1", [(0.9, True)] * 10 + [(0.1, False)] * 10)
    bad_then_good = recs("v2", [(0.1, True)] * 10 + [(0.9, True)] * 5, start=100)
    m = window_metrics(good + bad_then_good, window=5, threshold=0.5)
    assert m["v1"]["n"] == 5 and m["v1"]["specificity"] == 1.0 and m["v1"]["sensitivity"] is None
    assert m["v2"]["sensitivity"] == 1.0  # the bad start has left the window
    m = window_metrics(good + bad_then_good, window=100, threshold=0.5)
    assert abs(m["v2"]["sensitivity"] - 5 / 15) < 1e-9
    series = rolling_series(bad_then_good, window=5, threshold=0.5)["v2"]
    assert len(series) == 15 and series[0]["sensitivity"] == 0.0 and series[-1]["sensitivity"] == 1.0


def test_alerts_need_enough_cases_and_a_drop():
    m = {"n": 30, "sensitivity": 0.5, "specificity": 0.9}
    msgs = performance_alerts(m, 0.8, 0.6, min_cases=20)
    assert len(msgs) == 1 and "sensitivity 0.50 < 0.80" in msgs[0]
    assert performance_alerts({**m, "n": 10}, 0.8, 0.6, min_cases=20) == []
    assert performance_alerts({"n": 30, "sensitivity": 0.9, "specificity": 0.9}, 0.8, 0.6, 20) == []
    assert len(performance_alerts({"n": 30, "sensitivity": 0.1, "specificity": 0.1}, 0.8, 0.6, 20)) == 2
