"""Grad-CAM attention bias on real lesions: share of each explanation's energy outside the fan.

For up to ``--n`` annotated lesions of a livus dataset (ground-truth outlines as the lesions),
computes ``gradcam_lesion`` with the given classifier and ``attention_bias`` against the image's
fan polygon (and overlay mask when the dataset has one); prints the mean shares and the flagged
rate, and writes a few overlay PNGs to ``--out`` when given.

Usage: .venv/bin/python benchmarks/gradcam_bias.py --data /tmp/aul_ds [--model models/classifier.pt] [--n 60] [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from livus.explain.bias import attention_bias
from livus.explain.gradcam import gradcam_lesion
from livus.io.dataset import load_dataset
from livus.models.classifier import load_classifier
from livus.shapes import ellipse_from_polygon, polygon_mask
from livus.types import Lesion


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", default="models/classifier.pt")
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--out", default=None)
    ap.add_argument("--threshold", type=float, default=0.2)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_classifier(args.model)
    ds = load_dataset(args.data)
    recs = [r for r in ds.images if r.lesions and r.fan_polygon]
    step = max(1, len(recs) // args.n)
    out_fan, on_ovl, flagged, inside_lesion = [], [], [], []
    for k, rec in enumerate(recs[::step][: args.n]):
        img = ds.read_image(rec)
        ann = rec.lesions[0]
        cx, cy, long_px, short_px, angle = ellipse_from_polygon(ann.polygon_px)
        lesion = Lesion(1, 1.0, (cx, cy), long_px, short_px, angle, polygon_px=ann.polygon_px)
        heat = gradcam_lesion(model, img, lesion)
        fan = polygon_mask(rec.fan_polygon, rec.width, rec.height)
        r = attention_bias(heat, fan, ds.read_overlay_mask(rec), args.threshold)
        out_fan.append(r.outside_fan)
        on_ovl.append(r.on_overlay)
        flagged.append(r.flagged)
        les_mask = polygon_mask(ann.polygon_px, rec.width, rec.height)
        inside_lesion.append(float((heat * les_mask).sum() / max(heat.sum(), 1e-9)))
        if args.out and k < 8:
            colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
            view = cv2.addWeighted(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR), 0.6, colour, 0.4, 0)
            cv2.polylines(view, [np.round(np.asarray(ann.polygon_px)).astype(np.int32)], True, (255, 255, 255), 1)
            Path(args.out).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(Path(args.out) / f"gradcam_{rec.id}.png"), view)
    n = len(out_fan)
    print(f"{n} lesions: energy outside the fan mean {np.mean(out_fan):.3f} (max {np.max(out_fan):.3f}), "
          f"on overlays mean {np.mean(on_ovl):.3f}; flagged (> {args.threshold}) {int(np.sum(flagged))}/{n}; "
          f"energy inside the lesion outline mean {np.mean(inside_lesion):.3f}")
    q = np.percentile(out_fan, [50, 75, 90, 95, 99])
    print("share outside the fan, percentiles 50/75/90/95/99: " + " / ".join(f"{v:.3f}" for v in q))
    counts, edges = np.histogram(out_fan, bins=[0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0])
    print("share outside the fan, histogram: " + ", ".join(
        f"{a:.2f}-{b:.2f}: {c}" for a, b, c in zip(edges[:-1], edges[1:], counts)))


if __name__ == "__main__":
    main()
