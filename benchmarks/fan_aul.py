"""Fan detection accuracy on AUL: IoU of the detected fan vs the annotated outline polygon.

Usage: python benchmarks/fan_aul.py [AUL_DIR] [--limit N] [--worst K]
Prints median IoU, 5th percentile, share of images with IoU >= 0.90 (targets: median >= 0.97,
>= 0.90 on 95% of images).

Also prints the ceiling that the outline drawing style sets: the annotated outlines are
polygons of ~8–12 vertices, so their arcs are chords. Each outline's vertices are snapped onto
the DETECTED fan boundary and the IoU between that polygon and the detected fan is reported: a
detector whose boundary were exactly right would score about that against the outlines even
with perfectly placed vertices.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from livus.preprocess.fan import detect_fan, mask_iou
from livus.shapes import polygon_mask

DEFAULT_AUL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "aul"


def aul_outline_pairs(aul_dir: Path) -> list[tuple[Path, Path]]:
    """(image, outline json) pairs of an AUL folder, sorted."""
    pairs = []
    for outline in sorted(aul_dir.glob("*/segmentation/outline/*.json")):
        image = outline.parents[2] / "image" / (outline.stem + ".jpg")
        if image.is_file():
            pairs.append((image, outline))
    return pairs


def vertex_sampling_iou(mask: np.ndarray, outline: list[list[float]]) -> float:
    """IoU of ``mask`` with the polygon through ``outline``'s vertices snapped to the mask's
    boundary (nearest boundary pixel): what drawing the outline with those vertices costs."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return 0.0
    c = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)
    p = np.asarray(outline, dtype=np.float64)
    snapped = c[((p[:, None, :] - c[None, :, :]) ** 2).sum(-1).argmin(1)]
    return mask_iou(polygon_mask(snapped.tolist(), mask.shape[1], mask.shape[0]), mask)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("aul_dir", nargs="?", default=str(DEFAULT_AUL))
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--worst", type=int, default=10)
    args = ap.parse_args(argv)
    pairs = aul_outline_pairs(Path(args.aul_dir).resolve())
    if args.limit:
        pairs = pairs[:: max(1, len(pairs) // args.limit)][: args.limit]
    if not pairs:
        print(f"no AUL outlines under {args.aul_dir}", file=sys.stderr)
        return 1
    ious, names, times, ceiling = [], [], [], []
    for image, outline in pairs:
        grey = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
        truth = polygon_mask(json.loads(outline.read_text()), grey.shape[1], grey.shape[0])
        t0 = time.perf_counter()
        fan = detect_fan(grey)
        times.append(time.perf_counter() - t0)
        ious.append(mask_iou(fan.mask, truth))
        names.append(f"{image.parents[1].name}/{image.stem}")
        ceiling.append(vertex_sampling_iou(fan.mask, json.loads(outline.read_text())))
    ious_a = np.array(ious)
    print(f"AUL fan IoU over {len(ious_a)} images")
    print(f"  median IoU          {np.median(ious_a):.4f}   (target >= 0.97)")
    print(f"  5th percentile IoU  {np.percentile(ious_a, 5):.4f}")
    print(f"  share IoU >= 0.90   {np.mean(ious_a >= 0.90):.4f}   (target >= 0.95)")
    print(f"  mean IoU            {ious_a.mean():.4f}")
    print(f"  detect_fan ms       median {1000 * np.median(times):.2f}")
    print(f"  outline-style ceiling (detected fan vs itself drawn through the outline's vertices): "
          f"median {np.median(ceiling):.4f}, 5th percentile {np.percentile(ceiling, 5):.4f}")
    order = np.argsort(ious_a)[: args.worst]
    print("  worst: " + ", ".join(f"{names[i]}={ious_a[i]:.3f}" for i in order))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
