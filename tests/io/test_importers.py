"""Dataset importers: AUL (real data fixture), COCO, mask folders, CSV manifests, and info."""

from __future__ import annotations

import numpy as np
import pytest

from livus.io.dataset import load_dataset, polygon_mask
from livus.io.import_aul import import_aul
from livus.io.importers import dataset_info, import_dataset


@pytest.mark.aul
def test_aul_subset_import(aul_dir, tmp_path):
    ds = import_aul(aul_dir, tmp_path / "aul", limit_per_class=3, workers=2)
    assert [r.image_class for r in ds].count("benign") == 3
    assert [r.image_class for r in ds].count("malignant") == 3
    assert [r.image_class for r in ds].count("normal") == 3
    assert len({r.patient_id for r in ds}) == 9
    for rec in ds:
        img = ds.read_image(rec)
        mask = ds.read_mask(rec)
        assert img.dtype == np.uint8 and img.shape == (rec.height, rec.width) == mask.shape
        assert rec.device == f"{rec.width}x{rec.height}"
        assert rec.pixel_spacing_mm is None and rec.fan_polygon is not None
        if rec.image_class == "normal":
            assert rec.lesions == [] and mask.max() == 0
        else:
            (les,) = rec.lesions
            assert les.malignant is (rec.image_class == "malignant") and les.mask_value == 1
            assert les.ellipse is not None and les.ellipse[2] >= les.ellipse[3] > 0
            inside = polygon_mask(les.polygon_px, rec.width, rec.height).astype(bool)
            assert set(np.unique(mask).tolist()) == {0, 1}
            assert (mask[inside] == 1).mean() > 0.99 and (mask[~inside] == 0).all()
    text = dataset_info(load_dataset(tmp_path / "aul"))
    assert "Benign 3, Malignant 3, Normal 3" in text and "lesions: 6" in text


def test_unknown_format_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset format"):
        import_dataset(tmp_path, "xml", tmp_path / "out")
