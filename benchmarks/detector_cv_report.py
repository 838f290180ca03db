"""Cross-validated detector figures at one operating threshold, the CBAM ablation, and
(optionally) the shipped model + model card.

Reads run folders written by ``livus train detector``: the CV run (``--cv``), the optional
no-CBAM run (``--ablation``, same folds) and the final all-images run (``--final``). Prints the
per-fold/mean table (FROC at any threshold; size sensitivity, Dice and long-axis error at the
mean per-fold threshold for 0.25 FP/image) and the targets. With ``--ship`` it writes
``models/detector.pt`` (final model, that threshold, CV figures in its metadata) and
``models/MODEL_CARD.md``.

Usage: python benchmarks/detector_cv_report.py --data /tmp/aul_ds --cv runs/cv256
       [--ablation runs/cv256_nocbam] [--final runs/final256/all/detector.pt --ship]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from livus.models.detector import count_parameters, load_checkpoint, load_detector
from livus.train.detector import cv_report, format_cv_table, revalidate_run, ship_model, targets_table, write_model_card

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--cv", type=Path, required=True)
    ap.add_argument("--ablation", type=Path, default=None)
    ap.add_argument("--final", type=Path, default=None)
    ap.add_argument("--ship", action="store_true")
    ap.add_argument("--sections", type=Path, default=None, help="JSON of hand-written model-card sections")
    args = ap.parse_args()
    torch.set_num_threads(1)

    cv = cv_report(args.cv, args.data)
    (args.cv / "cv_report.json").write_text(json.dumps(cv, indent=1))
    print(f"operating threshold (mean of folds at 0.25 FP/image): {cv['operating_threshold']:.3f} {cv['fold_thresholds']}")
    print(format_cv_table(cv))
    print(targets_table(cv["mean"]))

    ablation = None
    if args.ablation is not None:
        with_cbam = revalidate_run(args.cv, args.data, score_threshold=cv["operating_threshold"])[0].headline()
        without = revalidate_run(args.ablation, args.data, score_threshold=cv["operating_threshold"])
        if without:
            ablation = {"with": with_cbam, "without": without[0].headline()}
            print("CBAM ablation, fold 0:", json.dumps(ablation, indent=1))

    if args.final is not None and args.ship:
        dest = ROOT / "models" / "detector.pt"
        meta = {"cv": {"folds": cv["folds"], "mean": cv["mean"], "per_fold": cv["per_fold"],
                       "operating_threshold": cv["operating_threshold"]}, "status": "final", "ablation_fold0": ablation}
        ship_model(args.final, dest, score_threshold=cv["operating_threshold"], extra_meta=meta)
        model = load_detector(dest)
        info = load_checkpoint(dest)["meta"]
        sections = json.loads(args.sections.read_text()) if args.sections else {}
        sections.setdefault("title", "livus lesion detector/segmenter")
        facts = (f"- file `models/detector.pt`, {dest.stat().st_size / 1e6:.2f} MB, {count_parameters(model) / 1e6:.2f} M parameters, "
                 f"version `{info.get('version')}`\n- input {model.cfg.input_size_px}×{model.cfg.input_size_px} grey, "
                 f"report threshold {model.cfg.score_threshold:.3f}\n- trained {info.get('epochs')} epochs on "
                 f"{info.get('train_images')} images in {info.get('train_seconds_this_session', 0) / 60:.0f} min (CPU)\n")
        sections["Model"] = facts + sections.get("Model", "")
        for k in ("Training data", "Training", "Cross-validated figures"):
            sections.setdefault(k, "")
        write_model_card(ROOT / "models" / "MODEL_CARD.md", sections, {"cv": cv, "ablation": ablation})
        print("shipped", dest)


if __name__ == "__main__":
    main()
