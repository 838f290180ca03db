"""Diagnosis metrics of analysis results: lesion malignancy (AUC, sensitivity/specificity at an
operating point, calibration) and the three-way image label (normal / benign / malignant).

A true lesion's malignancy prediction is the malignancy of the highest-scoring detection that
hits it (the detection matching of ``livus.evaluate.detection``); a missed lesion has no
prediction and is counted in ``n_lesions_missed`` (it cannot enter the AUC). The image label is
``FrameResult.image_label``'s most probable class when present, else derived from the lesions
(no lesion at or above the detection threshold → normal; any lesion's malignancy ≥ the
operating threshold → malignant; else benign).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from livus.evaluate.classification import expected_calibration_error, roc_auc, sens_spec_at
from livus.evaluate.detection import match_image, pred_lesions, true_lesions
from livus.io.dataset import ImageRecord
from livus.types import FrameResult
from livus.vocab import IMAGE_CLASSES


@dataclass
class DiagnosisMetrics:
    n_lesions_scored: int = 0
    n_lesions_missed: int = 0
    malignancy_auc: float = math.nan
    threshold: float = 0.5
    sensitivity: float = math.nan
    specificity: float = math.nan
    ece: float = math.nan
    n_images_three_way: int = 0
    three_way_accuracy: float = math.nan
    confusion: list[list[int]] = field(default_factory=list)  # rows true, columns predicted (IMAGE_CLASSES order)
    y_true: list[int] = field(default_factory=list)
    prob: list[float] = field(default_factory=list)

    def to_json_dict(self) -> dict:
        d = asdict(self)
        d.pop("y_true")
        d.pop("prob")
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


def lesion_malignancy_pairs(records: list[ImageRecord], results: list[FrameResult]) -> tuple[np.ndarray, np.ndarray, int]:
    """``(y_true, prob, n_missed)`` over true lesions with a benign/malignant label."""
    y, p, missed = [], [], 0
    for rec, res in zip(records, results):
        labelled = [les for les in rec.lesions if len(les.polygon_px) >= 3]
        truths = true_lesions(rec)
        preds = pred_lesions(res)
        order = sorted(range(len(preds)), key=lambda i: -preds[i].score)
        m = match_image(preds, truths)
        for j, les in enumerate(labelled):
            if les.malignant is None:
                continue
            hits = [order[k] for k in range(len(order)) if m.hit[k] == j]
            mal = res.lesions[hits[0]].malignancy if hits else None
            if mal is None:
                missed += 1
                continue
            y.append(int(bool(les.malignant)))
            p.append(float(mal))
    return np.asarray(y, int), np.asarray(p, float), missed


def predicted_image_class(res: FrameResult, threshold: float, score_threshold: float) -> str:
    """normal / benign / malignant for one frame (see module docstring)."""
    if res.image_label:
        return max(IMAGE_CLASSES, key=lambda c: res.image_label.get(c, 0.0))
    kept = [les for les in res.lesions if les.score >= score_threshold]
    if not kept:
        return "normal"
    mals = [les.malignancy for les in kept if les.malignancy is not None]
    return "malignant" if mals and max(mals) >= threshold else "benign"


def diagnosis_metrics(
    records: list[ImageRecord], results: list[FrameResult], threshold: float = 0.5, score_threshold: float = 0.0
) -> DiagnosisMetrics:
    """All diagnosis figures for paired records/results (same order)."""
    out = DiagnosisMetrics(threshold=threshold)
    y, p, missed = lesion_malignancy_pairs(records, results)
    out.n_lesions_scored, out.n_lesions_missed = int(len(y)), missed
    out.y_true, out.prob = y.tolist(), p.tolist()
    if len(y) and 0 < y.sum() < len(y):
        out.malignancy_auc = roc_auc(y, p)
        op = sens_spec_at(y, p, threshold)
        out.sensitivity, out.specificity = op.sensitivity, op.specificity
        out.ece = expected_calibration_error(y, p)
    conf = np.zeros((3, 3), int)
    for rec, res in zip(records, results):
        if rec.image_class not in IMAGE_CLASSES:
            continue
        pred = predicted_image_class(res, threshold, score_threshold)
        conf[IMAGE_CLASSES.index(rec.image_class), IMAGE_CLASSES.index(pred)] += 1
    out.n_images_three_way = int(conf.sum())
    if conf.sum():
        out.three_way_accuracy = float(np.trace(conf) / conf.sum())
    out.confusion = conf.tolist()
    return out


def plot_roc(y_true: np.ndarray, prob: np.ndarray, path: Path, title: str = "ROC") -> Path:
    """ROC curve PNG (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = np.argsort(-prob, kind="stable")
    y = np.asarray(y_true)[order]
    tpr = np.r_[0.0, np.cumsum(y) / max(y.sum(), 1)]
    fpr = np.r_[0.0, np.cumsum(1 - y) / max((1 - y).sum(), 1)]
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=110)
    ax.plot(fpr, tpr, lw=2)
    ax.plot([0, 1], [0, 1], ls="--", c="grey")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1.01))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_confusion(confusion: list[list[int]], path: Path, title: str = "Image label") -> Path:
    """Confusion-matrix PNG (rows: true class, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = np.asarray(confusion)
    fig, ax = plt.subplots(figsize=(4.5, 4), dpi=110)
    ax.imshow(c, cmap="Blues")
    for i in range(c.shape[0]):
        for j in range(c.shape[1]):
            ax.text(j, i, str(c[i, j]), ha="center", va="center", color="black" if c[i, j] < c.max() / 2 else "white")
    ax.set_xticks(range(3), IMAGE_CLASSES)
    ax.set_yticks(range(3), IMAGE_CLASSES)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def write_diagnosis_outputs(m: DiagnosisMetrics, out_dir: Path) -> list[Path]:
    """ROC, reliability diagram and confusion matrix PNGs (those that can be drawn)."""
    from livus.evaluate.classification import plot_reliability

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    y, p = np.asarray(m.y_true, int), np.asarray(m.prob, float)
    if len(y) and 0 < y.sum() < len(y):
        written.append(plot_roc(y, p, out_dir / "roc.png", f"Malignancy ROC (AUC {m.malignancy_auc:.3f})"))
        written.append(Path(plot_reliability(y, p, out_dir / "reliability.png", title="Reliability")))
    if m.n_images_three_way:
        written.append(plot_confusion(m.confusion, out_dir / "confusion.png"))
    return written
