"""Grad-CAM (Selvaraju et al. 2017) for the lesion classifier's malignancy output.

Own short implementation with forward/backward hooks: the ``grad-cam`` package depends on
torchvision (not a livus dependency) and MONAI's version would pull a large framework for about
thirty lines of code. The map is computed on the classifier crop (model pixels) and mapped back
onto the ORIGINAL image with the crop's affine matrix (:mod:`livus.preprocess.crops`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from livus.types import Lesion


def grad_cam(
    model: nn.Module,
    layer: nn.Module,
    x: torch.Tensor,
    target: Callable[[object], torch.Tensor],
    forward: Callable[[torch.Tensor], object] | None = None,
) -> np.ndarray:
    """Grad-CAM maps ``(N, H, W)`` in ``[0, 1]`` at the input's size (model pixels).

    ``layer``: the module whose output activations ``A`` (N, C, h, w) are explained;
    ``target(model_output)`` returns the ``(N,)`` scores to explain (e.g. malignancy logits);
    ``forward(x)`` runs the model (default ``model(x)``; use it to pass extra inputs).
    Map = ReLU(Σ_c mean_ij(∂score/∂A_cij) · A_c), upsampled bilinearly and divided by its
    maximum (an all-zero map stays zero).

    Only ∂score/∂A is computed (``torch.autograd.grad``): nothing is back-propagated below
    ``layer`` and no parameter gradient is made or left in ``.grad``. The model runs in eval
    mode; its modes are switched (and restored) only when some module is in training mode.
    """
    store: dict[str, torch.Tensor] = {}

    def fwd_hook(_m: nn.Module, _inp: object, out: torch.Tensor) -> None:
        store["act"] = out

    handle = layer.register_forward_hook(fwd_hook)
    was_training = model.training
    switch = any(m.training for m in model.modules())
    if switch:
        model.eval()
    try:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            score = target(forward(x) if forward is not None else model(x))
            (grad,) = torch.autograd.grad(score.sum(), store["act"])
    finally:
        handle.remove()
        if switch:
            model.train(was_training)
    act, grad = store["act"].detach(), grad.detach()
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * act).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
    return (cam / peak).numpy().astype(np.float32)


def gradcam_lesion(model: nn.Module, image_grey: np.ndarray, lesion: Lesion, lesion_mask: np.ndarray | None = None) -> np.ndarray:
    """Grad-CAM of the malignancy logit for one lesion, in ORIGINAL pixels, in ``[0, 1]``;
    zero outside the lesion's crop. ``model`` is a :class:`livus.models.classifier.LesionClassifier`."""
    from livus.models.classifier import lesion_crop, lesion_side_px, size_feature
    from livus.preprocess.crops import crop_to_original

    crop, matrix = lesion_crop(model.cfg, image_grey, lesion, lesion_mask)
    size = torch.from_numpy(size_feature([lesion_side_px(lesion)]))
    cam = grad_cam(model, model.cam_layer, torch.from_numpy(crop[None]), lambda out: out["malignancy"],
                   forward=lambda t: model(t, size))[0]
    return np.clip(crop_to_original(cam, matrix, image_grey.shape), 0.0, 1.0)
