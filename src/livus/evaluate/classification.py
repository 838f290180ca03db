"""Classification metrics: ROC AUC, sensitivity/specificity at an operating point, calibration.

Pure functions on NumPy arrays (``y_true`` 0/1, ``prob`` in ``[0, 1]``). Hand-written because
they are a few lines each and scikit-learn (the usual source) is not a livus dependency; the
AUC is the Mann–Whitney statistic with ties counted one half (``scipy.stats.rankdata``), which
equals ``sklearn.metrics.roc_auc_score``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import rankdata


def _check(y_true: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(float).ravel()
    p = np.asarray(prob, float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true and prob differ in length: {y.shape} vs {p.shape}")
    return y, p


def roc_auc(y_true: np.ndarray, prob: np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    y, p = _check(y_true, prob)
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def threshold_for_sensitivity(y_true: np.ndarray, prob: np.ndarray, min_sensitivity: float = 0.9) -> float:
    """Highest threshold ``t`` such that calling ``prob >= t`` positive reaches ``min_sensitivity``."""
    y, p = _check(y_true, prob)
    pos = np.sort(p[y == 1])[::-1]
    if len(pos) == 0:
        raise ValueError("no positive case to set a sensitivity operating point")
    k = int(np.ceil(min_sensitivity * len(pos)))  # positives that must be at or above t
    return float(pos[max(k, 1) - 1])


@dataclass
class OperatingPoint:
    threshold: float
    sensitivity: float
    specificity: float
    n_pos: int
    n_neg: int


def sens_spec_at(y_true: np.ndarray, prob: np.ndarray, threshold: float) -> OperatingPoint:
    """Sensitivity and specificity of calling ``prob >= threshold`` positive."""
    y, p = _check(y_true, prob)
    call = p >= threshold
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    sens = float((call & (y == 1)).sum() / n_pos) if n_pos else float("nan")
    spec = float((~call & (y == 0)).sum() / n_neg) if n_neg else float("nan")
    return OperatingPoint(float(threshold), sens, spec, n_pos, n_neg)


@dataclass
class ReliabilityBins:
    """Equal-width probability bins: mean confidence, observed frequency and count per bin."""

    edges: np.ndarray
    mean_prob: np.ndarray
    frac_pos: np.ndarray
    count: np.ndarray


def reliability_bins(y_true: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> ReliabilityBins:
    """Bin predictions into ``n_bins`` equal-width bins of ``[0, 1]`` (last bin closed)."""
    y, p = _check(y_true, prob)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_prob = np.bincount(idx, weights=p, minlength=n_bins) / count
        frac_pos = np.bincount(idx, weights=y, minlength=n_bins) / count
    return ReliabilityBins(edges, mean_prob, frac_pos, count.astype(int))


def expected_calibration_error(y_true: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> float:
    """ECE: count-weighted mean of ``|observed frequency − mean probability|`` over bins."""
    b = reliability_bins(y_true, prob, n_bins)
    used = b.count > 0
    if not used.any():
        return float("nan")
    return float(np.sum(b.count[used] * np.abs(b.frac_pos[used] - b.mean_prob[used])) / b.count.sum())


def plot_reliability(y_true: np.ndarray, prob: np.ndarray, path: str | Path, n_bins: int = 10, title: str = "") -> Path:
    """Reliability diagram (observed frequency vs predicted probability, with bin counts) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b = reliability_bins(y_true, prob, n_bins)
    ece = expected_calibration_error(y_true, prob, n_bins)
    centres = (b.edges[:-1] + b.edges[1:]) / 2
    fig, (ax, axh) = plt.subplots(2, 1, figsize=(4.5, 5.5), height_ratios=[3, 1], sharex=True)
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfect calibration")
    used = b.count > 0
    ax.bar(centres[used], b.frac_pos[used], width=1.0 / n_bins, edgecolor="k", alpha=0.6, label="observed frequency")
    ax.plot(b.mean_prob[used], b.frac_pos[used], "o-", color="C3", ms=4, label="mean predicted")
    ax.set_ylabel("fraction malignant")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(f"{title} ECE={ece:.3f}".strip())
    ax.legend(loc="upper left", fontsize=7)
    axh.bar(centres, b.count, width=1.0 / n_bins, edgecolor="k", color="C0")
    axh.set_xlabel("predicted probability")
    axh.set_ylabel("count")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def fit_temperature(logits: np.ndarray, y_true: np.ndarray) -> float:
    """Temperature ``T`` minimising the negative log-likelihood of ``sigmoid(logit / T)``
    (Guo et al. 2017), searched on a log grid then refined with ``scipy.optimize``."""
    from scipy.optimize import minimize_scalar

    z = np.asarray(logits, float).ravel()
    y = np.asarray(y_true, float).ravel()

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        return float(np.mean(np.logaddexp(0.0, s) - y * s))

    grid = np.linspace(np.log(0.05), np.log(20.0), 61)
    start = grid[int(np.argmin([nll(g) for g in grid]))]
    res = minimize_scalar(nll, bounds=(start - 0.2, start + 0.2), method="bounded")
    return float(np.exp(res.x))
