"""Reduced-width residual backbone: stem to stride 4, then one stage per stride 4/8/16/32."""

from __future__ import annotations

import torch
from torch import nn

from livus.models.blocks import ConvBNAct, ResidualBlock


class ResNetLite(nn.Module):
    """Residual backbone for one grey channel.

    ``widths`` are the channels at strides 4, 8, 16, 32. ``forward`` returns the stem feature at
    stride 2 (``stem_channels``) and the four stage outputs ``[c2, c3, c4, c5]``.
    ``factorised`` replaces the 3×3 convolutions of the residual blocks by depthwise-separable ones.
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (32, 64, 128, 256),
        blocks_per_stage: tuple[int, ...] = (1, 1, 1, 1),
        stem_channels: int = 16,
        factorised: bool = False,
    ) -> None:
        super().__init__()
        if len(widths) != 4 or len(blocks_per_stage) != 4:
            raise ValueError("widths and blocks_per_stage need 4 entries (strides 4, 8, 16, 32)")
        self.stem_channels = stem_channels
        self.widths = tuple(widths)
        self.stem = ConvBNAct(1, stem_channels, 3, stride=2)
        stages = []
        c_in = stem_channels
        for c_out, n in zip(widths, blocks_per_stage):
            blocks = [ResidualBlock(c_in, c_out, stride=2, factorised=factorised)]
            blocks += [ResidualBlock(c_out, c_out, 1, factorised) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            c_in = c_out
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        stem = self.stem(x)
        feats = []
        y = stem
        for stage in self.stages:
            y = stage(y)
            feats.append(y)
        return stem, feats
