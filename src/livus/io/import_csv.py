"""Importer for a CSV manifest with columns
``image,mask,class[,pixel_spacing_mm,patient_id,acquired_at,device]``.

Paths are relative to the CSV's folder; ``mask`` may be empty (no lesion). A mask with several
values below 255 is an instance mask, otherwise its connected components are the lesions.
``class`` is benign/malignant/normal (any case) or empty; ``pixel_spacing_mm`` is ``d`` or
``dx;dy`` in mm. ``src`` is the CSV file or a folder holding exactly one ``*.csv``.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

from livus.io.dataset import Dataset
from livus.io.import_common import ImportItem, instances_from_mask, normalise_class, parse_spacing_mm, read_mask_file, safe_stem, write_items
from livus.io.readers import read_frame

REQUIRED_COLUMNS = ("image", "mask", "class")


def find_manifest(src: Path) -> Path:
    src = Path(src)
    if src.is_file():
        return src
    candidates = sorted(src.glob("*.csv"))
    if len(candidates) != 1:
        raise FileNotFoundError(f"{src}: expected one CSV manifest, found {len(candidates)}")
    return candidates[0]


def _load_item(root: Path, row: dict[str, str], line: int) -> ImportItem:
    image_path = root / row["image"].strip()
    grey = read_frame(image_path).pixels
    mask_name = (row.get("mask") or "").strip()
    raw_class = (row.get("class") or "").strip()
    image_class = normalise_class(raw_class)
    if raw_class and image_class is None:
        raise ValueError(f"line {line}: class {raw_class!r} is not benign/malignant/normal")
    try:
        spacing = parse_spacing_mm(row.get("pixel_spacing_mm"))
    except ValueError as exc:
        raise ValueError(f"line {line}: {exc}") from None
    instances = instances_from_mask(read_mask_file(root / mask_name)) if mask_name else None
    return ImportItem(
        stem=safe_stem(row["image"].strip()),
        grey=grey,
        image_class=image_class,
        instance_mask=instances if instances is not None else grey * 0,
        pixel_spacing_mm=spacing,
        patient_id=(row.get("patient_id") or "").strip() or None,
        acquired_at=(row.get("acquired_at") or "").strip() or None,
        device=(row.get("device") or "").strip() or None,
        extra={"source_file": row["image"].strip(), "manifest_line": line},
    )


def import_csv_manifest(src: Path, out: Path, workers: int | None = None) -> Dataset:
    """Import the images listed in a CSV manifest into the livus dataset format under ``out``."""
    manifest = find_manifest(Path(src))
    with open(manifest, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise ValueError(f"{manifest}: missing column(s) {', '.join(missing)} (have {', '.join(columns)})")
        rows = [({k.strip(): (v or "") for k, v in row.items() if k is not None}, i + 2) for i, row in enumerate(reader)]
    rows = [(row, line) for row, line in rows if row.get("image", "").strip()]
    if not rows:
        raise ValueError(f"{manifest}: no image rows")
    loaders = [functools.partial(_load_item, manifest.parent, row, line) for row, line in rows]
    return write_items(Path(out), loaders, {"imported_from": str(manifest), "format": "csv"}, workers=workers)
