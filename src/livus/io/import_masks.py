"""Importer for a folder of images with lesion mask files beside them (BUSI-style).

For an image ``X.png`` the masks are ``X_mask.png`` and ``X_mask_1.png``, ``X_mask_2.png``...
(one file per lesion, or one file with several blobs). Each mask's 8-connected components are
lesion instances (:func:`livus.io.import_common.instances_from_mask`). The image class is the
name of the image's parent folder when it is benign/malignant/normal (any case), else unknown;
lesions of a benign/malignant image get that malignancy. Folders are searched recursively;
hidden files are ignored. An image without mask file has no lesion.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from livus.io.dataset import Dataset
from livus.io.import_common import ImportItem, merge_instance_masks, normalise_class, read_mask_file, safe_stem, write_items
from livus.io.readers import IMAGE_EXTENSIONS, natural_key, read_frame

_MASK_SUFFIX = re.compile(r"^(?P<stem>.+)_mask(?:_\d+)?$", re.IGNORECASE)


def find_image_mask_pairs(src: Path) -> list[tuple[Path, list[Path]]]:
    """``(image, [mask files])`` for every image under ``src``, in natural order."""
    src = Path(src)
    files = [
        f for f in src.rglob("*")
        if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in f.relative_to(src).parts)
    ]
    masks: dict[tuple[Path, str], list[Path]] = {}
    images = []
    for f in files:
        m = _MASK_SUFFIX.match(f.stem)
        if m:
            masks.setdefault((f.parent, m.group("stem")), []).append(f)
        else:
            images.append(f)
    return [(img, sorted(masks.get((img.parent, img.stem), []), key=natural_key)) for img in sorted(images, key=natural_key)]


def _load_item(src: Path, image: Path, mask_files: list[Path]) -> ImportItem:
    grey = read_frame(image).pixels
    rel = image.relative_to(src)
    return ImportItem(
        stem=safe_stem(rel),
        grey=grey,
        image_class=normalise_class(image.parent.name),
        instance_mask=merge_instance_masks([read_mask_file(m) for m in mask_files], grey.shape),
        extra={"source_file": rel.as_posix(), "mask_files": [m.relative_to(src).as_posix() for m in mask_files]},
    )


def import_mask_folder(src: Path, out: Path, workers: int | None = None) -> Dataset:
    """Import an image + ``*_mask*.png`` folder into the livus dataset format under ``out``."""
    src = Path(src)
    pairs = find_image_mask_pairs(src)
    if not pairs:
        raise FileNotFoundError(f"{src}: no images found")
    loaders = [functools.partial(_load_item, src, img, masks) for img, masks in pairs]
    return write_items(Path(out), loaders, {"imported_from": str(src), "format": "masks"}, workers=workers)
