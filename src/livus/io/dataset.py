"""The project's dataset format on disk (DESIGN.md §5) and its in-memory form.

Layout of a dataset folder ``DIR``::

    DIR/annotations.json    COCO-style index (schema ``livus.dataset/1``)
    DIR/images/*.png        8-bit grey images
    DIR/masks/*.png         uint8 instance masks: 0 background, k = k-th lesion of that image
    DIR/overlays/*.png      optional uint8 masks of burned-in overlays (simulated data)
    DIR/clips/...           optional clip frames (same index, with ``clip_id``/``frame_index``)

``annotations.json`` keys: ``images`` (id, file_name, width, height, image_class,
pixel_spacing_mm [dx, dy] or null, patient_id, acquired_at, device, liver_polygon, fan_polygon,
mask_file, overlay_file, clip_id, frame_index, time_s, seconds_after_injection, ceus),
``annotations`` (id, image_id, lesion_id, bbox [x, y, w, h], ellipse
[cx, cy, long, short, angle_deg], polygon [[x, y], ...], mask_value, malignant, diagnosis,
features {name: 0/1/null}, ceus {name: value/null}) and ``categories``. All coordinates are
in the image's own pixels; axis lengths are full diameters in pixels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from livus.shapes import polygon_mask

DATASET_SCHEMA = "livus.dataset/1"


@dataclass
class LesionAnnotation:
    """One annotated lesion of one image (pixels of that image)."""

    polygon_px: list[list[float]]
    ellipse: list[float] | None = None  # [cx, cy, long, short, angle_deg]
    malignant: bool | None = None
    diagnosis: str | None = None
    features: dict[str, int | None] = field(default_factory=dict)
    ceus: dict[str, Any] = field(default_factory=dict)
    lesion_id: int | None = None
    mask_value: int | None = None

    @property
    def bbox_xyxy(self) -> list[float]:
        pts = np.asarray(self.polygon_px, dtype=float)
        return [float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())]


@dataclass
class ImageRecord:
    """One image of a dataset with its labels."""

    id: int
    file_name: str
    width: int
    height: int
    image_class: str | None = None  # normal / benign / malignant
    pixel_spacing_mm: tuple[float, float] | None = None
    patient_id: str | None = None
    acquired_at: str | None = None  # ISO date
    device: str | None = None
    liver_polygon: list[list[float]] | None = None
    fan_polygon: list[list[float]] | None = None
    mask_file: str | None = None
    overlay_file: str | None = None
    clip_id: str | None = None
    frame_index: int | None = None
    time_s: float | None = None
    seconds_after_injection: float | None = None
    lesions: list[LesionAnnotation] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dataset:
    """A dataset folder loaded in memory (images are read lazily)."""

    root: Path
    images: list[ImageRecord]
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[ImageRecord]:
        return iter(self.images)

    def image_path(self, rec: ImageRecord) -> Path:
        return self.root / rec.file_name

    def read_image(self, rec: ImageRecord) -> np.ndarray:
        """Grey uint8 image (rows, cols)."""
        img = cv2.imread(str(self.image_path(rec)), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise OSError(f"{self.image_path(rec)}: cannot read image")
        return img

    def read_mask(self, rec: ImageRecord) -> np.ndarray:
        """Instance mask (0 = background, k = lesion with ``mask_value`` k); rasterised from the
        polygons when the dataset has no mask file."""
        if rec.mask_file:
            m = cv2.imread(str(self.root / rec.mask_file), cv2.IMREAD_UNCHANGED)
            if m is None:
                raise OSError(f"{self.root / rec.mask_file}: cannot read mask")
            return m
        return lesion_instance_mask(rec)

    def read_overlay_mask(self, rec: ImageRecord) -> np.ndarray | None:
        if not rec.overlay_file:
            return None
        return cv2.imread(str(self.root / rec.overlay_file), cv2.IMREAD_GRAYSCALE)


def lesion_instance_mask(rec: ImageRecord) -> np.ndarray:
    """Rasterise the lesion polygons of a record into an instance mask (value k = k-th lesion)."""
    mask = np.zeros((rec.height, rec.width), np.uint8)
    for k, les in enumerate(rec.lesions, start=1):
        value = les.mask_value or k
        mask[polygon_mask(les.polygon_px, rec.width, rec.height) > 0] = value
    return mask


def _lesion_to_json(les: LesionAnnotation, ann_id: int, image_id: int) -> dict[str, Any]:
    x0, y0, x1, y1 = les.bbox_xyxy
    pts = np.asarray(les.polygon_px, dtype=float)
    area = float(cv2.contourArea(pts.astype(np.float32))) if len(pts) >= 3 else 0.0
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "lesion_id": les.lesion_id,
        "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
        "area": round(area, 2),
        "ellipse": None if les.ellipse is None else [round(float(v), 3) for v in les.ellipse],
        "segmentation": [[round(float(v), 2) for v in pts.reshape(-1)]],
        "mask_value": les.mask_value,
        "malignant": les.malignant,
        "diagnosis": les.diagnosis,
        "features": les.features,
        "ceus": les.ceus,
    }


def _record_to_json(rec: ImageRecord) -> dict[str, Any]:
    return {
        "id": rec.id,
        "file_name": rec.file_name,
        "width": rec.width,
        "height": rec.height,
        "image_class": rec.image_class,
        "pixel_spacing_mm": None if rec.pixel_spacing_mm is None else list(rec.pixel_spacing_mm),
        "patient_id": rec.patient_id,
        "acquired_at": rec.acquired_at,
        "device": rec.device,
        "liver_polygon": rec.liver_polygon,
        "fan_polygon": rec.fan_polygon,
        "mask_file": rec.mask_file,
        "overlay_file": rec.overlay_file,
        "clip_id": rec.clip_id,
        "frame_index": rec.frame_index,
        "time_s": rec.time_s,
        "seconds_after_injection": rec.seconds_after_injection,
        "extra": rec.extra,
    }


def save_dataset(root: str | Path, images: list[ImageRecord], info: dict[str, Any] | None = None) -> Path:
    """Write ``annotations.json`` for records whose image/mask files are already under ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    anns = []
    for rec in images:
        for les in rec.lesions:
            anns.append(_lesion_to_json(les, len(anns) + 1, rec.id))
    doc = {
        "schema": DATASET_SCHEMA,
        "info": info or {},
        "categories": [{"id": 1, "name": "lesion"}],
        "images": [_record_to_json(r) for r in images],
        "annotations": anns,
    }
    path = root / "annotations.json"
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def load_dataset(root: str | Path) -> Dataset:
    """Read a dataset folder written by ``save_dataset`` (or ``livus data import``)."""
    root = Path(root)
    path = root / "annotations.json"
    if not path.is_file():
        raise FileNotFoundError(f"{root}: not a livus dataset (no annotations.json)")
    doc = json.loads(path.read_text(encoding="utf-8"))
    if doc.get("schema") != DATASET_SCHEMA:
        raise ValueError(f"{path}: schema {doc.get('schema')!r}, expected {DATASET_SCHEMA}")
    by_id: dict[int, ImageRecord] = {}
    records = []
    for d in doc["images"]:
        spacing = d.get("pixel_spacing_mm")
        rec = ImageRecord(
            id=int(d["id"]),
            file_name=d["file_name"],
            width=int(d["width"]),
            height=int(d["height"]),
            image_class=d.get("image_class"),
            pixel_spacing_mm=None if spacing is None else (float(spacing[0]), float(spacing[1])),
            patient_id=d.get("patient_id"),
            acquired_at=d.get("acquired_at"),
            device=d.get("device"),
            liver_polygon=d.get("liver_polygon"),
            fan_polygon=d.get("fan_polygon"),
            mask_file=d.get("mask_file"),
            overlay_file=d.get("overlay_file"),
            clip_id=d.get("clip_id"),
            frame_index=d.get("frame_index"),
            time_s=d.get("time_s"),
            seconds_after_injection=d.get("seconds_after_injection"),
            extra=d.get("extra") or {},
        )
        by_id[rec.id] = rec
        records.append(rec)
    for a in doc["annotations"]:
        seg = a.get("segmentation") or [[]]
        flat = seg[0]
        poly = [[float(flat[i]), float(flat[i + 1])] for i in range(0, len(flat) - 1, 2)]
        by_id[int(a["image_id"])].lesions.append(
            LesionAnnotation(
                polygon_px=poly,
                ellipse=a.get("ellipse"),
                malignant=a.get("malignant"),
                diagnosis=a.get("diagnosis"),
                features=a.get("features") or {},
                ceus=a.get("ceus") or {},
                lesion_id=a.get("lesion_id"),
                mask_value=a.get("mask_value"),
            )
        )
    return Dataset(root=root, images=records, info=doc.get("info", {}))


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as PNG, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), array):
        raise OSError(f"{path}: cannot write PNG")
