"""Importer for the AUL layout (Xu et al., "Annotated Ultrasound Liver images", Zenodo 7272660).

Source layout::

    SRC/{Benign,Malignant,Normal}/image/N.jpg
    SRC/{class}/segmentation/{liver,mass,outline}/N.json   polygons [[x, y], ...] in image pixels

One mass per benign/malignant image, none for normal ones; a few malignant images have no liver
polygon. Each image comes from a different patient, so ``patient_id`` is ``aul-<class>-<N>``.
The pixel size is not known (``pixel_spacing_mm`` None); the device group is the image size.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from livus.io.dataset import Dataset
from livus.io.import_common import ImportItem, normalise_class, write_items
from livus.io.readers import natural_key, read_frame

AUL_CLASS_FOLDERS = ("Benign", "Malignant", "Normal")
AUL_INFO = {
    "source": "AUL - Annotated Ultrasound Liver images",
    "citation": "Xu Y. et al., Annotated Ultrasound Liver images, Zenodo 7272660 (2022); Briefings in Bioinformatics 2023",
    "license": "CC BY 4.0",
}


def _read_polygon(path: Path) -> list[list[float]] | None:
    if not path.is_file():
        return None
    pts = json.loads(path.read_text(encoding="utf-8"))
    poly = [[float(p[0]), float(p[1])] for p in pts]
    return poly if len(poly) >= 3 else None


def aul_image_paths(src: Path) -> list[tuple[str, Path]]:
    """``(class folder, image path)`` of every AUL image, in class then natural order."""
    found = []
    for folder in AUL_CLASS_FOLDERS:
        image_dir = Path(src) / folder / "image"
        if image_dir.is_dir():
            found += [(folder, p) for p in sorted(image_dir.glob("*.jpg"), key=natural_key)]
    return found


def load_aul_item(src: Path, folder: str, image_path: Path) -> ImportItem:
    """Read one AUL image and its polygons (all in that image's pixels)."""
    seg = Path(src) / folder / "segmentation"
    n = image_path.stem
    image_class = normalise_class(folder)
    mass = _read_polygon(seg / "mass" / f"{n}.json")
    return ImportItem(
        stem=f"{image_class}_{n}",
        grey=read_frame(image_path).pixels,
        image_class=image_class,
        polygons=[mass] if mass is not None else [],
        patient_id=f"aul-{image_class}-{n}",
        liver_polygon=_read_polygon(seg / "liver" / f"{n}.json"),
        fan_polygon=_read_polygon(seg / "outline" / f"{n}.json"),
        extra={"source_file": str(image_path.relative_to(src))},
    )


def import_aul(src: Path, out: Path, workers: int | None = None, limit_per_class: int | None = None) -> Dataset:
    """Import an AUL folder into the livus dataset format under ``out``.

    ``limit_per_class`` keeps only the first N images of each class (tests, quick looks).
    """
    src = Path(src)
    items = aul_image_paths(src)
    if not items:
        raise FileNotFoundError(f"{src}: no AUL images found (expected {{Benign,Malignant,Normal}}/image/*.jpg)")
    if limit_per_class is not None:
        items = [it for f in AUL_CLASS_FOLDERS for it in [x for x in items if x[0] == f][:limit_per_class]]
    loaders = [functools.partial(load_aul_item, src, folder, path) for folder, path in items]
    return write_items(Path(out), loaders, dict(AUL_INFO, imported_from=str(src)), workers=workers)
