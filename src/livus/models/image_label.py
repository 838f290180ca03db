"""The image-level label (normal / benign / malignant): the detector's image head fused with the
lesion evidence.

Two sources say what an image shows: the detector's image-level head (the whole fan) and the
lesions it found with their calibrated detection scores and malignancy. :func:`lesion_evidence_label`
is the rule on the lesions alone; :func:`fuse_image_label` combines both with a multinomial
logistic regression whose weights (:class:`ImageLabelFusion`) are fitted on held-out folds
(``benchmarks/pretrained_cv_report.py``) and shipped as ``models/image_label.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from livus.vocab import IMAGE_CLASSES
FUSION_FEATURES = ("log_head_normal", "log_head_benign", "log_head_malignant", "logit_lesion", "logit_malignant_lesion")


def lesion_evidence_label(lesion_scores: list[tuple[float, float]]) -> dict[str, float]:
    """``{normal, benign, malignant}`` from ``(detection score, malignancy)`` pairs of the
    image's lesions: ``P(lesion) = max score``, ``P(malignant) = max score·malignancy``,
    ``P(normal) = 1 − P(lesion)``, ``P(benign) = P(lesion) − P(malignant)``; no lesion → normal."""
    if not lesion_scores:
        return {"normal": 1.0, "benign": 0.0, "malignant": 0.0}
    s = np.clip(np.asarray([p[0] for p in lesion_scores], float), 0.0, 1.0)
    m = np.clip(np.asarray([p[1] for p in lesion_scores], float), 0.0, 1.0)
    p_lesion = float(s.max())
    p_mal = float((s * m).max())
    return {"normal": 1.0 - p_lesion, "benign": p_lesion - p_mal, "malignant": p_mal}


def fusion_features(head_probs: np.ndarray | None, lesion_scores: list[tuple[float, float]], eps: float = 1e-4) -> np.ndarray:
    """:data:`FUSION_FEATURES` of one image (head probabilities ``(3,)``; uniform without a head)."""
    head = np.full(3, 1 / 3) if head_probs is None else np.asarray(head_probs, float)
    rule = lesion_evidence_label(lesion_scores)
    p_les = np.clip(1.0 - rule["normal"], eps, 1 - eps)
    p_mal = np.clip(rule["malignant"], eps, 1 - eps)
    return np.concatenate([np.log(np.clip(head, eps, 1.0)), [np.log(p_les / (1 - p_les)), np.log(p_mal / (1 - p_mal))]])


@dataclass
class ImageLabelFusion:
    """Multinomial logistic regression: ``softmax(weights @ features + bias)``; ``weights``
    ``(3, 5)`` in :data:`IMAGE_CLASSES` × :data:`FUSION_FEATURES` order."""

    weights: list[list[float]]
    bias: list[float]
    fitted_on: str = ""
    figures: dict[str, float] = field(default_factory=dict)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        z = np.asarray(self.weights, float) @ np.asarray(features, float) + np.asarray(self.bias, float)
        z = np.exp(z - z.max())
        return z / z.sum()

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps({"format": "livus.image_label_fusion/1", **asdict(self)}, indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> ImageLabelFusion:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        if d.pop("format", None) != "livus.image_label_fusion/1":
            raise ValueError(f"{path}: not a livus image-label fusion file")
        return cls(**d)


def fuse_image_label(head_probs: np.ndarray | None, lesion_scores: list[tuple[float, float]],
                     fusion: ImageLabelFusion | None) -> dict[str, float]:
    """Image label from both sources; without fitted fusion weights: the head alone when there
    is one, else the lesion rule."""
    if fusion is not None:
        p = fusion.probabilities(fusion_features(head_probs, lesion_scores))
    elif head_probs is not None:
        p = np.asarray(head_probs, float)
    else:
        return lesion_evidence_label(lesion_scores)
    return {c: float(v) for c, v in zip(IMAGE_CLASSES, p)}
