"""Does the detector still find a real lesion when the liver around it is diseased?

The other side of ``benchmarks/diffuse_false_positives.py``: a detector can report few lesions on
diseased livers simply by reporting few lesions on anything that looks like them. Here every
CV fold's held-out AUL lesions (real lesions, never seen by that fold's model) are pasted with
``livus.augment.copy_paste_lesion`` (grey-matched to their new surroundings, feathered edge)

- into held-out simulated lesion-free livers of every group of ``diffuse_false_positives``
  (normal, steatosis 1-3, fibrosis F1-F4, schistosomal 1-3, steatosis with fibrosis; the same
  seed and count per group give the same livers), one liver of each group per lesion: a paired
  comparison;
- into one of the fold's own held-out AUL normal livers: a real healthy background, for reference;

and the fold's model analyses each result in model space with a score calibration and report
threshold fitted on the OTHER folds (cross-fitted, as ``benchmarks/pretrained_cv_report.py``).
A pasted lesion is found when a reported lesion hits it by the rule of the AUL figures
(``livus.evaluate.detection.match_image``: centre inside the outline or box IoU >= 0.3); reports
elsewhere count as false positives. Also printed: the same lesions in their own AUL images.

A pasted lesion is not a lesion grown in that liver (its own surroundings are cut away, and a
lesion in a cirrhotic liver looks different from one in a healthy liver); the figures say how
the detector treats a real lesion's appearance on each background, not a clinical sensitivity.

Usage: python benchmarks/diffuse_lesion_sensitivity.py --data DATASET --cv runs/cv_hn4
           [--per-grade 10] [--lesions-per-fold 40] [--json benchmarks/results/diffuse_lesion_sensitivity.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diffuse_false_positives import SEED, groups, lesion_free_liver, share_interval  # noqa: E402

from livus.augment import copy_paste_lesion  # noqa: E402
from livus.evaluate.detection import PredLesion, TrueLesion, match_image  # noqa: E402
from livus.models.decode import decode_detections  # noqa: E402
from livus.models.detector import load_detector  # noqa: E402
from livus.train.calibration import calibrated_scores, cross_fitted_operating_point, held_out_predictions  # noqa: E402
from livus.train.detector import load_cv_run  # noqa: E402
from livus.train.trainer import predict  # noqa: E402

AUL_NORMAL = "AUL normal (real)"
PASTE_TRIES = 5  # livers of a background tried per lesion before it counts as not placed


def model_space_liver(sim: "object", pcfg: "object") -> dict[str, np.ndarray]:
    """A simulated still preprocessed as inference does: model image, liver mask, fan mask."""
    from livus.preprocess.pipeline import preprocess_frame
    from livus.shapes import polygon_mask
    from livus.types import Frame

    pre = preprocess_frame(Frame(sim.image, "liver.png"), pcfg)
    h, w = sim.image.shape[:2]
    liver = pre.letterbox.mask_to_model(polygon_mask(sim.liver_polygon, w, h))
    return {"image": pre.image.astype(np.float32), "liver": liver, "valid": pre.valid_mask.astype(np.uint8)}


def outlines(instance_mask: np.ndarray) -> list[TrueLesion]:
    """Each lesion of an instance mask as an annotated lesion (its largest outer contour, model pixels)."""
    out = []
    for v in (int(v) for v in np.unique(instance_mask) if v):
        contours, _ = cv2.findContours((instance_mask == v).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        out.append(TrueLesion(polygon_px=max(contours, key=cv2.contourArea)[:, 0, :].astype(float).tolist()))
    return out


def found_and_false(model: "object", coefficients: tuple[float, ...], threshold: float, cases: list[dict]) -> list[tuple[int, int, int]]:
    """Per case ``(lesions found, lesions, false positives)`` at the report ``threshold`` with the
    score calibration ``coefficients``, matched by the rule of the AUL figures
    (``livus.evaluate.detection.match_image``). A case is a model-space ``image``, its fan
    ``valid`` mask and its lesions' ``instances`` mask."""
    cfg = model.cfg
    cfg.score_calibration = coefficients
    images = np.stack([c["image"] for c in cases])
    out: list[tuple[int, int, int]] = []
    k = 0
    for batch in predict(model, images):
        valid = torch.from_numpy(np.stack([c["valid"] for c in cases[k : k + batch["heatmap"].shape[0]]]))
        for d in decode_detections(batch, cfg, valid_mask=valid, score_threshold=threshold):
            truths = outlines(cases[k]["instances"])
            m = match_image([PredLesion(det.center_px, det.bbox_px, det.score) for det in d], truths)
            out.append((int((m.hit >= 0).sum()), len(truths), int((m.hit < 0).sum())))
            k += 1
    return out


def add_fold_benchmark_arguments(ap: argparse.ArgumentParser) -> None:
    """The arguments of the benchmarks that read a CV run's fold models: dataset, run, seed,
    torch threads and the JSON to write."""
    ap.add_argument("--data", required=True, help="the dataset the CV run was trained on")
    ap.add_argument("--cv", required=True, help="the CV run (RUN/fold<k>/detector.pt)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)


def fold_models(args: argparse.Namespace) -> tuple["object", dict[int, "object"], dict[int, "object"]]:
    """The CV run of ``args``, its fold models (eval mode) and their held-out AUL candidates
    (for the cross-fitted calibrations and thresholds); sets the torch threads."""
    torch.set_num_threads(args.threads)
    cv = load_cv_run(Path(args.cv), Path(args.data))
    models = {f: load_detector(cv.fold_model_path(f)).eval() for f in cv.folds}
    return cv, models, {f: held_out_predictions(models[f], *cv.validation(f)) for f in cv.folds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-grade", type=int, default=10, help="simulated livers per group (each lesion goes into one of them)")
    ap.add_argument("--lesions-per-fold", type=int, default=40)
    add_fold_benchmark_arguments(ap)
    args = ap.parse_args()
    t0 = time.perf_counter()

    from livus.simulate.still import GeometryCache

    cv, models, preds = fold_models(args)
    pcfg = cv.cfg.preprocess
    pcfg.input_size_px = cv.cfg.detector.input_size_px
    rng = np.random.default_rng(args.seed)
    geometries = GeometryCache()
    livers: dict[str, list[dict]] = {}
    for i, (group, spec) in enumerate(groups(args.per_grade, args.per_grade)):
        sim, _ = lesion_free_liver(rng, i, spec, geometries)
        livers.setdefault(group, []).append(model_space_liver(sim, pcfg))
    backgrounds = list(livers) + [AUL_NORMAL]

    found: dict[str, list[bool]] = {b: [] for b in backgrounds + ["own AUL image"]}
    false_pos: dict[str, list[int]] = {b: [] for b in backgrounds}
    unplaced = dict.fromkeys(backgrounds, 0)  # lesions that fit in no tried liver of the background
    paste_rng = np.random.default_rng(args.seed + 1)
    for f in cv.folds:
        coefficients, thr = cross_fitted_operating_point(preds, f)
        own = preds[f]
        own_scores = calibrated_scores(own, coefficients)
        kept = own.is_true & (own_scores >= thr)
        found["own AUL image"] += [True] * int(kept.sum()) + [False] * int(own.n_lesions.sum() - kept.sum())
        val, _ = cv.validation(f)
        lesions = [(i, int(v)) for i in range(len(val)) for v in np.unique(val.lesion_masks[i]) if v]
        picks = paste_rng.permutation(len(lesions))[: args.lesions_per_fold]
        normals = [i for i in range(len(val)) if val.classes[i] == "normal" and val.liver_valid[i]]
        cases: dict[str, list[dict]] = {b: [] for b in backgrounds}
        for p in picks:
            src, value = lesions[p]
            for b in backgrounds:
                for _ in range(PASTE_TRIES):  # a large lesion may not fit inside a small liver: another liver
                    if b == AUL_NORMAL:
                        j = normals[int(paste_rng.integers(len(normals)))]
                        dst = {"image": val.images[j], "liver": val.liver_masks[j], "valid": val.valid_masks[j]}
                    else:
                        dst = livers[b][int(paste_rng.integers(len(livers[b])))]
                    res = copy_paste_lesion(val.images[src].astype(np.float32), val.lesion_masks[src], value, dst["image"],
                                            np.zeros_like(dst["liver"]), dst["liver"], dst["valid"], paste_rng)
                    if res is not None:
                        cases[b].append({"image": res.image, "valid": dst["valid"],
                                         "instances": (res.instance_mask == res.value).astype(np.uint8)})
                        break
                else:
                    unplaced[b] += 1
        for b, cs in cases.items():
            if cs:
                for hit, _, fp in found_and_false(models[f], coefficients, thr, cs):
                    found[b].append(bool(hit))
                    false_pos[b].append(fp)
    seconds = time.perf_counter() - t0

    rows = {}
    print(f"cv {args.cv}: folds {cv.folds}, seed {args.seed}, {args.per_grade} simulated livers per group, "
          f"up to {args.lesions_per_fold} held-out AUL lesions per fold, {seconds:.0f} s")
    print(f"{'background':22s} {'pasted':>6s} {'found':>6s} {'sens':>6s} {'95% CI':>11s} {'FP/img':>7s}")
    for b, hits in found.items():
        n, k = len(hits), int(sum(hits))
        ci = share_interval(k, n) if n else (float("nan"), float("nan"))
        fp = float(np.mean(false_pos[b])) if false_pos.get(b) else None
        rows[b] = {"lesions": n, "found": k, "sensitivity": round(k / n, 3) if n else None, "sensitivity_95ci": ci,
                   "false_positives_per_image": None if fp is None else round(fp, 3), "not_placed": unplaced.get(b)}
        fp_txt = "—" if fp is None else f"{fp:.2f}"
        print(f"{b:22s} {n:6d} {k:6d} {k / max(n, 1):6.2f} {ci[0]:.2f}–{ci[1]:.2f} {fp_txt:>7s} {unplaced.get(b, 0):10d}")
    if args.json:
        out = {"benchmark": "diffuse_lesion_sensitivity", "cv": args.cv, "folds": cv.folds, "seed": args.seed,
               "per_grade": args.per_grade, "lesions_per_fold": args.lesions_per_fold, "seconds": round(seconds, 1),
               "by_background": rows}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
        print(f"written {args.json}")


if __name__ == "__main__":
    main()
