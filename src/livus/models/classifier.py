"""LesionClassifier: malignancy and B-mode feature probabilities of one lesion crop.

Input: ``(N, 2, S, S)`` crops (grey image in ``[0, 1]`` and the lesion mask, model pixels,
``S = ClassifierConfig.crop_size_px``) made by :mod:`livus.preprocess.crops`. Network: a stem
(stride 2), one residual stage per entry of ``cfg.widths`` (each stride 2, ``blocks_per_stage``
residual blocks), CBAM attention on the two deepest stages, global average pooling and linear
heads: ``malignancy`` (one logit) and ``features`` (one logit per name in
``livus.vocab.FEATURE_NAMES``). With ``cfg.use_size`` the heads also see the lesion's size
(:func:`size_feature` of its box side in original pixels), which the fixed-size crop hides. Heads without labels in a batch are masked in the loss
(see :func:`masked_multitask_loss`), never given guessed targets.

Public API used by the analysis pipeline: :func:`load_classifier`, :func:`save_classifier`,
:func:`classify_lesions`, :func:`image_label`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from livus.config import ClassifierConfig, to_dict
from livus.models.blocks import CBAM, ConvBNAct, ResidualBlock
from livus.models.encoders import EfficientNetLiteEncoder
from livus.types import Lesion
from livus.vocab import FEATURE_NAMES

CHECKPOINT_KIND = "livus.classifier/1"


class LesionClassifier(nn.Module):
    """Encoder (ImageNet-pretrained EfficientNet-Lite, or the small from-scratch residual CNN
    with CBAM) and a malignancy head plus B-mode feature heads. ``pretrained`` loads the
    encoder's ImageNet weights (training; checkpoints bring their own)."""

    def __init__(self, cfg: ClassifierConfig | None = None, pretrained: bool = False) -> None:
        super().__init__()
        self.cfg = cfg or ClassifierConfig()
        self.feature_names: tuple[str, ...] = tuple(FEATURE_NAMES)
        self.encoder: EfficientNetLiteEncoder | None = None
        if self.cfg.encoder != "resnet_lite":
            self.encoder = EfficientNetLiteEncoder(self.cfg.encoder, 2, pretrained=pretrained, frozen_stages=self.cfg.frozen_stages)
            self._heads(self.encoder.channels[-1])
            return
        widths = list(self.cfg.widths)
        self.stem = ConvBNAct(2, max(widths[0] // 2, 8), 3, stride=2)
        stages: list[nn.Module] = []
        c_in = max(widths[0] // 2, 8)
        for i, w in enumerate(widths):
            layers: list[nn.Module] = [ResidualBlock(c_in, w, stride=2)]
            layers += [ResidualBlock(w, w) for _ in range(self.cfg.blocks_per_stage - 1)]
            if self.cfg.use_cbam and i >= len(widths) - 2:
                layers.append(CBAM(w))
            stages.append(nn.Sequential(*layers))
            c_in = w
        self.stages = nn.Sequential(*stages)
        self._heads(c_in)

    def _heads(self, c_in: int) -> None:
        self.dropout = nn.Dropout(self.cfg.dropout)
        n_in = c_in + (1 if self.cfg.use_size else 0)
        self.malignancy_head = nn.Linear(n_in, 1)
        self.feature_head = nn.Linear(n_in, len(self.feature_names))
        # Temperature (calibration) and operating threshold, set after training; kept as buffers
        # so they travel with the state dict.
        self.register_buffer("temperature", torch.tensor(1.0))
        self.register_buffer("threshold", torch.tensor(0.5))

    @property
    def cam_layer(self) -> nn.Module:
        """The layer whose activations Grad-CAM uses (the deepest stage)."""
        return self.encoder.blocks[-1] if self.encoder is not None else self.stages[-1]

    def forward(self, x: torch.Tensor, size: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Logits: ``malignancy`` ``(N,)`` and ``features`` ``(N, len(FEATURE_NAMES))``.

        ``size`` ``(N,)``: :func:`size_feature` of each lesion (required when ``cfg.use_size``).
        """
        f = self.encoder(x)[1][-1] if self.encoder is not None else self.stages(self.stem(x))
        z = self.dropout(f.mean(dim=(2, 3)))
        if self.cfg.use_size:
            if size is None:
                raise ValueError("this classifier needs the lesion size (cfg.use_size)")
            z = torch.cat([z, size.to(z.dtype).reshape(-1, 1)], dim=1)
        return {"malignancy": self.malignancy_head(z)[:, 0], "features": self.feature_head(z)}


def size_feature(side_px: np.ndarray | float) -> np.ndarray:
    """Standardised log lesion size: ``(ln(side_px) − 5) / 0.8`` with ``side_px`` the longer side
    of the lesion's box in ORIGINAL pixels (≈ zero mean, unit spread on AUL)."""
    return ((np.log(np.maximum(np.asarray(side_px, np.float64), 1.0)) - 5.0) / 0.8).astype(np.float32)


def masked_multitask_loss(
    logits: dict[str, torch.Tensor],
    malignant: torch.Tensor,
    features: torch.Tensor,
    feature_weight: float = 0.5,
    pos_weight: float | None = None,
) -> dict[str, torch.Tensor]:
    """Binary cross-entropy per head, averaged only over KNOWN labels.

    ``malignant`` ``(N,)`` and ``features`` ``(N, K)`` hold 0/1 targets and NaN where the label
    is missing; a missing label contributes neither loss nor gradient. Returns the parts and
    their weighted sum under ``"total"``.
    """
    def masked_bce(z: torch.Tensor, y: torch.Tensor, pw: float | None = None) -> torch.Tensor:
        known = ~torch.isnan(y)
        if not bool(known.any()):
            return z.sum() * 0.0
        w = None if pw is None else torch.tensor(pw, dtype=z.dtype)
        return F.binary_cross_entropy_with_logits(z[known], y[known], pos_weight=w)

    mal = masked_bce(logits["malignancy"], malignant, pos_weight)
    feat = masked_bce(logits["features"], features)
    return {"malignancy": mal, "features": feat, "total": mal + feature_weight * feat}


# ----------------------------------------------------------------------------- checkpoints


def save_classifier(model: LesionClassifier, path: str | Path, meta: dict[str, Any] | None = None) -> None:
    """Write weights (float16 to keep the file small), config and ``meta`` to ``path``."""
    state = {k: (v.half() if v.is_floating_point() and v.ndim > 0 else v) for k, v in model.state_dict().items()}
    torch.save(
        {"kind": CHECKPOINT_KIND, "config": to_dict(model.cfg), "feature_names": list(model.feature_names),
         "state_dict": state, "meta": dict(meta or {})},
        Path(path),
    )


def load_classifier(path: str | Path) -> LesionClassifier:
    """Read a checkpoint written by :func:`save_classifier`; the model is in eval mode with
    ``.cfg`` and ``.meta`` attached."""
    from livus.models.checkpoint import load_kind_checkpoint

    return load_kind_checkpoint(path, CHECKPOINT_KIND, "classifier", ClassifierConfig, LesionClassifier,
                                legacy_defaults={"encoder": "resnet_lite"})


# ----------------------------------------------------------------------------- inference


def lesion_box_xyxy(lesion: Lesion) -> list[float]:
    """A detected lesion's box (original pixels): its polygon's box when it has an outline,
    else its ellipse's box."""
    if len(lesion.polygon_px) >= 3:
        pts = np.asarray(lesion.polygon_px, float)
        return [float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())]
    return list(lesion.bbox_px)


def lesion_side_px(lesion: Lesion) -> float:
    """Longer side of :func:`lesion_box_xyxy` (original pixels)."""
    x0, y0, x1, y1 = lesion_box_xyxy(lesion)
    return max(x1 - x0, y1 - y0)


def lesion_crop_matrix(lesion: Lesion, cfg: ClassifierConfig) -> np.ndarray:
    """Crop matrix (crop → original pixels) of a detected lesion (crop rule of
    :mod:`livus.preprocess.crops` on :func:`lesion_box_xyxy`)."""
    from livus.preprocess.crops import crop_box_for_bbox, crop_matrix

    return crop_matrix(crop_box_for_bbox(lesion_box_xyxy(lesion), cfg.margin, cfg.min_side_px), cfg.crop_size_px)


def lesion_crop(model_cfg: ClassifierConfig, image_grey: np.ndarray, lesion: Lesion, lesion_mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """``(crop (2, S, S), matrix)`` for one lesion.

    The mask channel is the lesion's polygon, else the pixels of ``lesion_mask`` (> 0) that lie
    inside the lesion's ellipse box, else its filled ellipse.
    """
    from livus.preprocess.crops import extract_crop, lesion_region_mask

    ellipse = (lesion.center_px[0], lesion.center_px[1], lesion.long_axis_px, lesion.short_axis_px, lesion.angle_deg)
    if len(lesion.polygon_px) >= 3 or lesion_mask is None:
        region = lesion_region_mask(image_grey.shape, lesion.polygon_px, ellipse)
    else:
        region = np.zeros(image_grey.shape[:2], np.uint8)
        x0, y0, x1, y1 = lesion.bbox_px
        h, w = image_grey.shape[:2]
        xa, ya = max(int(math.floor(x0)), 0), max(int(math.floor(y0)), 0)
        xb, yb = min(int(math.ceil(x1)) + 1, w), min(int(math.ceil(y1)) + 1, h)
        region[ya:yb, xa:xb] = lesion_mask[ya:yb, xa:xb] > 0
        if not region.any():
            region = lesion_region_mask(image_grey.shape, None, ellipse)
    m = lesion_crop_matrix(lesion, model_cfg)
    return extract_crop(image_grey, region, m, model_cfg.crop_size_px), m


@torch.no_grad()
def predict_logits(model: LesionClassifier, crops: np.ndarray, size: np.ndarray, batch: int = 128) -> dict[str, np.ndarray]:
    """Logits (no temperature) for ``(N, 2, S, S)`` crops and their :func:`size_feature`;
    averaged with the left–right mirrored crop when ``cfg.tta_flip``. ``model`` may also be a
    drop-in with the same call contract (e.g. ``livus.infer.onnx.OnnxClassifier``); a torch
    module is left in eval mode."""
    if isinstance(model, nn.Module):
        model.eval()
    outs = []
    for i in range(0, len(crops), batch):
        x, z = torch.from_numpy(np.ascontiguousarray(crops[i : i + batch])), torch.from_numpy(np.asarray(size[i : i + batch], np.float32))
        o = model(x, z)
        if model.cfg.tta_flip:
            of = model(torch.flip(x, dims=[3]), z)
            o = {k: (o[k] + of[k]) / 2 for k in o}
        outs.append(o)
    return {k: torch.cat([o[k] for o in outs]).numpy() for k in outs[0]}


@torch.no_grad()
def classify_lesions(
    model: LesionClassifier, image_grey: np.ndarray, lesions: list[Lesion], lesion_mask: np.ndarray | None = None
) -> list[dict[str, Any]]:
    """Per lesion ``{"malignancy": p, "features": {name: p}}`` (calibrated malignancy).

    Only features whose head was trained with labels are reported (``meta["trained_features"]``
    of the checkpoint; all of them when the model carries no such list).

    ``image_grey``: uint8 original pixels; ``lesions`` in original pixels; ``lesion_mask``:
    optional mask of the detected lesions in original pixels (used where a lesion has no
    polygon).
    """
    if not lesions:
        return []
    if image_grey.ndim != 2:
        raise ValueError(f"image_grey must be 2-D grey, got shape {image_grey.shape}")
    crops = np.stack([lesion_crop(model.cfg, image_grey, les, lesion_mask)[0] for les in lesions])
    size = size_feature([lesion_side_px(les) for les in lesions])
    was_training = bool(getattr(model, "training", False))
    out = predict_logits(model, crops, size)
    if was_training:
        model.train(True)
    mal = 1.0 / (1.0 + np.exp(-out["malignancy"] / float(model.temperature)))
    feats = 1.0 / (1.0 + np.exp(-out["features"]))
    trained = (getattr(model, "meta", None) or {}).get("trained_features")
    names = [(k, n) for k, n in enumerate(model.feature_names) if trained is None or n in trained]
    return [
        {"malignancy": float(mal[i]), "features": {n: float(feats[i, k]) for k, n in names}}
        for i in range(len(lesions))
    ]


def image_label(lesion_scores: list[tuple[float, float]]) -> dict[str, float]:
    """Image-level ``{normal, benign, malignant}`` from ``(detection score, malignancy)`` pairs
    of the image's lesions (the lesion rule of :func:`livus.models.image_label.lesion_evidence_label`)."""
    from livus.models.image_label import lesion_evidence_label

    return lesion_evidence_label(lesion_scores)
