"""Batch evaluation of analysis results against a labelled livus dataset.

``evaluate_results(results_dir, data_dir, out_dir)`` reads ``results_dir/results.jsonl``
(``livus.result/1`` lines, ORIGINAL pixels) and matches each line to a dataset record by FILE
STEM: ``Path(result.source).stem == Path(record.file_name).stem`` (e.g. a result for
``/any/where/benign_12.png`` or ``benign_12.jpg`` matches record ``images/benign_12.png``); for
clips (records with ``frame_index``) the frame index must match too. Records without a result
are left out and counted in ``n_unmatched_records``.

Metrics (see ``detection.py``/``segmentation.py``): FROC sensitivity at 0.1/0.25/0.5/1 FP per
image over all reported detections (normal images count for FPs); at the report threshold
(every lesion in the results for ``evaluate_results``): sensitivity by lesion size (largest
extent < 60, 60–150, > 150 px), mass Dice (per image with a mass: union of reported lesion
polygons vs the union of mass outlines; a missed mass scores 0), liver Dice (images with a
liver outline; no predicted liver scores 0) and mean |long-axis error| px over hits.
Classification metrics will be added by the classifier's evaluation (``classification`` field).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from livus.evaluate.detection import (
    FP_RATES,
    ImageMatch,
    froc_curve,
    long_axis_errors,
    match_image,
    pred_lesions,
    sensitivity_at_fp,
    sensitivity_by_size,
    threshold_at_fp,
    true_lesions,
)
from livus.evaluate.diagnosis import diagnosis_metrics, write_diagnosis_outputs
from livus.evaluate.page import write_metrics_page
from livus.evaluate.segmentation import polygon_set_dice
from livus.io.dataset import ImageRecord, load_dataset
from livus.types import FrameResult


@dataclass
class Metrics:
    """Evaluation figures (pixels are ORIGINAL image pixels)."""

    n_images: int
    n_lesions: int
    n_unmatched_records: int = 0
    report_threshold: float = 0.0
    sensitivity_at_fp: dict[str, float] = field(default_factory=dict)  # "0.25" → sensitivity
    sensitivity_reported: float = math.nan  # at the report threshold
    fp_per_image_reported: float = math.nan
    sensitivity_by_size: dict[str, float] = field(default_factory=dict)  # lt60 / 60to150 / gt150
    lesions_by_size: dict[str, int] = field(default_factory=dict)
    mass_dice: float = math.nan
    liver_dice: float = math.nan
    long_axis_error_px: float = math.nan
    n_hits_long_axis: int = 0
    threshold_at_025fp: float = math.nan  # lowest score threshold with ≤ 0.25 FP/image
    froc_fp_per_image: list[float] = field(default_factory=list)
    froc_sensitivity: list[float] = field(default_factory=list)
    classification: dict[str, Any] | None = None  # filled by the classifier's evaluation

    def to_json_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return json.loads(json.dumps(d, default=float).replace("NaN", "null"))

    def headline(self) -> dict[str, float]:
        """The figures of the targets table, flat."""
        d = {f"sens@{k}fp": v for k, v in self.sensitivity_at_fp.items()}
        d.update({f"sens_{k}": v for k, v in self.sensitivity_by_size.items()})
        d.update({"mass_dice": self.mass_dice, "liver_dice": self.liver_dice, "long_axis_err_px": self.long_axis_error_px})
        return d

    def summary_text(self) -> str:
        f = lambda v: "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"  # noqa: E731
        lines = [
            f"images {self.n_images} (unmatched records {self.n_unmatched_records}), lesions {self.n_lesions}",
            "FROC sensitivity: " + ", ".join(f"{k} FP/img {f(v)}" for k, v in self.sensitivity_at_fp.items()),
            f"at report threshold {self.report_threshold:.3f}: sensitivity {f(self.sensitivity_reported)}, "
            f"FP/image {f(self.fp_per_image_reported)}",
            "sensitivity by size: "
            + ", ".join(f"{k} {f(v)} (n={self.lesions_by_size.get(k, 0)})" for k, v in self.sensitivity_by_size.items()),
            f"mass Dice {f(self.mass_dice)}, liver Dice {f(self.liver_dice)}",
            f"mean |long-axis error| {f(self.long_axis_error_px)} px over {self.n_hits_long_axis} hits",
        ]
        c = self.classification or {}
        if c:
            lines.append(
                f"malignancy: AUC {f(c.get('malignancy_auc'))} over {c.get('n_lesions_scored', 0)} found lesions "
                f"({c.get('n_lesions_missed', 0)} missed), sensitivity {f(c.get('sensitivity'))} / specificity "
                f"{f(c.get('specificity'))} at {c.get('threshold')}, ECE {f(c.get('ece'))}; image label accuracy "
                f"{f(c.get('three_way_accuracy'))} over {c.get('n_images_three_way', 0)} images"
            )
        return "\n".join(lines)


def liver_dice(record: ImageRecord, result: FrameResult) -> float | None:
    """Dice of the predicted liver outline against the annotated one (0 when none was
    predicted); ``None`` when the image has no liver annotation. Original-image pixels."""
    if record.liver_polygon is None or len(record.liver_polygon) < 3:
        return None
    pl = result.liver_polygon_px
    return polygon_set_dice([pl], [record.liver_polygon], record.width, record.height) if pl else 0.0


def compute_metrics(records: list[ImageRecord], results: list[FrameResult], report_threshold: float = 0.0) -> Metrics:
    """All detection/segmentation metrics of paired ``records``/``results`` (same order)."""
    if len(records) != len(results):
        raise ValueError("records and results must pair up")
    truths = [true_lesions(r) for r in records]
    matches: list[ImageMatch] = [match_image(pred_lesions(res), t) for res, t in zip(results, truths)]
    fp, sens, _ = froc_curve(matches)
    at_fp = sensitivity_at_fp(matches, FP_RATES)
    size = sensitivity_by_size(matches, truths, report_threshold)
    n_les = sum(len(t) for t in truths)
    hits = sum(int(((m.hit >= 0) & (m.scores >= report_threshold)).sum()) for m in matches)
    fps = sum(int(((m.hit < 0) & (m.scores >= report_threshold)).sum()) for m in matches)
    errs = long_axis_errors(matches, truths, report_threshold)
    mass, liver = [], []
    for rec, res, t in zip(records, results, truths):
        if t:
            polys = [l.polygon_px for l in res.lesions if l.score >= report_threshold and len(l.polygon_px) >= 3]
            mass.append(polygon_set_dice(polys, [x.polygon_px for x in t], rec.width, rec.height) if polys else 0.0)
        d = liver_dice(rec, res)
        if d is not None:
            liver.append(d)
    return Metrics(
        n_images=len(records),
        n_lesions=n_les,
        report_threshold=report_threshold,
        sensitivity_at_fp={f"{r:g}": v for r, v in at_fp.items()},
        sensitivity_reported=hits / n_les if n_les else math.nan,
        fp_per_image_reported=fps / len(records) if records else math.nan,
        sensitivity_by_size={k: v[0] for k, v in size.items()},
        lesions_by_size={k: v[1] for k, v in size.items()},
        mass_dice=float(np.mean(mass)) if mass else math.nan,
        liver_dice=float(np.mean(liver)) if liver else math.nan,
        long_axis_error_px=float(errs.mean()) if len(errs) else math.nan,
        n_hits_long_axis=int(len(errs)),
        threshold_at_025fp=threshold_at_fp(matches, 0.25) if records else math.nan,
        froc_fp_per_image=[float(x) for x in fp],
        froc_sensitivity=[float(x) for x in sens],
    )


def read_results(path: Path) -> list[FrameResult]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                out.append(FrameResult.from_json_dict(json.loads(line)))
    return out


def pair_results(records: list[ImageRecord], results: list[FrameResult]) -> tuple[list[ImageRecord], list[FrameResult], int]:
    """Pair records with results by file stem (and frame index for clip frames); returns the
    paired lists and the number of records without a result."""
    by_key: dict[tuple[str, int | None], FrameResult] = {}
    for res in results:
        stem = Path(res.source).stem
        by_key.setdefault((stem, res.frame_index), res)
        by_key.setdefault((stem, None), res)
    recs, ress, missing = [], [], 0
    for rec in records:
        if rec.clip_id:  # a clip frame: the result of the clip file's frame with that index
            res = by_key.get((rec.clip_id, rec.frame_index)) if rec.frame_index is not None else None
        else:
            res = by_key.get((Path(rec.file_name).stem, rec.frame_index))
        if res is None:
            missing += 1
            continue
        recs.append(rec)
        ress.append(res)
    return recs, ress, missing


def write_metrics(metrics: Metrics, out_dir: Path, title: str = "FROC") -> None:
    from livus.evaluate.plots import plot_froc

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics.to_json_dict(), indent=1), encoding="utf-8")
    plot_froc(np.array(metrics.froc_fp_per_image), np.array(metrics.froc_sensitivity), out_dir / "froc.png", title)


def evaluate_results(results_dir: Path, data_dir: Path, out_dir: Path | None = None) -> Metrics:
    """Metrics of ``results_dir/results.jsonl`` against the dataset at ``data_dir``; writes
    ``metrics.json`` and ``froc.png`` to ``out_dir`` (default ``results_dir``)."""
    results_dir, data_dir = Path(results_dir), Path(data_dir)
    ds = load_dataset(data_dir)
    results = read_results(results_dir / "results.jsonl")
    recs, ress, missing = pair_results(ds.images, results)
    metrics = compute_metrics(recs, ress, report_threshold=0.0)
    metrics.n_unmatched_records = missing
    diag = diagnosis_metrics(recs, ress)
    metrics.classification = diag.to_json_dict()
    out = Path(out_dir) if out_dir else results_dir
    write_metrics(metrics, out)
    plots = [out / "froc.png", *write_diagnosis_outputs(diag, out)]
    write_metrics_page(out, {**metrics.to_json_dict(), **metrics.classification}, plots)
    return metrics
