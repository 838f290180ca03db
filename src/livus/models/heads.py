"""Prediction heads: lesion centre/ellipse heads at stride 4, the full-resolution segmentation
head (lesion + liver) and the auxiliary deep-supervision heads."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from livus.models.blocks import ConvBNAct
from livus.vocab import IMAGE_CLASSES

HEATMAP_PRIOR = 0.01  # initial lesion-centre probability (focal-loss bias init, Lin et al. 2017)


def _head(c_in: int, hidden: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(ConvBNAct(c_in, hidden, 3), nn.Conv2d(hidden, c_out, 1))


class CenterHeads(nn.Module):
    """Stride-4 maps: ``heatmap`` (1, logits), ``axes`` (2: log long / log short axis in model
    pixels, full diameters), ``orient`` (2: cos 2θ, sin 2θ of the long-axis angle) and ``offset``
    (2: sub-pixel centre offset in stride-4 cells, x then y).

    The heatmap has its own 3×3 trunk; the three regression maps share one (they are only
    read at centre pixels, so one trunk suffices and halves the cost).
    """

    def __init__(self, channels: int, hidden: int = 32) -> None:
        super().__init__()
        self.heatmap = _head(channels, hidden, 1)
        self.regression = _head(channels, hidden, 6)
        nn.init.constant_(self.heatmap[-1].bias, -math.log((1 - HEATMAP_PRIOR) / HEATMAP_PRIOR))
        with torch.no_grad():
            self.regression[-1].bias.zero_()
            self.regression[-1].bias[0:2].fill_(math.log(16.0))

    def forward(self, p2: torch.Tensor) -> dict[str, torch.Tensor]:
        reg = self.regression(p2)
        return {"heatmap": self.heatmap(p2), "axes": reg[:, 0:2], "orient": reg[:, 2:4], "offset": reg[:, 4:6]}


class SegmentationHead(nn.Module):
    """Lesion and liver mask logits at input resolution from the stride-4 level.

    p2 → 3×3 unit → 2× up, add the projected stride-2 stem feature → 3×3 unit → 3×3 conv to 2
    logit channels (lesion, liver) at stride 2 → bilinear 2× up to the input size. Upsampling
    the 2 logit channels instead of features keeps full-resolution work to almost nothing.
    """

    def __init__(self, channels: int, stem_channels: int, hidden: int = 16) -> None:
        super().__init__()
        self.reduce = ConvBNAct(channels, hidden, 3)
        self.stem_proj = ConvBNAct(stem_channels, hidden, 1, act=False)
        self.refine = ConvBNAct(hidden, hidden, 3)
        self.out = nn.Conv2d(hidden, 2, 3, padding=1)

    def forward(self, p2: torch.Tensor, stem: torch.Tensor, size: tuple[int, int]) -> dict[str, torch.Tensor]:
        y = self.reduce(p2)
        y = F.interpolate(y, size=stem.shape[-2:], mode="bilinear", align_corners=False) + self.stem_proj(stem)
        y = self.out(self.refine(y))
        y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
        return {"lesion_mask": y[:, 0:1], "liver_mask": y[:, 1:2]}


class AuxHeads(nn.Module):
    """Deep supervision (training only): a heatmap at stride 8 (p3) and lesion/liver mask logits
    at stride 16 (p4)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.heatmap = nn.Conv2d(channels, 1, 3, padding=1)
        self.masks = nn.Conv2d(channels, 2, 3, padding=1)
        nn.init.constant_(self.heatmap.bias, -math.log((1 - HEATMAP_PRIOR) / HEATMAP_PRIOR))

    def forward(self, p3: torch.Tensor, p4: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"aux_heatmap_s8": self.heatmap(p3), "aux_masks_s16": self.masks(p4)}



class ImageHead(nn.Module):
    """Image-level ``normal / benign / malignant`` logits ``(B, 3)`` from the deepest encoder
    feature (global average and max pooling, dropout, linear)."""

    def __init__(self, channels: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * channels, len(IMAGE_CLASSES))

    def forward(self, c5: torch.Tensor) -> torch.Tensor:
        z = torch.cat([c5.mean(dim=(2, 3)), c5.amax(dim=(2, 3))], dim=1)
        return self.fc(self.dropout(z))
