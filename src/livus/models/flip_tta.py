"""Mirror test-time augmentation of the detector: the outputs of an image and of its left-right
mirror image, the latter mapped back into the image's frame, averaged.

Written by hand because it is a few lines of output algebra specific to this detector's heads
(MONAI's ``TestTimeAugmentation`` wants a dictionary-transform pipeline and inverts spatial
transforms on single-tensor outputs; it does not know that a mirrored ellipse angle θ becomes
180° − θ or that a mirrored sub-pixel x offset changes sign).

How each output of ``livus.models.detector`` comes back from the mirrored pass (model pixels,
mirror about the vertical centre line of the ``S × S`` input):

* ``heatmap``, ``lesion_mask``, ``liver_mask`` (logits): flipped back; the two sigmoid
  probabilities are averaged and returned as a logit again;
* ``axes`` (log long / short axis): flipped back and averaged (lengths do not change);
* ``orient`` (cos 2θ, sin 2θ): flipped back, sin 2θ negated (θ → 180° − θ), averaged;
* ``offset`` (x, y in stride-4 cells): flipped back, the x offset negated, averaged;
* ``image_logits``: averaged.

The detector was trained with random left-right flips, so the mirror image is an image it knows.
"""

from __future__ import annotations

import torch

_PROBABILITY_MAPS = ("heatmap", "lesion_mask", "liver_mask")
_EPS = 1e-6


def mirror_back(name: str, value: torch.Tensor) -> torch.Tensor:
    """The output ``name`` of the mirrored input, expressed in the unmirrored image's frame."""
    if name == "image_logits" or value.ndim != 4:
        return value
    value = torch.flip(value, dims=[3])
    if name in ("orient", "offset"):
        sign = torch.tensor([1.0, -1.0] if name == "orient" else [-1.0, 1.0], dtype=value.dtype).view(1, 2, 1, 1)
        value = value * sign
    return value


def average_with_mirror(out: dict[str, torch.Tensor], mirrored: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Average of ``out`` (the image's outputs) and ``mirrored`` (its mirror image's outputs)."""
    fused: dict[str, torch.Tensor] = {}
    for name, value in out.items():
        back = mirror_back(name, mirrored[name])
        if name in _PROBABILITY_MAPS:
            p = ((torch.sigmoid(value) + torch.sigmoid(back)) / 2).clamp(_EPS, 1 - _EPS)
            fused[name] = torch.log(p) - torch.log1p(-p)
        else:
            fused[name] = (value + back) / 2
    return fused
