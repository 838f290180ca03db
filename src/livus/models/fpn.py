"""Feature pyramid: top-down fusion from stride 32 down to stride 4, CBAM on the deep levels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from livus.models.blocks import CBAM, ConvBNAct, conv_unit


class FPN(nn.Module):
    """Top-down FPN over ``[c2, c3, c4, c5]`` (strides 4, 8, 16, 32) → ``[p2, p3, p4, p5]``.

    Each level: 1×1 lateral projection to ``channels``, plus the 2× upsampled coarser level, then
    a 3×3 smoothing unit (depthwise-separable at stride 4, where it pays most). With ``use_cbam`` the two deepest backbone features (strides 16, 32) pass
    a CBAM block before their lateral projection.
    """

    def __init__(self, in_channels: tuple[int, ...], channels: int = 64, use_cbam: bool = True, factorised: bool = False) -> None:
        super().__init__()
        self.use_cbam = use_cbam
        self.attn = nn.ModuleList(
            [CBAM(c) if (use_cbam and i >= len(in_channels) - 2) else nn.Identity() for i, c in enumerate(in_channels)]
        )
        self.lateral = nn.ModuleList([ConvBNAct(c, channels, 1, act=False) for c in in_channels])
        # the stride-4 level dominates the cost: its smoothing is always depthwise-separable
        self.smooth = nn.ModuleList(
            [conv_unit(channels, channels, 1, factorised or i == 0) for i in range(len(in_channels))]
        )

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        outs: list[torch.Tensor] = [torch.empty(0)] * len(feats)
        top: torch.Tensor | None = None
        for i in range(len(feats) - 1, -1, -1):
            lat = self.lateral[i](self.attn[i](feats[i]))
            if top is not None:
                lat = lat + F.interpolate(top, size=lat.shape[-2:], mode="nearest")
            top = self.smooth[i](lat)
            outs[i] = top
        return outs
