"""What the target of issue 21 would cost: at which report threshold do simulated lesion-free
diseased livers get a reported lesion at ≤ 5 % in every group, and what do AUL's cross-fitted
figures become there?

Inputs: ``--diffuse`` a JSON of ``benchmarks/diffuse_false_positives.py`` (it keeps every liver's
candidate scores on the calibrated scale, also below the report threshold) for the models of
``--cv``'s final detector, and ``--cv`` the CV run of that detector (``RUN/fold<k>/detector.pt``):
its held-out AUL candidates, scored with a calibration fitted on the other folds (as
``benchmarks/pretrained_cv_report.py``). For each threshold ``t`` on the calibrated scale it
prints the share of simulated lesion-free livers with a candidate ≥ t (per group and overall),
the simulated lesions found in diseased livers, and on AUL the lesion sensitivity, false
positives per image and the share of normal images with a candidate ≥ t. Both sides are on the
same calibrated scale, but the simulated livers are scored by the final model's calibration
(fitted on all folds), the AUL images by their fold's cross-fitted one.

Usage: python benchmarks/diffuse_operating_point.py --data DATASET --cv runs/cv_hn
           --diffuse benchmarks/results/diffuse_false_positives_hard_negatives_release.json
           [--json benchmarks/results/diffuse_operating_point.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from livus.models.detector import load_detector
from livus.train.calibration import (calibrated_scores, concat_predictions, fit_score_calibration, held_out_predictions,
                                     other_folds)
from livus.train.detector import load_cv_run

TARGET = 0.05


def aul_candidates(data: Path, run: Path) -> dict[str, np.ndarray]:
    """Cross-fitted calibrated scores of every held-out AUL candidate, with its hit label and
    image, and per image its lesion count and whether it is a normal liver."""
    cv = load_cv_run(run, data)
    preds = {f: held_out_predictions(load_detector(cv.fold_model_path(f)), *cv.validation(f)) for f in cv.folds}
    scores = []
    for f in preds:
        others = other_folds(preds, f)
        scores.append(calibrated_scores(preds[f], fit_score_calibration(others.evidence, others.is_true)))
    pooled = concat_predictions(list(preds.values()))
    return {"score": np.concatenate(scores), "is_true": pooled.is_true, "image": pooled.image_index,
            "n_lesions": pooled.n_lesions, "normal": np.array([c == "normal" for c in pooled.classes])}


def aul_at(aul: dict[str, np.ndarray], t: float) -> dict[str, float]:
    kept = aul["score"] >= t
    flagged = np.zeros(len(aul["n_lesions"]), bool)
    flagged[aul["image"][kept]] = True
    return {"sensitivity": float((kept & aul["is_true"]).sum() / aul["n_lesions"].sum()),
            "fp_per_image": float((kept & ~aul["is_true"]).sum() / len(aul["n_lesions"])),
            "normal_with_lesion": float(flagged[aul["normal"]].mean())}


def simulated_at(rep: dict, t: float) -> dict[str, object]:
    groups: dict[str, list[bool]] = {}
    for row in rep["images"]:
        groups.setdefault(row["group"], []).append(max(row["candidate_scores"], default=0.0) >= t)
    out: dict[str, object] = {"by_group": {g: float(np.mean(v)) for g, v in groups.items()},
                              "all": float(np.mean([x for v in groups.values() for x in v]))}
    detail = (rep.get("with_lesions") or {}).get("livers_detail")
    if detail:
        found = sum(len({lab for s, lab in liver["candidates"] if lab and s >= t}) for liver in detail)
        out["simulated_lesions_found"] = found / max(sum(len(liver["lesions"]) for liver in detail), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--cv", required=True)
    ap.add_argument("--diffuse", required=True)
    ap.add_argument("--json", default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rep = json.loads(Path(args.diffuse).read_text())
    if not all("candidate_scores" in row for row in rep["images"]):
        raise SystemExit(f"{args.diffuse}: no candidate scores (rerun benchmarks/diffuse_false_positives.py)")
    aul = aul_candidates(Path(args.data), Path(args.cv))
    shipped = float(rep["report_threshold"])
    grid = sorted({round(float(t), 3) for t in np.arange(0.2, 0.951, 0.05)} | {round(shipped, 3)})
    rows = [{"threshold": t, "aul": aul_at(aul, t), "simulated": simulated_at(rep, t)} for t in grid]
    ok = [r for r in rows if max(r["simulated"]["by_group"].values()) <= TARGET]
    first = ok[0]["threshold"] if ok else None
    print(f"{'threshold':>9s} {'AUL sens':>8s} {'FP/img':>6s} {'normal':>6s} | {'sim all':>7s} {'worst group':>11s} {'sim lesions':>11s}")
    for r in rows:
        a, s = r["aul"], r["simulated"]
        mark = " <- shipped" if r["threshold"] == round(shipped, 3) else (" <- target met from here" if r["threshold"] == first else "")
        les = s.get("simulated_lesions_found")
        print(f"{r['threshold']:9.3f} {a['sensitivity']:8.3f} {a['fp_per_image']:6.3f} {a['normal_with_lesion']:6.3f} | "
              f"{s['all']:7.3f} {max(s['by_group'].values()):11.3f} {'–' if les is None else f'{les:.3f}':>11s}{mark}")
    if first is None:
        print(f"no threshold up to {grid[-1]} keeps every group at <= {TARGET:.0%}")
    if args.json:
        out = {"benchmark": "diffuse_operating_point", "cv": args.cv, "diffuse": args.diffuse, "target": TARGET,
               "shipped_threshold": shipped, "first_threshold_meeting_target": first, "rows": rows}
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
        print(f"written {args.json}")


if __name__ == "__main__":
    main()
