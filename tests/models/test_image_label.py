"""Image label: the lesion rule, the fusion with the image head, its file."""

from __future__ import annotations

import numpy as np
import pytest

from livus.models.image_label import ImageLabelFusion, fuse_image_label, fusion_features, lesion_evidence_label


def test_lesion_rule():
    assert lesion_evidence_label([]) == {"normal": 1.0, "benign": 0.0, "malignant": 0.0}
    p = lesion_evidence_label([(0.8, 0.25), (0.4, 0.9)])
    assert p["normal"] == pytest.approx(0.2) and p["malignant"] == pytest.approx(0.36)
    assert sum(p.values()) == pytest.approx(1.0)


def test_fusion_probabilities_and_file(tmp_path):
    w = np.zeros((3, 5))
    w[0, 0] = w[1, 1] = w[2, 2] = 1.0  # = the head alone
    fusion = ImageLabelFusion(w.tolist(), [0.0, 0.0, 0.0], fitted_on="test")
    head = np.array([0.1, 0.2, 0.7])
    p = fuse_image_label(head, [(0.9, 0.9)], fusion)
    assert sum(p.values()) == pytest.approx(1.0)
    assert p["malignant"] == pytest.approx(0.7, abs=1e-6)
    again = ImageLabelFusion.load(fusion.save(tmp_path / "f.json"))
    assert again.weights == fusion.weights and again.fitted_on == "test"
    (tmp_path / "bad.json").write_text('{"weights": []}')
    with pytest.raises(ValueError):
        ImageLabelFusion.load(tmp_path / "bad.json")


def test_without_fusion_head_or_rule():
    assert fuse_image_label(None, [], None)["normal"] == 1.0
    assert fuse_image_label(np.array([0.2, 0.3, 0.5]), [], None)["malignant"] == pytest.approx(0.5)
    assert fusion_features(None, []).shape == (5,)
