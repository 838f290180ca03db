"""Make a models folder from one fold model of a CV run, so that the simulated-liver benchmarks
(``diffuse_false_positives.py --models``) can measure a probe that trained one fold only
(``train.folds_to_run: [0]``).

The fold model gets the operating point that ``paired_cv_comparison.py`` gives it (cross-fitted on
the other folds where the run has them, else fitted on the fold's own held-out candidates,
in-sample); the CEUS model, classifier and image-label fusion are copied from ``--base-models``.

Usage: python benchmarks/ship_probe_fold.py --data DS --cv runs/f0/r3off --out runs/models_f0_r3off
           [--fold 0] [--base-models models]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired_cv_comparison import operating_point  # noqa: E402  (sibling benchmark script)

from livus.models.detector import load_detector  # noqa: E402
from livus.train.calibration import held_out_predictions  # noqa: E402
from livus.train.detector import load_cv_run, ship_model  # noqa: E402

OTHER_MODEL_FILES = ("ceus.pt", "classifier.pt", "classifier.onnx", "image_label.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--cv", required=True, help="CV run folder (every fold or a subset)")
    ap.add_argument("--out", required=True, help="models folder to write")
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--base-models", default="models", help="where the other model files come from")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cv = load_cv_run(Path(args.cv), Path(args.data))
    if args.fold not in cv.folds:
        raise SystemExit(f"{args.cv}: no fold{args.fold}/detector.pt")
    preds = {f: held_out_predictions(load_detector(cv.fold_model_path(f)), *cv.validation(f)) for f in cv.folds}
    coef, thr = operating_point(preds, args.fold)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in OTHER_MODEL_FILES:
        shutil.copy(Path(args.base_models) / name, out / name)
    fitted = "cross-fitted" if len(preds) > 1 else "in-sample"
    ship_model(cv.fold_model_path(args.fold), out / "detector.pt", thr,
               {"version": f"probe-{Path(args.cv).name}-fold{args.fold}", "operating_point": fitted}, tuple(coef))
    print(f"{out / 'detector.pt'}: fold {args.fold} of {args.cv}, report threshold {thr:.3f} ({fitted})")


if __name__ == "__main__":
    main()
