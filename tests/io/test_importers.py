"""Dataset importers: AUL (real data fixture), COCO, mask folders, CSV manifests, and info."""

from __future__ import annotations

import numpy as np
import pytest

from livus.io.dataset import load_dataset
from livus.io.import_aul import import_aul
from livus.io.importers import dataset_info, import_dataset
from livus.shapes import polygon_mask


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


# ----------------------------------------------------------------------------------- generated data

import json  # noqa: E402

import cv2  # noqa: E402

from livus.io.import_common import instances_from_mask, parse_spacing_mm  # noqa: E402


def _image(h: int = 64, w: int = 96, value: int = 90) -> np.ndarray:
    rng = np.random.default_rng(value)
    return rng.integers(value - 20, value + 20, (h, w)).astype(np.uint8)


def _disc_mask(h: int, w: int, discs: list[tuple[int, int, int]], value: int = 255) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    for cx, cy, r in discs:
        cv2.circle(m, (cx, cy), r, value, -1)
    return m


def _square(x, y, s):
    return [[x, y], [x + s, y], [x + s, y + s], [x, y + s]]


def test_coco_import(tmp_path):
    src = tmp_path / "coco"
    (src / "images" / "sub").mkdir(parents=True)
    cv2.imwrite(str(src / "images" / "a.png"), _image())
    rgb = cv2.merge([_image(value=60)] * 3)
    cv2.imwrite(str(src / "images" / "sub" / "b.jpg"), rgb)
    cv2.imwrite(str(src / "images" / "c.png"), _image(value=120))
    doc = {
        "images": [
            {"id": 7, "file_name": "a.png", "width": 96, "height": 64, "pixel_spacing_mm": [0.2, 0.3], "patient_id": "p1"},
            {"id": 8, "file_name": "sub/b.jpg", "width": 96, "height": 64},
            {"id": 9, "file_name": "c.png", "width": 96, "height": 64, "image_class": "Normal"},
        ],
        "annotations": [
            # two-part polygon: the larger part (20 px square) is kept
            {"id": 1, "image_id": 7, "category_id": 2,
             "segmentation": [sum(_square(5, 5, 4), []), sum(_square(30, 20, 20), [])], "bbox": [5, 5, 45, 35]},
            {"id": 2, "image_id": 7, "category_id": 1, "segmentation": [sum(_square(60, 30, 10), [])]},
            {"id": 3, "image_id": 8, "category_id": 1, "bbox": [10, 10, 30, 20]},
        ],
        "categories": [{"id": 1, "name": "benign"}, {"id": 2, "name": "malignant"}],
    }
    (src / "annotations.json").write_text(json.dumps(doc))
    ds = import_dataset(src, "coco", tmp_path / "out")
    a, b, c = ds.images
    assert (a.image_class, b.image_class, c.image_class) == ("malignant", "benign", "normal")
    assert a.pixel_spacing_mm == (0.2, 0.3) and a.patient_id == "p1"
    assert [les.malignant for les in a.lesions] == [True, False]
    assert a.lesions[0].bbox_xyxy == [30, 20, 50, 40]
    assert b.extra["import_notes"] == ["bbox only"] and b.lesions[0].bbox_xyxy == [10, 10, 40, 30]
    mask = ds.read_mask(a)
    assert set(np.unique(mask).tolist()) == {0, 1, 2}
    assert mask[30, 40] == 1 and mask[35, 65] == 2 and mask[6, 6] == 0
    assert ds.read_image(b).shape == (64, 96) and c.lesions == [] and ds.read_mask(c).max() == 0
    # a livus dataset is itself COCO-style: re-importing it keeps the labels
    again = import_dataset(tmp_path / "out", "coco", tmp_path / "again")
    assert [len(r.lesions) for r in again] == [2, 1, 0]
    assert [r.image_class for r in again] == ["malignant", "benign", "normal"]
    assert again.images[0].pixel_spacing_mm == (0.2, 0.3)


def test_mask_folder_import_busi_style(tmp_path):
    src = tmp_path / "busi"
    for cls in ("benign", "malignant", "normal"):
        (src / cls).mkdir(parents=True)
    cv2.imwrite(str(src / "benign" / "benign (1).png"), _image())
    cv2.imwrite(str(src / "benign" / "benign (1)_mask.png"), _disc_mask(64, 96, [(20, 20, 8), (70, 40, 10)]))
    cv2.imwrite(str(src / "malignant" / "malignant (1).png"), _image())
    cv2.imwrite(str(src / "malignant" / "malignant (1)_mask.png"), _disc_mask(64, 96, [(30, 30, 12)]))
    cv2.imwrite(str(src / "malignant" / "malignant (1)_mask_1.png"), _disc_mask(64, 96, [(75, 20, 6)]))
    cv2.imwrite(str(src / "normal" / "normal (1).png"), _image())
    cv2.imwrite(str(src / "normal" / "normal (1)_mask.png"), np.zeros((64, 96), np.uint8))
    ds = import_dataset(src, "masks", tmp_path / "out")
    recs = {r.image_class: r for r in ds}
    assert set(recs) == {"benign", "malignant", "normal"}
    assert len(recs["benign"].lesions) == 2 and len(recs["malignant"].lesions) == 2
    assert recs["normal"].lesions == []
    assert all(les.malignant is True for les in recs["malignant"].lesions)
    assert all(les.malignant is False for les in recs["benign"].lesions)
    m = ds.read_mask(recs["malignant"])
    assert m[30, 30] == 1 and m[20, 75] == 2  # mask file order → instance order
    les = recs["malignant"].lesions[0]
    assert les.ellipse[2] == pytest.approx(24, abs=2)  # disc of radius 12
    assert recs["benign"].file_name == "images/benign_benign_1.png"


def test_csv_manifest_import(tmp_path):
    src = tmp_path / "manifest"
    (src / "img").mkdir(parents=True)
    cv2.imwrite(str(src / "img" / "x.png"), _image())
    cv2.imwrite(str(src / "img" / "x_lesions.png"), _disc_mask(64, 96, [(20, 20, 8)], 1) + _disc_mask(64, 96, [(70, 40, 9)], 2))
    cv2.imwrite(str(src / "img" / "y.png"), _image())
    (src / "list.csv").write_text(
        "image,mask,class,pixel_spacing_mm,patient_id,acquired_at,device\n"
        "img/x.png,img/x_lesions.png,Malignant,0.25;0.3,P9,2024-05-01,ScannerA\n"
        "img/y.png,,normal,0.2,P10,,\n"
    )
    ds = import_dataset(src, "csv", tmp_path / "out")
    x, y = ds.images
    assert x.image_class == "malignant" and len(x.lesions) == 2
    assert x.pixel_spacing_mm == (0.25, 0.3) and x.patient_id == "P9" and x.acquired_at == "2024-05-01"
    assert x.device == "ScannerA" and y.device == "96x64"
    assert y.lesions == [] and y.pixel_spacing_mm == (0.2, 0.2)
    m = ds.read_mask(x)
    assert m[20, 20] == 1 and m[40, 70] == 2
    text = dataset_info(ds)
    assert "Malignant 1, Normal 1" in text and "pixel spacing known: 2/2" in text and "(mm)" in text


def test_csv_manifest_errors(tmp_path):
    (tmp_path / "bad.csv").write_text("image,class\na.png,benign\n")
    with pytest.raises(ValueError, match="missing column"):
        import_dataset(tmp_path / "bad.csv", "csv", tmp_path / "out")
    cv2.imwrite(str(tmp_path / "a.png"), _image())
    (tmp_path / "cls.csv").write_text("image,mask,class\na.png,,cyst\n")
    with pytest.raises(ValueError, match="line 2"):
        import_dataset(tmp_path / "cls.csv", "csv", tmp_path / "out2")


def test_instances_from_mask_and_spacing_parsing():
    binary = _disc_mask(40, 60, [(10, 30, 5), (45, 8, 4)])
    binary[0, 0] = 255  # a one-pixel speck is noise
    inst = instances_from_mask(binary)
    assert inst.max() == 2 and inst[8, 45] == 1 and inst[30, 10] == 2 and inst[0, 0] == 0
    labelled = np.zeros((10, 10), np.uint8)
    labelled[:4, :4], labelled[6:, 6:] = 3, 7
    assert sorted(np.unique(instances_from_mask(labelled)).tolist()) == [0, 1, 2]
    assert parse_spacing_mm("0.2x0.3") == (0.2, 0.3) and parse_spacing_mm("") is None
    with pytest.raises(ValueError):
        parse_spacing_mm("0;1")


def test_name_collision_is_refused(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    cv2.imwrite(str(src / "a b.png"), _image())
    cv2.imwrite(str(src / "a_b.png"), _image())
    with pytest.raises(ValueError, match="same name"):
        import_dataset(src, "masks", tmp_path / "out")
