"""Sensitivity and specificity per model version from confirmed outcomes (pure functions).

An outcome is one lesion whose truth a physician confirmed (pathology or follow-up) together
with the malignancy probability the model gave it. A lesion is *called malignant* when that
probability is at least ``threshold``. Over a sliding window of the latest ``window`` outcomes
of a version: sensitivity = TP / (TP + FN) over malignant lesions, specificity = TN / (TN + FP)
over benign lesions (``None`` when a denominator is 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable


@dataclass(frozen=True)
class OutcomeRecord:
    model_version: str
    predicted: float | None  # malignancy probability the model gave (None: not scored → counted as benign call)
    malignant: bool  # confirmed truth
    time: str = ""  # ISO time of confirmation (orders the window)


def confusion(records: Iterable[OutcomeRecord], threshold: float) -> dict[str, int]:
    tp = fn = tn = fp = 0
    for r in records:
        called = r.predicted is not None and r.predicted >= threshold
        if r.malignant:
            tp += called
            fn += not called
        else:
            fp += called
            tn += not called
    return {"tp": tp, "fn": fn, "tn": tn, "fp": fp}


def rates(c: dict[str, int]) -> dict[str, float | None]:
    pos, neg = c["tp"] + c["fn"], c["tn"] + c["fp"]
    return {"sensitivity": c["tp"] / pos if pos else None, "specificity": c["tn"] / neg if neg else None}


def window_metrics(records: list[OutcomeRecord], window: int, threshold: float) -> dict[str, dict[str, Any]]:
    """Per model version: confusion counts and rates over its latest ``window`` outcomes."""
    by_version: dict[str, list[OutcomeRecord]] = {}
    for r in sorted(records, key=lambda r: r.time):
        by_version.setdefault(r.model_version, []).append(r)
    out = {}
    for version, recs in by_version.items():
        last = recs[-window:]
        c = confusion(last, threshold)
        out[version] = {"n": len(last), **c, **rates(c)}
    return out


def rolling_series(records: list[OutcomeRecord], window: int, threshold: float) -> dict[str, list[dict[str, Any]]]:
    """Chart data: per version, sensitivity/specificity over the window ending at each outcome."""
    by_version: dict[str, list[OutcomeRecord]] = {}
    for r in sorted(records, key=lambda r: r.time):
        by_version.setdefault(r.model_version, []).append(r)
    series: dict[str, list[dict[str, Any]]] = {}
    for version, recs in by_version.items():
        pts = []
        for i in range(len(recs)):
            c = confusion(recs[max(0, i + 1 - window): i + 1], threshold)
            pts.append({"i": i + 1, "time": recs[i].time, **rates(c)})
        series[version] = pts
    return series


def performance_alerts(metrics: dict[str, Any], min_sensitivity: float, min_specificity: float,
                       min_cases: int) -> list[str]:
    """Messages for a version whose windowed sensitivity/specificity fell below the thresholds.

    ``metrics`` is one version's entry of :func:`window_metrics`; fewer than ``min_cases``
    outcomes give no alert (too little evidence).
    """
    if metrics["n"] < min_cases:
        return []
    msgs = []
    sens, spec = metrics.get("sensitivity"), metrics.get("specificity")
    if sens is not None and sens < min_sensitivity:
        msgs.append(f"sensitivity {sens:.2f} < {min_sensitivity:.2f} over the last {metrics['n']} confirmed lesions")
    if spec is not None and spec < min_specificity:
        msgs.append(f"specificity {spec:.2f} < {min_specificity:.2f} over the last {metrics['n']} confirmed lesions")
    return msgs
