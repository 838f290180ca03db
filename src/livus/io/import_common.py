"""Building blocks shared by the dataset importers (AUL, COCO, mask folders, CSV manifests).

Every importer reduces a source to :class:`ImportItem` s (a grey image plus lesions given either
as polygons or as an instance mask) and hands them to :func:`write_items`, which writes
``images/<stem>.png``, ``masks/<stem>.png`` (an instance mask for EVERY image, all zero when it
has no lesion) and ``annotations.json``. Grey conversion is :mod:`livus.io.grey` (through
:func:`livus.io.readers.read_frame`); rasterisation is :func:`livus.shapes.polygon_mask`.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

import cv2
import numpy as np

from livus.io.dataset import Dataset, ImageRecord, LesionAnnotation, lesion_instance_mask, load_dataset, save_dataset, write_png
from livus.shapes import ellipse_from_polygon
from livus.vocab import IMAGE_CLASSES

T = TypeVar("T")
R = TypeVar("R")

# Connected components smaller than this (pixels) in a lesion mask are treated as noise.
MIN_INSTANCE_AREA_PX = 10


@dataclass
class ImportItem:
    """One image to import, in the pixels of that image.

    Give lesions as ``polygons`` (outlines) or as ``instance_mask`` (0 background, k = k-th
    lesion), not both.
    """

    stem: str
    grey: np.ndarray
    image_class: str | None = None
    polygons: list[list[list[float]]] = field(default_factory=list)
    instance_mask: np.ndarray | None = None
    pixel_spacing_mm: tuple[float, float] | None = None
    patient_id: str | None = None
    acquired_at: str | None = None
    device: str | None = None
    liver_polygon: list[list[float]] | None = None
    fan_polygon: list[list[float]] | None = None
    diagnoses: list[str | None] | None = None
    malignant: list[bool | None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def device_from_size(width: int, height: int) -> str:
    """Device-group name from the image size (a scanner's export size is a fair proxy)."""
    return f"{width}x{height}"


def normalise_class(name: str | None) -> str | None:
    """``"Benign"``/``"MALIGNANT"``/``"normal "`` → one of ``IMAGE_CLASSES``; anything else → ``None``."""
    if name is None:
        return None
    key = str(name).strip().lower()
    return key if key in IMAGE_CLASSES else None


def malignant_from_class(image_class: str | None) -> bool | None:
    return {"malignant": True, "benign": False}.get(image_class or "")


def instances_from_mask(mask: np.ndarray, min_area_px: int = MIN_INSTANCE_AREA_PX) -> np.ndarray:
    """Instance mask (uint8, 0 background, 1..k) from a lesion mask.

    A mask with several distinct non-zero values below 255 is taken as an instance mask already
    (values renumbered 1..k in increasing order); otherwise it is binarised (> 0) and split into
    8-connected components, numbered top-to-bottom, left-to-right. Components or instances smaller
    than ``min_area_px`` are dropped.
    """
    if mask.ndim == 3:
        mask = mask.max(axis=2)
    values = [int(v) for v in np.unique(mask) if v != 0]
    out = np.zeros(mask.shape, np.uint8)
    if len(values) > 1 and max(values) < 255:
        k = 0
        for v in values:
            sel = mask == v
            if int(sel.sum()) >= min_area_px:
                k += 1
                out[sel] = k
        return out
    n, labels, stats, centroids = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    keep = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_area_px]
    keep.sort(key=lambda i: (stats[i, cv2.CC_STAT_TOP], stats[i, cv2.CC_STAT_LEFT]))
    for k, i in enumerate(keep[:255], start=1):
        out[labels == i] = k
    return out


def polygon_of_instance(instance: np.ndarray) -> list[list[float]]:
    """Outline ``[[x, y], ...]`` (pixel centres) of the largest external contour of a 0/1 mask."""
    contours, _ = cv2.findContours(instance.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return []
    c = max(contours, key=cv2.contourArea).reshape(-1, 2)
    return [[float(x), float(y)] for x, y in c]


def _lesion(polygon: list[list[float]], value: int, malignant: bool | None, diagnosis: str | None) -> LesionAnnotation:
    ellipse = ellipse_from_polygon(polygon) if len(polygon) >= 3 else None
    return LesionAnnotation(polygon_px=polygon, ellipse=ellipse, malignant=malignant, diagnosis=diagnosis, mask_value=value)


def write_item(out: Path, image_id: int, item: ImportItem) -> ImageRecord:
    """Write one item's image and instance mask under ``out`` and return its record."""
    h, w = item.grey.shape
    default_malignant = malignant_from_class(item.image_class)
    rec = ImageRecord(
        id=image_id,
        file_name=f"images/{item.stem}.png",
        width=int(w),
        height=int(h),
        image_class=item.image_class,
        pixel_spacing_mm=item.pixel_spacing_mm,
        patient_id=item.patient_id,
        acquired_at=item.acquired_at,
        device=item.device or device_from_size(w, h),
        liver_polygon=item.liver_polygon,
        fan_polygon=item.fan_polygon,
        mask_file=f"masks/{item.stem}.png",
        extra=dict(item.extra),
    )

    def attr(values: list[Any] | None, k: int, default: Any) -> Any:
        return values[k] if values is not None and k < len(values) else default

    if item.instance_mask is not None:
        if item.instance_mask.shape != item.grey.shape:
            raise ValueError(f"{item.stem}: mask size {item.instance_mask.shape} differs from image size {item.grey.shape}")
        mask = item.instance_mask.astype(np.uint8)
        for k in range(1, int(mask.max()) + 1):
            poly = polygon_of_instance(mask == k)
            if len(poly) >= 3:
                rec.lesions.append(_lesion(poly, k, attr(item.malignant, k - 1, default_malignant), attr(item.diagnoses, k - 1, None)))
            else:  # a 1-2 pixel wide sliver: no usable outline, keep the mask clean
                mask[mask == k] = 0
    else:
        for k, poly in enumerate((p for p in item.polygons if len(p) >= 3), start=1):
            rec.lesions.append(_lesion(poly, k, attr(item.malignant, k - 1, default_malignant), attr(item.diagnoses, k - 1, None)))
        mask = lesion_instance_mask(rec)
    write_png(out / rec.file_name, item.grey)
    write_png(out / rec.mask_file, mask)
    return rec


def parallel_map(fn: Callable[[T], R], items: Iterable[T], workers: int | None = None) -> list[R]:
    """``[fn(x) for x in items]`` on a thread pool (OpenCV decode/encode releases the GIL), in order."""
    items = list(items)
    n = workers if workers is not None else min(4, os.cpu_count() or 1)
    if n <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(fn, items))


def write_items(
    out: Path,
    loaders: list[Callable[[], ImportItem]],
    info: dict[str, Any],
    workers: int | None = None,
) -> Dataset:
    """Run each loader (reading one source image) and write the resulting dataset under ``out``.

    Loaders run in parallel; image ids follow the order of ``loaders``. Returns the dataset as
    loaded back from disk.
    """
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    stems: set[str] = set()
    lock = threading.Lock()

    def run(indexed: tuple[int, Callable[[], ImportItem]]) -> ImageRecord:
        i, load = indexed
        item = load()
        with lock:  # refuse before writing, so one image never overwrites another
            if item.stem in stems:
                raise ValueError(f"two source images map to the same name {item.stem!r}; rename one")
            stems.add(item.stem)
        return write_item(out, i + 1, item)

    records = parallel_map(run, list(enumerate(loaders)), workers)
    save_dataset(out, records, info)
    return load_dataset(out)


def read_mask_file(path: Path) -> np.ndarray:
    """A lesion mask image as stored (grey, colour or 16-bit), raising ``InputError`` when unreadable."""
    from livus.errors import InputError

    if not Path(path).is_file():
        raise InputError(str(path), "mask file not found")
    m = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_UNCHANGED)
    if m is None:
        raise InputError(str(path), "cannot decode mask image")
    return m


def merge_instance_masks(masks: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """One instance mask from several lesion masks (one file per lesion, BUSI-style): the
    instances of each mask, in turn, numbered after those of the previous ones."""
    out = np.zeros(shape, np.uint8)
    for m in masks:
        inst = instances_from_mask(m)
        if inst.shape != shape:
            raise ValueError(f"mask size {inst.shape} differs from image size {shape}")
        base = int(out.max())
        sel = inst > 0
        out[sel] = inst[sel] + base
    return out


def safe_stem(relative: str | Path) -> str:
    """File-system-safe image stem from a relative path: ``"benign/benign (1).png"`` → ``"benign_benign_1"``."""
    import re

    text = Path(relative).with_suffix("").as_posix()
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_.") or "image"


def parse_spacing_mm(value: Any) -> tuple[float, float] | None:
    """``0.2``, ``"0.2"``, ``"0.2;0.25"``, ``"0.2x0.25"``, ``[0.2, 0.25]`` → ``(dx_mm, dy_mm)``; empty → ``None``."""
    import re

    if value is None:
        return None
    if isinstance(value, (int, float)):
        return (float(value), float(value)) if value > 0 else None
    if isinstance(value, (list, tuple)):
        parts = [float(v) for v in value]
    else:
        text = str(value).strip()
        if not text:
            return None
        parts = [float(v) for v in re.split(r"[;x×\s/]+", text) if v]
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) <= 0:
        raise ValueError(f"pixel spacing {value!r}: expected 'd' or 'dx;dy' in mm, both > 0")
    return parts[0], parts[1]
