import numpy as np
import pytest

from livus.io.dataset import ImageRecord, LesionAnnotation, lesion_instance_mask, load_dataset, save_dataset, write_png
from livus.shapes import ellipse_from_polygon


def _circle(cx, cy, r, n=64):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1).tolist()


def test_save_load_roundtrip(tmp_path):
    img = np.zeros((60, 80), np.uint8)
    write_png(tmp_path / "images" / "a.png", img)
    les = LesionAnnotation(polygon_px=_circle(40, 30, 10), malignant=True, diagnosis="hcc",
                           features={"halo": 1, "target_sign": None}, lesion_id=3)
    les.ellipse = ellipse_from_polygon(les.polygon_px)
    rec = ImageRecord(id=1, file_name="images/a.png", width=80, height=60, image_class="malignant",
                      pixel_spacing_mm=(0.3, 0.3), lesions=[les])
    save_dataset(tmp_path, [rec], info={"source": "test"})
    ds = load_dataset(tmp_path)
    assert len(ds) == 1
    r = ds.images[0]
    assert r.pixel_spacing_mm == (0.3, 0.3)
    assert r.lesions[0].features == {"halo": 1, "target_sign": None}
    assert r.lesions[0].polygon_px[0] == pytest.approx(les.polygon_px[0], abs=0.01)
    m = ds.read_mask(r)
    assert m.shape == (60, 80) and m[30, 40] == 1 and m[0, 0] == 0
    assert int((m > 0).sum()) == pytest.approx(np.pi * 100, rel=0.15)
    assert ds.read_image(r).shape == (60, 80)
    np.testing.assert_array_equal(lesion_instance_mask(r), m)


def test_load_rejects_non_dataset(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path)
