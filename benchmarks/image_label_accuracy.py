"""Three-way image accuracy (normal / benign / malignant) of detector + classifier on AUL.

Each image is analysed by ``FrameAnalyzer`` (detector), its lesions classified with
``classify_lesions`` and the image label taken as the arg-max of ``image_label``.

Fold-matched (honest) mode: ``--detector-run RUN --classifier-run RUN`` with the fold models of
both CV runs (same fold rule, ``livus.train.splits.stratified_kfold`` over image classes, same
seed); each image is scored only by the fold models that did not train on it.
Final-model mode: ``--model-dir models`` scores every image with the shipped models, which
were trained on these images (in-sample, optimistic: say so when quoting it).

Usage: .venv/bin/python benchmarks/image_label_accuracy.py --data /tmp/aul_ds
           (--detector-run runs/cv256 --classifier-run runs/classifier | --model-dir models)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from livus.config import LivusConfig
from livus.infer.frame import FrameAnalyzer
from livus.io.dataset import load_dataset
from livus.models.classifier import classify_lesions, image_label, load_classifier
from livus.train.datasets import frame_for_record
from livus.train.splits import stratified_kfold
from livus.vocab import IMAGE_CLASSES


def score_images(ds, indices, detector_dir: Path, classifier_path: Path, records: list | None = None) -> list[tuple[str, str]]:
    analyzer = FrameAnalyzer(LivusConfig(), detector_dir)
    if analyzer.detector is None:
        raise FileNotFoundError(f"no detector.pt in {detector_dir}")
    clf = load_classifier(classifier_path)
    pairs = []
    for i in indices:
        rec = ds.images[i]
        frame = frame_for_record(ds, rec)
        lesions = analyzer.analyze(frame).result.lesions
        scores = classify_lesions(clf, frame.pixels, lesions, None)
        probs = image_label([(les.score, s["malignancy"]) for les, s in zip(lesions, scores)])
        pairs.append(((rec.image_class or "").lower(), max(probs, key=probs.get)))
        if records is not None:
            records.append({"image": rec.file_name, "truth": pairs[-1][0], "predicted": pairs[-1][1],
                            "lesions": [[les.score, s["malignancy"]] for les, s in zip(lesions, scores)],
                            "threshold": float(clf.threshold)})
    return pairs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--detector-run", default=None)
    ap.add_argument("--classifier-run", default=None)
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-images", type=int, default=0, help="per fold (0 = all)")
    ap.add_argument("--save-json", default=None, help="write per-image (score, malignancy) pairs here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ds = load_dataset(args.data)
    pairs: list[tuple[str, str]] = []
    records: list[dict] = []
    if args.model_dir:
        idx = list(range(len(ds)))[: args.max_images or None]
        pairs = score_images(ds, idx, Path(args.model_dir), Path(args.model_dir) / "classifier.pt", records)
        mode = "final models, IN-SAMPLE (trained on these images)"
    else:
        labels = [r.image_class or "unknown" for r in ds.images]
        for f, (_, val) in enumerate(stratified_kfold(labels, args.folds, args.seed)):
            det_dir = Path(args.detector_run) / f"fold{f}"
            if not (det_dir / "detector.pt").is_file():
                print(f"fold {f}: no detector model, skipped")
                continue
            idx = list(val)[: args.max_images or None]
            pairs += score_images(ds, idx, det_dir, Path(args.classifier_run) / f"fold{f}.pt", records)
        mode = "fold-matched held-out images"
    if args.save_json:
        Path(args.save_json).write_text(json.dumps(records, indent=0), encoding="utf-8")
    truth = np.array([t for t, _ in pairs])
    pred = np.array([p for _, p in pairs])
    print(f"{mode}: {len(pairs)} images, three-way accuracy {np.mean(truth == pred):.3f} (target 0.90)")
    print("confusion (rows truth, columns predicted):", " ".join(IMAGE_CLASSES))
    for t in IMAGE_CLASSES:
        print(f"  {t:>9}: " + " ".join(f"{int(np.sum((truth == t) & (pred == p))):5d}" for p in IMAGE_CLASSES))


if __name__ == "__main__":
    main()
