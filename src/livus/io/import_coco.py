"""Importer for a COCO-style JSON (``images``, ``annotations`` with polygon ``segmentation`` or
only a ``bbox``, ``categories``) plus its image folder.

``src`` is the JSON file, or a folder holding ``annotations.json`` (else exactly one ``*.json``).
Image ``file_name`` s are looked up relative to the JSON's folder, then under ``images/``.
Lesion malignancy comes from the annotation's ``malignant`` field, else from a category named
``benign``/``malignant``; the image class from the image's ``image_class`` (or ``class``), else
from its lesions (any malignant → malignant, all benign → benign), else unknown. Optional livus
fields (``pixel_spacing_mm``, ``patient_id``, ``acquired_at``, ``device``, ``liver_polygon``,
``fan_polygon``, ``diagnosis``) are kept, so a livus ``annotations.json`` imports unchanged.
A multi-part polygon keeps its largest part; RLE or bbox-only annotations become the bbox
rectangle (noted in the image's ``extra``), because RLE decoding would need pycocotools.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from livus.io.dataset import Dataset
from livus.io.import_common import ImportItem, normalise_class, parse_spacing_mm, safe_stem, write_items
from livus.io.readers import read_frame


def find_coco_json(src: Path) -> Path:
    """The COCO JSON file of ``src`` (the file itself or the one JSON in the folder)."""
    src = Path(src)
    if src.is_file():
        return src
    if (src / "annotations.json").is_file():
        return src / "annotations.json"
    candidates = sorted(src.glob("*.json"))
    if len(candidates) != 1:
        raise FileNotFoundError(f"{src}: expected one COCO JSON file (annotations.json), found {len(candidates)}")
    return candidates[0]


def _resolve_image(root: Path, file_name: str) -> Path:
    for candidate in (root / file_name, root / "images" / file_name, root / "images" / Path(file_name).name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{root}: image {file_name!r} not found (looked beside the JSON and in images/)")


def coco_polygon(ann: dict[str, Any]) -> tuple[list[list[float]], str | None]:
    """Lesion outline ``[[x, y], ...]`` of one COCO annotation and a note when approximated."""
    seg = ann.get("segmentation")
    if isinstance(seg, list) and seg:
        parts = [np.asarray(p, dtype=float).reshape(-1, 2) for p in seg if len(p) >= 6]
        if parts:
            best = max(parts, key=lambda p: abs(cv2.contourArea(p.astype(np.float32))))
            return best.tolist(), None
    bbox = ann.get("bbox")
    if bbox and len(bbox) == 4 and bbox[2] > 0 and bbox[3] > 0:
        x, y, w, h = map(float, bbox)
        note = "rle segmentation replaced by bbox" if isinstance(seg, dict) else "bbox only"
        return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]], note
    return [], "annotation without polygon or bbox skipped"


def _image_class(img: dict[str, Any], malignant: list[bool | None]) -> str | None:
    explicit = normalise_class(img.get("image_class") or img.get("class"))
    if explicit is not None:
        return explicit
    if any(m is True for m in malignant):
        return "malignant"
    if malignant and all(m is False for m in malignant):
        return "benign"
    return None


def _load_item(root: Path, img: dict[str, Any], anns: list[dict[str, Any]], categories: dict[int, str]) -> ImportItem:
    grey = read_frame(_resolve_image(root, img["file_name"])).pixels
    polygons, malignant, diagnoses, notes = [], [], [], []
    for ann in anns:
        poly, note = coco_polygon(ann)
        if note:
            notes.append(note)
        if len(poly) < 3:
            continue
        flag = ann.get("malignant")
        if flag is None:
            flag = {"malignant": True, "benign": False}.get(categories.get(ann.get("category_id"), "").lower())
        polygons.append(poly)
        malignant.append(flag)
        diagnoses.append(ann.get("diagnosis"))
    extra = dict(img.get("extra") or {})
    extra["source_file"] = img["file_name"]
    if notes:
        extra["import_notes"] = sorted(set(notes))
    return ImportItem(
        stem=safe_stem(img["file_name"]),
        grey=grey,
        image_class=_image_class(img, malignant),
        polygons=polygons,
        malignant=malignant,
        diagnoses=diagnoses,
        pixel_spacing_mm=parse_spacing_mm(img.get("pixel_spacing_mm")),
        patient_id=img.get("patient_id"),
        acquired_at=img.get("acquired_at"),
        device=img.get("device"),
        liver_polygon=img.get("liver_polygon"),
        fan_polygon=img.get("fan_polygon"),
        extra=extra,
    )


def import_coco(src: Path, out: Path, workers: int | None = None) -> Dataset:
    """Import a COCO JSON + image folder into the livus dataset format under ``out``."""
    json_path = find_coco_json(Path(src))
    doc = json.loads(json_path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or "images" not in doc:
        raise ValueError(f"{json_path}: not a COCO file (no 'images' list)")
    categories = {int(c["id"]): str(c.get("name", "")) for c in doc.get("categories", [])}
    by_image: dict[Any, list[dict[str, Any]]] = {}
    for ann in doc.get("annotations", []):
        by_image.setdefault(ann["image_id"], []).append(ann)
    root = json_path.parent
    loaders = [functools.partial(_load_item, root, img, by_image.get(img["id"], []), categories) for img in doc["images"]]
    return write_items(Path(out), loaders, {"imported_from": str(json_path), "format": "coco"}, workers=workers)
