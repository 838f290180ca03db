"""int8 vs fp32 ONNX detectors on the cross-validation folds.

Each fold model of a CV run (``--cv``) is exported to fp32 ONNX and quantised to static int8
(``livus.infer.onnx``; calibration: 64 preprocessed images of that fold's TRAINING part), and
both are scored on the fold's held-out images through ONNX Runtime with the shipped calibration
and report threshold (``--report``). Prints and writes per-fold and mean figures and the
int8 − fp32 difference.

Usage: python benchmarks/int8_cv.py --data DATASET --cv runs/cv_pre --report runs/pretrained_cv.json
           --json benchmarks/results/int8_cv.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from livus.infer.onnx import OnnxDetector, export_detector_onnx, quantize_detector_int8
from livus.train.onnx_build import spread_indices
from livus.models.detector import load_detector
from livus.train.calibration import evaluate_calibrated
from livus.train.detector import load_cv_run

COLUMNS = ("sens@0.25fp", "sens@1fp", "sens_lt60", "mass_dice", "liver_dice", "normal_with_lesion")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--cv", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cv = load_cv_run(Path(args.cv), Path(args.data))
    shipped = json.loads(Path(args.report).read_text())["shipped"]
    coef, thr = tuple(shipped["score_calibration"]), float(shipped["score_threshold"])
    per = {"fp32": [], "int8": []}
    with tempfile.TemporaryDirectory() as tmp:
        for f in cv.folds:
            pt = cv.fold_model_path(f)
            model = load_detector(pt)
            fp32 = export_detector_onnx(model, Path(tmp) / f"f{f}.onnx", source_checkpoint=pt)
            calib = [cv.cache.images[i] for i in spread_indices(np.asarray(cv.splits[f][0]), 64)]
            int8 = quantize_detector_int8(fp32, Path(tmp) / f"f{f}.int8.onnx", calib)
            cache_f, recs = cv.validation(f)
            for name, path in (("fp32", fp32), ("int8", int8)):
                runner = OnnxDetector(path, args.threads)
                runner.cfg = model.cfg
                m, normal_rate, _, _ = evaluate_calibrated(runner, cache_f, recs, coef, thr)
                per[name].append({"fold": f, **m.headline(), "normal_with_lesion": normal_rate})
                print(name, f, {k: round(per[name][-1][k], 3) for k in COLUMNS}, flush=True)
    rows = []
    for name, lst in per.items():
        rows.append({"model": f"{name} (mean of {len(lst)} folds)", **{k: float(np.nanmean([r[k] for r in lst])) for k in COLUMNS}})
    rows.append({"model": "int8 − fp32", **{k: rows[1][k] - rows[0][k] for k in COLUMNS}})
    note = ("Each fold model exported to ONNX fp32 and static int8 (QDQ, per-channel, prediction layers kept fp32; 64 "
            "calibration images from the fold's training part), scored on the fold's held-out images with ONNX Runtime "
            "at the shipped calibration and report threshold.")
    Path(args.json).write_text(json.dumps({"note": note, "columns": COLUMNS, "rows": rows, "per_fold": per}, indent=1, default=float),
                               encoding="utf-8")
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
