"""The analysis pipeline's image label: image head + lesion evidence through models/image_label.json."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from livus.config import ClassifierConfig, DetectorConfig
from livus.infer.frame import IMAGE_FUSION_FILE, FrameAnalyzer
from livus.models.classifier import LesionClassifier, save_classifier
from livus.models.detector import LesionDetector, save_detector
from livus.models.image_label import ImageLabelFusion
from livus.types import Frame


def _model_dir(tmp_path, fusion: ImageLabelFusion | None):
    torch.manual_seed(0)
    cfg = DetectorConfig(encoder="resnet_lite", widths=(8, 16, 16, 32), fpn_channels=16, input_size_px=64,
                         score_threshold=0.0, candidate_threshold=0.0, decode_mode="heatmap")
    save_detector(LesionDetector(cfg), tmp_path / "detector.pt", {"version": "t"})
    save_classifier(LesionClassifier(ClassifierConfig(encoder="resnet_lite", widths=(8, 16), crop_size_px=32)),
                    tmp_path / "classifier.pt", {"version": "c"})
    if fusion is not None:
        fusion.save(tmp_path / IMAGE_FUSION_FILE)
    return tmp_path


def _frame():
    """The bundled simulated still of a normal liver (passes the quality gate)."""
    path = Path(__file__).resolve().parents[2] / "examples" / "normal_liver.png"
    return Frame(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), source=path.name)


def test_fusion_file_decides_the_image_label(tmp_path):
    always_normal = ImageLabelFusion(np.zeros((3, 5)).tolist(), [10.0, 0.0, 0.0], fitted_on="test")
    an = FrameAnalyzer(model_dir=_model_dir(tmp_path, always_normal))
    assert an.image_fusion is not None
    label = an.analyze(_frame()).result.image_label
    assert label is not None and label["normal"] > 0.99


def test_without_fusion_the_head_gives_the_label(tmp_path):
    an = FrameAnalyzer(model_dir=_model_dir(tmp_path, None))
    assert an.image_fusion is None
    label = an.analyze(_frame()).result.image_label
    assert label is not None and sum(label.values()) == pytest.approx(1.0, abs=1e-5)
