"""Weak supervision: image-label classifier, CAM on a planted blob, pseudo-boxes, pseudo lesions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from livus.io.dataset import Dataset, ImageRecord, LesionAnnotation
from livus.preprocess.geometry import letterbox_for
from livus.train.weak import (
    ImageClassifier, WeakConfig, box_iou, box_to_original, check_cam, class_activation_maps, pseudo_box,
    pseudo_lesion_dataset, train_image_classifier,
)

S = 64


def _blob_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise images; class 1 carries one bright disc (radius 6) at a random place. Returns
    images, labels and disc centres ``(x, y)`` (model pixels)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:S, 0:S]
    images = rng.uniform(0.1, 0.4, (n, S, S)).astype(np.float32)
    labels = np.arange(n) % 2
    centres = rng.uniform(12, S - 12, (n, 2))
    for i in np.flatnonzero(labels == 1):
        cx, cy = centres[i]
        images[i][(xx - cx) ** 2 + (yy - cy) ** 2 <= 36] = 0.95
    return images, labels, centres


def test_cam_peaks_on_a_planted_blob():
    torch.set_num_threads(1)
    images, labels, _ = _blob_images(64, 0)
    valid = np.ones((len(images), S, S), np.uint8)
    wcfg = WeakConfig(widths=(8, 16, 32), epochs=12, lr=1e-2, augment=False, seed=0)
    model = train_image_classifier(images, labels, valid, wcfg)
    test, test_labels, centres = _blob_images(16, 1)
    pos = np.flatnonzero(test_labels == 1)
    cams = class_activation_maps(model, test[pos], np.ones(len(pos), np.int64), np.ones((len(pos), S, S), np.uint8))
    assert cams.shape == (len(pos), S, S) and cams.max() <= 1.0 and cams.min() >= 0.0
    hits = 0
    for cam, (cx, cy) in zip(cams, centres[pos]):
        box, (px, py) = pseudo_box(cam, 0.5)
        hits += (px - cx) ** 2 + (py - cy) ** 2 <= 8 ** 2 and box[0] <= cx <= box[2] and box[1] <= cy <= box[3]
    assert hits >= 0.75 * len(pos), hits


def test_cam_is_exact_decomposition_of_the_logit():
    torch.manual_seed(0)
    model = ImageClassifier((8, 16)).eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        f = model.features(x)
        cam_sum = torch.einsum("c,nchw->n", model.head.weight[1], f) / (f.shape[2] * f.shape[3]) + model.head.bias[1]
        assert torch.allclose(cam_sum, model(x)[:, 1], atol=1e-5)


def test_pseudo_box_contains_the_blob_and_stops_at_its_edge():
    yy, xx = np.mgrid[0:S, 0:S]
    cam = np.exp(-((xx - 40) ** 2 + (yy - 20) ** 2) / (2 * 4.0**2)).astype(np.float32)
    cam += 0.6 * np.exp(-((xx - 10) ** 2 + (yy - 50) ** 2) / (2 * 3.0**2))  # weaker, separate blob
    box, peak = pseudo_box(cam, 0.5)
    assert peak == (40, 20)
    assert box[0] < 40 < box[2] and box[1] < 20 < box[3]
    assert box[2] - box[0] < 16 and box[3] - box[1] < 16  # the second blob is not joined
    assert box[0] > 25 and box[3] < 35


def test_box_to_original_and_check_cam():
    lb = letterbox_for((100.0, 50.0, 420.0, 370.0), S)  # original fan box → 64 model pixels
    box_o = [200.0, 150.0, 260.0, 230.0]
    box_m = lb.boxes_to_model(np.array(box_o))[0]
    assert np.allclose(box_to_original(list(box_m), lb), box_o, atol=1e-6)
    mask = np.zeros((480, 640), np.uint8)
    mask[150:231, 200:261] = 1
    yy, xx = np.mgrid[0:S, 0:S]
    cx, cy = (box_m[0] + box_m[2]) / 2, (box_m[1] + box_m[3]) / 2
    sx, sy = (box_m[2] - box_m[0]) / 2.355, (box_m[3] - box_m[1]) / 2.355  # half maximum at the box edge
    cam = np.exp(-((xx - cx) ** 2 / (2 * sx**2) + (yy - cy) ** 2 / (2 * sy**2))).astype(np.float32)
    chk = check_cam(cam, lb, mask, box_o, 0.5)
    assert chk.peak_inside and chk.iou > 0.6, chk
    far = np.roll(cam, 25, axis=1)
    assert not check_cam(far, lb, mask, box_o, 0.5).peak_inside
    assert box_iou([0, 0, 2, 2], [1, 1, 3, 3]) == pytest.approx(1 / 7)


def test_pseudo_lesion_dataset_uses_box_and_image_class():
    recs = [ImageRecord(id=i, file_name=f"{i}.png", width=100, height=80, image_class=c,
                        lesions=[LesionAnnotation([[1, 1], [5, 1], [5, 5]], malignant=c == "malignant")])
            for i, c in enumerate(["benign", "malignant", "normal"])]
    ds = Dataset(Path("."), recs)
    view = pseudo_lesion_dataset(ds, [1, 0], [[10.0, 20.0, 50.0, 40.0], [30.0, 30.0, 40.0, 60.0]])
    assert [r.id for r in view.images] == [1, 0]
    assert view.images[0].lesions[0].malignant is True and view.images[1].lesions[0].malignant is False
    assert np.allclose(view.images[0].lesions[0].bbox_xyxy, [10, 20, 50, 40], atol=0.5)
    assert ds.images[0].lesions[0].bbox_xyxy == [1, 1, 5, 5]  # the source dataset is untouched
