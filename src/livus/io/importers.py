"""Import external datasets into the livus dataset format, and summarise a dataset.

Formats (``fmt``):

* ``"aul"``   the AUL liver folder layout (:mod:`livus.io.import_aul`)
* ``"coco"``  a COCO JSON with polygon segmentations + an image folder (:mod:`livus.io.import_coco`)
* ``"masks"`` a folder of images with ``*_mask*.png`` lesion masks, BUSI-style
  (:mod:`livus.io.import_masks`)
* ``"csv"``   a manifest ``image,mask,class[,pixel_spacing_mm,patient_id,acquired_at,device]``
  (:mod:`livus.io.import_csv`)

Every importer writes ``OUT/images/*.png`` (8-bit grey), ``OUT/masks/*.png`` (instance mask for
every image, all zero without lesions) and ``OUT/annotations.json``.
"""

from __future__ import annotations

import importlib
from collections import Counter
from pathlib import Path

import numpy as np

from livus.io.dataset import Dataset
from livus.shapes import ellipse_from_polygon

IMPORT_FORMATS = {
    "aul": ("livus.io.import_aul", "import_aul"),
    "coco": ("livus.io.import_coco", "import_coco"),
    "masks": ("livus.io.import_masks", "import_mask_folder"),
    "csv": ("livus.io.import_csv", "import_csv_manifest"),
}
SIZE_QUANTILES = (0.0, 0.10, 0.25, 0.50, 0.75, 0.90, 1.0)


def import_dataset(src: Path, fmt: str, out: Path) -> Dataset:
    """Import ``src`` (in format ``fmt``, see module doc) into a livus dataset folder ``out``."""
    if fmt not in IMPORT_FORMATS:
        raise ValueError(f"unknown dataset format {fmt!r} (one of {', '.join(IMPORT_FORMATS)})")
    module, name = IMPORT_FORMATS[fmt]
    importer = getattr(importlib.import_module(module), name)
    return importer(Path(src), Path(out))


def lesion_extent_px(polygon_px: list[list[float]], ellipse: list[float] | None = None) -> float:
    """Largest extent (long axis) of a lesion outline in pixels."""
    if ellipse is not None:
        return float(ellipse[2])
    return float(ellipse_from_polygon(polygon_px)[2])


def _quantile_line(values: list[float], unit: str) -> str:
    q = np.quantile(np.asarray(values, dtype=float), SIZE_QUANTILES)
    names = ("min", "p10", "p25", "median", "p75", "p90", "max")
    return ", ".join(f"{n} {v:.1f}" for n, v in zip(names, q)) + f" ({unit})"


def dataset_info(ds: Dataset) -> str:
    """Human-readable summary: images per class, lesions, lesion-size quantiles (largest extent,
    in px and, where the pixel size is known, in mm), pixel-spacing availability, devices."""
    n = len(ds)
    by_class = Counter(rec.image_class or "unlabelled" for rec in ds)
    order = sorted(by_class)
    lesions = [les for rec in ds for les in rec.lesions]
    malignancy = Counter({True: "malignant", False: "benign"}.get(les.malignant, "unknown") for les in lesions)
    sizes_px, sizes_mm = [], []
    for rec in ds:
        for les in rec.lesions:
            if len(les.polygon_px) < 3:
                continue
            ext = lesion_extent_px(les.polygon_px, les.ellipse)
            sizes_px.append(ext)
            if rec.pixel_spacing_mm is not None and les.ellipse is not None:
                from livus.types import ellipse_axes_mm

                sizes_mm.append(ellipse_axes_mm(les.ellipse[2], les.ellipse[3], les.ellipse[4], rec.pixel_spacing_mm)[0])
    with_spacing = sum(rec.pixel_spacing_mm is not None for rec in ds)
    patients = {rec.patient_id for rec in ds if rec.patient_id}
    devices = Counter(rec.device or "unknown" for rec in ds)
    lines = [
        f"dataset {ds.root}: {n} images, {len(patients)} patients",
        "images per class: " + ", ".join(f"{c.capitalize()} {by_class[c]}" for c in order),
        f"lesions: {len(lesions)} (" + ", ".join(f"{k} {v}" for k, v in sorted(malignancy.items())) + ")",
        "lesion size, largest extent: " + (_quantile_line(sizes_px, "px") if sizes_px else "no lesions"),
    ]
    if sizes_mm:
        lines.append("lesion size, largest extent: " + _quantile_line(sizes_mm, "mm"))
    pct = 100.0 * with_spacing / n if n else 0.0
    lines.append(f"pixel spacing known: {with_spacing}/{n} images ({pct:.0f}%)")
    lines.append("devices: " + ", ".join(f"{d} {c}" for d, c in devices.most_common()))
    return "\n".join(lines)
