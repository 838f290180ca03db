"""Building blocks of the detector: convolution units, residual blocks and CBAM attention.

Plain torch (no torchvision). All blocks keep the spatial size unless ``stride`` says otherwise.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvBNAct(nn.Module):
    """``k×k`` convolution → batch norm → ReLU (``act=False`` drops the ReLU)."""

    def __init__(self, c_in: int, c_out: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SeparableConvBNAct(nn.Module):
    """Depthwise ``k×k`` then pointwise ``1×1`` convolution (factorised 3×3): about
    ``1/c_out + 1/k²`` of the multiply-adds of a full convolution."""

    def __init__(self, c_in: int, c_out: int, k: int = 3, stride: int = 1, act: bool = True) -> None:
        super().__init__()
        self.depthwise = ConvBNAct(c_in, c_in, k, stride, groups=c_in, act=True)
        self.pointwise = ConvBNAct(c_in, c_out, 1, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def conv_unit(c_in: int, c_out: int, stride: int = 1, factorised: bool = False, act: bool = True) -> nn.Module:
    """A 3×3 conv unit: full or depthwise-separable (``factorised``)."""
    if factorised:
        return SeparableConvBNAct(c_in, c_out, 3, stride, act=act)
    return ConvBNAct(c_in, c_out, 3, stride, act=act)


class ResidualBlock(nn.Module):
    """Basic residual block (two 3×3 units); a strided 1×1 projection when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, factorised: bool = False) -> None:
        super().__init__()
        self.conv1 = conv_unit(c_in, c_out, stride, factorised)
        self.conv2 = conv_unit(c_out, c_out, 1, factorised, act=False)
        self.skip: nn.Module
        if stride != 1 or c_in != c_out:
            self.skip = ConvBNAct(c_in, c_out, 1, stride, act=False)
        else:
            self.skip = nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.skip(x))


class ChannelAttention(nn.Module):
    """CBAM channel attention: shared MLP over global average- and max-pooled features."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(x.mean(dim=(2, 3), keepdim=True))
        mx = self.mlp(x.amax(dim=(2, 3), keepdim=True))
        return x * torch.sigmoid(avg + mx)


class SpatialAttention(nn.Module):
    """CBAM spatial attention: 7×7 convolution over channel-mean and channel-max maps."""

    def __init__(self, k: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, k, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(s))


class CBAM(nn.Module):
    """Convolutional Block Attention Module (Woo et al. 2018): channel, then spatial attention."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))
