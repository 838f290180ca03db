"""Speckle filters on AUL: speckle index drop in homogeneous liver and edge sharpness kept at
lesion borders, plus cost, for each filter offered by ``livus.preprocess.intensity``.

Speckle index = mean over 15×15 windows of std/mean, in liver windows far from the lesion
(homogeneous parenchyma). Edge sharpness = mean gradient magnitude on the lesion outline
(AUL mass polygon) relative to the unfiltered image (1.0 = edges fully kept).
Usage: python benchmarks/speckle_filters.py [AUL_DIR] [--limit 30]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from livus.preprocess.intensity import SPECKLE_FILTERS, speckle_filter
from livus.shapes import polygon_mask

DEFAULT_AUL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "aul"


def speckle_index(img: np.ndarray, region: np.ndarray, win: int = 15) -> float:
    f = img.astype(np.float32)
    mean = cv2.boxFilter(f, -1, (win, win))
    var = cv2.boxFilter(f * f, -1, (win, win)) - mean * mean
    core = cv2.erode(region.astype(np.uint8), np.ones((win, win), np.uint8)) > 0
    ok = core & (mean > 5)
    return float(np.mean(np.sqrt(np.maximum(var[ok], 0)) / mean[ok])) if ok.any() else float("nan")


def edge_strength(img: np.ndarray, outline: np.ndarray) -> float:
    f = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 1.0)
    gx, gy = cv2.Sobel(f, cv2.CV_32F, 1, 0), cv2.Sobel(f, cv2.CV_32F, 0, 1)
    return float(np.hypot(gx, gy)[outline > 0].mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("aul_dir", nargs="?", default=str(DEFAULT_AUL))
    ap.add_argument("--limit", type=int, default=30)
    ap.add_argument("--size", type=int, default=256, help="filters run at the model size (letterboxed side)")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    masses = sorted(Path(args.aul_dir).resolve().glob("*/segmentation/mass/*.json"))
    masses = masses[:: max(1, len(masses) // args.limit)][: args.limit]
    rows = {f: {"si": [], "edge": [], "ms": []} for f in SPECKLE_FILTERS}
    for mpath in masses:
        cls = mpath.parents[2]
        lpath = cls / "segmentation" / "liver" / mpath.name
        img = cv2.imread(str(cls / "image" / (mpath.stem + ".jpg")), cv2.IMREAD_GRAYSCALE)
        if img is None or not lpath.is_file():
            continue
        h, w = img.shape
        k = args.size / max(h, w)
        size = (round(w * k), round(h * k))
        small = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        mass_poly = (np.asarray(json.loads(mpath.read_text())) + 0.5) * k - 0.5
        liver_poly = (np.asarray(json.loads(lpath.read_text())) + 0.5) * k - 0.5
        mass = polygon_mask(mass_poly.tolist(), *size)
        liver = polygon_mask(liver_poly.tolist(), *size)
        far = liver & (cv2.dilate(mass, np.ones((15, 15), np.uint8)) == 0)
        outline = np.zeros_like(mass)
        cv2.polylines(outline, [np.round(mass_poly).astype(np.int32)], True, 1, 1)
        si0, e0 = speckle_index(small, far), edge_strength(small, outline)
        if not np.isfinite(si0) or e0 <= 0:
            continue
        for f in SPECKLE_FILTERS:
            t0 = time.perf_counter()
            out = speckle_filter(small, f)
            rows[f]["ms"].append(1000 * (time.perf_counter() - t0))
            rows[f]["si"].append(speckle_index(out, far) / si0)
            rows[f]["edge"].append(edge_strength(out, outline) / e0)
    n = len(rows["none"]["si"])
    print(f"speckle filters on {n} AUL images at {args.size}px (medians; relative to no filter)")
    print(f"{'filter':10s} {'speckle index':>14s} {'SI drop':>8s} {'edge kept':>10s} {'ms':>7s}")
    for f, r in rows.items():
        si = float(np.nanmedian(r["si"]))
        print(f"{f:10s} {si:14.3f} {1 - si:8.1%} {np.median(r['edge']):10.3f} {np.median(r['ms']):7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
