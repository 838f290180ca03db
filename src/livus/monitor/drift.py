"""Input drift: grey-level and size statistics and scanner models of recent frames compared with
the training data (pure functions; the service stores the per-frame statistics).

A model version's reference statistics live in its ``metrics.json`` under ``"input_stats"``
(see :func:`reference_stats`); drift is measured per statistic as the standardised mean
difference ``(mean_recent - mean_train) / sd_train``, plus the share of recent frames from a
scanner model never seen in training.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Iterable

import numpy as np

NUMERIC_STATS = ("mean_grey", "std_grey", "width_px", "height_px", "dark_fraction")


def frame_stats(pixels: np.ndarray, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Statistics of one grey frame (``uint8``, original pixels) and its scanner model."""
    md = metadata or {}
    px = np.asarray(pixels)
    scanner = " ".join(str(md[k]) for k in ("Manufacturer", "ManufacturerModelName") if md.get(k)) or str(md.get("device") or "")
    return {
        "mean_grey": float(px.mean()) if px.size else 0.0,
        "std_grey": float(px.std()) if px.size else 0.0,
        "width_px": int(px.shape[1]) if px.ndim == 2 else 0,
        "height_px": int(px.shape[0]) if px.ndim == 2 else 0,
        "dark_fraction": float((px < 10).mean()) if px.size else 0.0,
        "scanner": scanner,
    }


def reference_stats(stats: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Summary (mean, sd, n per statistic; scanner counts) of training-frame statistics."""
    rows = list(stats)
    out: dict[str, Any] = {"n": len(rows), "scanners": dict(Counter(r.get("scanner", "") for r in rows))}
    for key in NUMERIC_STATS:
        vals = np.asarray([float(r[key]) for r in rows if key in r], float)
        out[key] = {"mean": float(vals.mean()) if vals.size else 0.0, "sd": float(vals.std(ddof=1)) if vals.size > 1 else 0.0}
    return out


def standardised_difference(recent_mean: float, ref_mean: float, ref_sd: float) -> float:
    """``(recent_mean - ref_mean) / ref_sd``; 0 when both equal, ±inf when sd is 0 and they differ."""
    diff = recent_mean - ref_mean
    if ref_sd <= 0:
        return 0.0 if abs(diff) < 1e-9 else math.copysign(math.inf, diff)
    return diff / ref_sd


def drift_report(reference: dict[str, Any] | None, recent: list[dict[str, Any]], smd_threshold: float,
                 min_frames: int) -> dict[str, Any]:
    """Per-statistic drift of ``recent`` frame statistics against ``reference``.

    ``status`` is ``"no-reference"``, ``"too-few-frames"``, ``"ok"`` or ``"drift"`` (any
    |SMD| above ``smd_threshold``, or more than half the frames from unseen scanners).
    """
    report: dict[str, Any] = {"n_recent": len(recent), "threshold": smd_threshold, "stats": {}, "reasons": []}
    if not reference:
        report["status"] = "no-reference"
        return report
    if len(recent) < min_frames:
        report["status"] = "too-few-frames"
        return report
    for key in NUMERIC_STATS:
        ref = reference.get(key)
        vals = [float(r[key]) for r in recent if key in r]
        if not ref or not vals:
            continue
        m = float(np.mean(vals))
        smd = standardised_difference(m, float(ref["mean"]), float(ref["sd"]))
        report["stats"][key] = {"recent_mean": round(m, 3), "train_mean": round(float(ref["mean"]), 3),
                                "smd": None if math.isinf(smd) else round(smd, 3), "drift": abs(smd) > smd_threshold}
        if abs(smd) > smd_threshold:
            report["reasons"].append(f"{key}: recent mean {m:.1f} vs training {ref['mean']:.1f} (SMD {smd:+.2f})")
    known = set(reference.get("scanners", {}))
    unseen = [r.get("scanner", "") for r in recent if r.get("scanner", "") not in known]
    share = len(unseen) / len(recent)
    report["unseen_scanner_share"] = round(share, 3)
    if share > 0.5:
        names = ", ".join(sorted({s or "(unknown)" for s in unseen})[:5])
        report["reasons"].append(f"{share:.0%} of recent frames from scanners not in the training data: {names}")
    report["status"] = "drift" if report["reasons"] else "ok"
    return report
