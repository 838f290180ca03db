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

# Hand-written parts of the model card; every figure in the card comes from computed tables.
INPUT_SIZE_NOTE = (
    "The forward times above were taken while the 2-core machine ran about ten other jobs (load ~10), "
    "so they are upper bounds, not clean figures; the network's work grows with the square of the side "
    "(2.25× at 384, 4× at 512). 256 was chosen: at 256 the AUL lesions under 60 original px still have "
    "a median long axis of about 19 model px and almost none falls under 8 model px (two heatmap cells), "
    "while 384/512 would have cut the epochs the CPU budget allows by 2.25×/4×. "
    "Small lesions are nevertheless the weakest point (see the size columns above)."
)

SECTIONS = {
    "title": "livus lesion detector/segmenter (B-mode liver ultrasound)",
    "Model": (
        "- one network, `livus.models.detector.LesionDetector`: reduced-width residual backbone (stages "
        "32/64/128/256 channels at strides 4–32, depthwise-separable 3×3 convolutions), FPN top-down to "
        "stride 4 (64 channels) with CBAM on the two deepest levels, heads at stride 4 for the lesion-centre "
        "heatmap (focal loss, Gaussian targets), log long/short axis, orientation as (cos 2θ, sin 2θ) and "
        "sub-pixel offset; a lesion + liver segmentation head at input resolution (Dice + BCE); auxiliary "
        "heads at strides 8/16 during training only (not shipped)\n"
        "- decoding (default `decode_mode=mask`): each connected component of the lesion mask inside the fan "
        "is a lesion, scored by its peak probability, outlined by its contour, with the caliper ellipse of "
        "that outline; `decode_mode=heatmap` gives the CenterNet decoding (3×3 peaks, Gaussian soft-NMS); "
        "liver outline = largest liver-mask component\n"
        "- input: the output of `livus.preprocess.pipeline.preprocess_frame` (fan crop, overlay removal, "
        "letterbox, grey normalisation), the same call in training and inference"
    ),
    "Training data": (
        "AUL — Annotated Ultrasound Liver images: Xu Y. et al., Zenodo record 7272660 (2022), described in "
        "Xu et al., Briefings in Bioinformatics 2023; licence CC BY 4.0. Only the project's development "
        "portion (588 of 735 images: Benign 160, Malignant 348, Normal 80; one annotated mass per abnormal "
        "image, liver and fan outlines) was used; the 20 % held out for independent evaluation was never seen. "
        "No simulated images were used for this model (`train.use_simulated` is off)."
    ),
    "Training": (
        "CPU only (a shared 2-core machine, 1 thread). AdamW, one-cycle learning rate, batch 16; "
        "augmentation: horizontal flip, similarity transform (scale 0.8–1.25, ±12°, ±8 % shift), gain/gamma, "
        "multiplicative noise; lesion copy-paste into the liver (p = 0.3); hard-example mining (30 % of each "
        "epoch drawn in proportion to the images' last loss). CV fold models: 12 epochs, peak lr 2e-3. "
        "Shipped model: all 588 images, 16 epochs, peak lr 6e-3 (a 4-epoch probe on 160 training images "
        "showed a lower training loss with the higher rate). The shipped model therefore "
        "differs from the CV models in rate and length; the CV table describes the CV recipe, and the "
        "section 'Shipped recipe on fold 0' measures the shipped recipe on one held-out fold. "
        "Reproduce: `livus train detector --data AUL_DS --config CFG --out RUN --folds 3` (CV) and "
        "`--folds 0` (all images), then `python benchmarks/detector_cv_report.py`."
    ),
    "Cross-validated figures": (
        "3-fold cross-validation stratified by image class (each AUL image is a different patient). "
        "Pixels are ORIGINAL image pixels. FROC sensitivity (`sens@Xfp`) uses every candidate; a hit is a "
        "detection whose centre lies in the mass outline or whose box has IoU ≥ 0.3 with the mass box; a "
        "second detection on the same mass and every detection on a normal image are false positives. "
        "Sensitivity by size (largest extent < 60, 60–150, > 150 px), mass Dice (union of reported outlines "
        "vs mass; a missed mass scores 0), liver Dice and mean |long-axis error| (px, hits only) are taken "
        "at one report threshold: the mean over folds of each fold's threshold for 0.25 FP/image (chosen "
        "on the validation folds themselves, so these figures are mildly optimistic). The figures come from "
        "re-validating the saved fold models with the shipped decoding (`decode_mode=mask`); the per-epoch "
        "figures in the runs' log.csv were computed with the heatmap decoding during training."
    ),
    "Attention (CBAM) ablation": (
        "Same split (fold 0), same CV recipe and seed, with and without CBAM; each model's figures at its "
        "own 0.25 FP/image threshold on fold 0. One fold and one seed: differences of a few points are within the noise of this set "
        "(about 170 masses per fold)."
    ),
    "Shipped recipe on fold 0": (
        "The shipped model's recipe (peak lr 6e-3, 16 epochs) trained on fold 0's training part and "
        "validated on fold 0, next to the CV recipe's fold-0 model; each at its own 0.25 FP/image threshold "
        "on fold 0 (mildly optimistic). The shipped model's report threshold is the shipped recipe's one."
    ),
    "Input size on fold 0": (
        "The CV recipe (lr 2e-3, 12 epochs) on fold 0 at two input sides, each at its own 0.25 FP/image "
        "threshold on fold 0; one fold, one seed."
    ),
    "Intended use": (
        "Research and engineering of the livus pipeline: locating and outlining focal liver lesions in "
        "B-mode images for a reader who checks every result. Not a medical device; not for diagnosis, "
        "triage or any clinical decision."
    ),
    "Known limits": (
        "- heavily undertrained for lack of compute (minutes of CPU, from scratch, no pre-training): the "
        "targets are missed by a wide margin (see the targets table)\n"
        "- small lesions (< 60 px) are rarely found; large masses better\n"
        "- one device family and one institution's images (AUL); other scanners, presets, colour Doppler "
        "and CEUS are untested\n"
        "- only one mass is annotated per AUL image: a second real lesion would count as a false positive\n"
        "- the crop depends on the fan detection of `livus.preprocess`; a wrong fan crops the lesion away"
    ),
    "Credits": "AUL data: Xu et al., Zenodo 7272660, CC BY 4.0. Model weights are derived from it; keep this credit.",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--cv", type=Path, required=True)
    ap.add_argument("--ablation", type=Path, default=None)
    ap.add_argument("--final", type=Path, default=None)
    ap.add_argument("--ship", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="reuse CV/cv_report.json instead of re-validating")
    ap.add_argument("--dest", type=Path, default=ROOT / "models", help="where detector.pt and MODEL_CARD.md go")
    ap.add_argument("--recipe", type=Path, default=None, help="fold-0 run of the shipped recipe")
    ap.add_argument("--size-run", type=Path, default=None, help="fold-0 run of the CV recipe at another input size")
    ap.add_argument("--input-size-report", type=Path, default=None, help="output of detector_input_size.py")
    args = ap.parse_args()
    torch.set_num_threads(1)

    saved = args.cv / "cv_report.json"
    if args.reuse and saved.is_file():
        cv = json.loads(saved.read_text())
    else:
        cv = cv_report(args.cv, args.data)
        saved.write_text(json.dumps(cv, indent=1))
    print(f"operating threshold (mean of folds at 0.25 FP/image): {cv['operating_threshold']:.3f} {cv['fold_thresholds']}")
    print(format_cv_table(cv))
    print(targets_table(cv["mean"]))

    ablation = None
    saved_ab = args.cv / "ablation.json"
    if args.reuse and saved_ab.is_file():
        ablation = json.loads(saved_ab.read_text())
    elif args.ablation is not None:
        with_cbam = revalidate_run(args.cv, args.data, score_threshold=cv["fold_thresholds"][0])[0].headline()
        plain = revalidate_run(args.ablation, args.data)
        without = [] if not plain else revalidate_run(args.ablation, args.data, score_threshold=plain[0].threshold_at_025fp)
        if without:
            ablation = {"with": with_cbam, "without": without[0].headline()}
            saved_ab.write_text(json.dumps(ablation, indent=1))
            print("CBAM ablation, fold 0:", json.dumps(ablation, indent=1))

    comparisons: dict[str, dict[str, dict[str, float]]] = {}
    threshold = cv["operating_threshold"]
    if args.recipe is not None:
        first = revalidate_run(args.recipe, args.data)
        if first:
            threshold = first[0].threshold_at_025fp
            rec = revalidate_run(args.recipe, args.data, score_threshold=threshold)[0].headline()
            base = revalidate_run(args.cv, args.data, score_threshold=cv["fold_thresholds"][0])[0].headline()
            comparisons["Shipped recipe on fold 0"] = {
                "CV recipe (lr 2e-3, 12 epochs)": base, "shipped recipe (lr 6e-3, 16 epochs)": rec}
            print(f"recipe check at threshold {threshold:.3f}:", json.dumps(comparisons["Shipped recipe on fold 0"], indent=1))
    if args.size_run is not None:
        plain = revalidate_run(args.size_run, args.data)
        if plain:
            other = revalidate_run(args.size_run, args.data, score_threshold=plain[0].threshold_at_025fp)[0].headline()
            base = revalidate_run(args.cv, args.data, score_threshold=cv["fold_thresholds"][0])[0].headline()
            size = load_detector(args.size_run / "fold0" / "detector.pt").cfg.input_size_px
            comparisons["Input size on fold 0"] = {"256 (CV recipe)": base, f"{size} (CV recipe)": other}
            print("input size, fold 0:", json.dumps(comparisons["Input size on fold 0"], indent=1))
    if ablation:
        comparisons["Attention (CBAM) ablation"] = {"fold 0, with CBAM": ablation["with"], "fold 0, without CBAM": ablation["without"]}

    if args.final is not None and args.ship:
        dest = args.dest / "detector.pt"
        meta = {"cv": {"folds": cv["folds"], "mean": cv["mean"], "per_fold": cv["per_fold"],
                       "operating_threshold": cv["operating_threshold"]}, "status": "final", "ablation_fold0": ablation,
                "recipe_fold0": comparisons.get("Shipped recipe on fold 0"), "report_threshold": threshold}
        ship_model(args.final, dest, score_threshold=threshold, extra_meta=meta)
        model = load_detector(dest)
        info = load_checkpoint(dest)["meta"]
        sections = dict(SECTIONS)
        if args.input_size_report is not None and args.input_size_report.is_file():
            sections["Input size"] = (
                "Measured with `benchmarks/detector_input_size.py` (forward time on this shared CPU, 1 thread, "
                "and AUL lesion sizes in model pixels after preprocessing):\n\n```\n"
                + args.input_size_report.read_text().strip() + "\n```\n\n" + INPUT_SIZE_NOTE
            )
            if "Input size on fold 0" not in comparisons:
                sections["Input size"] += (" A trained larger-input model was not compared (no CPU time left), so the "
                                           "recall side of this trade-off is geometric, not measured.")
            else:
                sections["Input size"] += " Measured recall at two sides: see 'Input size on fold 0'."
        facts = (f"- file `models/detector.pt`, {dest.stat().st_size / 1e6:.2f} MB, {count_parameters(model) / 1e6:.2f} M parameters, "
                 f"version `{info.get('version')}`\n- input {model.cfg.input_size_px}×{model.cfg.input_size_px} grey, "
                 f"report threshold {model.cfg.score_threshold:.3f}\n- trained {info.get('epochs')} epochs on "
                 f"{info.get('train_images')} images in {info.get('train_seconds_this_session', 0) / 60:.0f} min (CPU)\n")
        sections["Model"] = facts + sections.get("Model", "")
        for k in ("Training data", "Training", "Cross-validated figures"):
            sections.setdefault(k, "")
        write_model_card(args.dest / "MODEL_CARD.md", sections, {"cv": cv, "comparisons": comparisons})
        print("shipped", dest)


if __name__ == "__main__":
    main()
