"""Training losses of the detector (pure functions on tensors).

Targets are dense maps (see ``livus.train.datasets.build_targets``): ``heatmap`` Gaussian
centre targets ``(B,1,h,w)`` at stride 4, ``axes``/``orient``/``offset`` ``(B,2,h,w)`` read only
where ``reg_mask`` ``(B,1,h,w)`` is 1 (the centre cell of each lesion), ``orient_weight``
``(B,1,h,w)`` (0 for round lesions, whose angle is meaningless), ``lesion_mask``/``liver_mask``
``(B,1,S,S)`` 0/1, ``liver_valid`` ``(B,)`` 1 where the image has a liver outline,
``image_class`` ``(B,)`` 0/1/2 (normal/benign/malignant) or -1 where unknown.
Every loss returns a per-image vector ``(B,)`` so the trainer can mine hard examples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def focal_heatmap_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """Penalty-reduced pixel focal loss (CornerNet/CenterNet) per image, normalised by the
    number of centres in that image (at least 1). ``target`` is 1 at centres, Gaussian around."""
    p = torch.sigmoid(logits.float()).clamp(1e-4, 1 - 1e-4)
    pos = target.ge(0.999).float()
    neg = 1.0 - pos
    pos_loss = -torch.log(p) * (1 - p) ** alpha * pos
    neg_loss = -torch.log(1 - p) * p**alpha * (1 - target) ** beta * neg
    n_pos = pos.flatten(1).sum(1).clamp(min=1.0)
    return (pos_loss + neg_loss).flatten(1).sum(1) / n_pos


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean L1 over channels at pixels where ``mask`` > 0, per image (0 where no pixel)."""
    diff = (pred.float() - target).abs().sum(1, keepdim=True) * mask
    return diff.flatten(1).sum(1) / mask.flatten(1).sum(1).clamp(min=1.0) / pred.shape[1]


def dice_bce_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Soft Dice loss + binary cross-entropy, per image. An empty target with an empty
    prediction costs ~0 (the ``smooth`` term)."""
    logits = logits.float()
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).mean(1)
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    dice = 1 - (2 * (p * t).sum(1) + smooth) / (p.sum(1) + t.sum(1) + smooth)
    return bce + dice


def detector_loss(
    outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], weights: dict[str, float]
) -> tuple[torch.Tensor, dict[str, float], torch.Tensor]:
    """Weighted sum of all detector losses.

    Returns ``(total, parts, per_image)``: the scalar to minimise, each part's batch mean (for
    logging) and the per-image total ``(B,)`` (for hard-example mining). ``weights`` keys:
    heatmap, axes, orient, offset, lesion_mask, liver_mask, image, aux.
    """
    reg = targets["reg_mask"]
    parts = {
        "heatmap": focal_heatmap_loss(outputs["heatmap"], targets["heatmap"]),
        "axes": masked_l1(outputs["axes"], targets["axes"], reg),
        "orient": masked_l1(outputs["orient"], targets["orient"], reg * targets["orient_weight"]),
        "offset": masked_l1(outputs["offset"], targets["offset"], reg),
        "lesion_mask": dice_bce_loss(outputs["lesion_mask"], targets["lesion_mask"]),
        "liver_mask": dice_bce_loss(outputs["liver_mask"], targets["liver_mask"]) * targets["liver_valid"],
    }
    if "image_logits" in outputs and "image_class" in targets:
        cls = targets["image_class"].long()
        ce = F.cross_entropy(outputs["image_logits"].float(), cls.clamp(min=0), reduction="none")
        parts["image"] = ce * (cls >= 0).float()
    if "aux_heatmap_s8" in outputs:
        hm8 = F.max_pool2d(targets["heatmap"], 2)
        masks = torch.cat([targets["lesion_mask"], targets["liver_mask"]], 1)
        m16 = F.adaptive_avg_pool2d(masks, outputs["aux_masks_s16"].shape[-2:])
        aux_bce = F.binary_cross_entropy_with_logits(outputs["aux_masks_s16"].float(), m16, reduction="none")
        aux_bce = aux_bce[:, 0].flatten(1).mean(1) + aux_bce[:, 1].flatten(1).mean(1) * targets["liver_valid"]
        parts["aux"] = focal_heatmap_loss(outputs["aux_heatmap_s8"], hm8) + aux_bce
    per_image = sum(weights.get(k, 1.0) * v for k, v in parts.items())
    assert isinstance(per_image, torch.Tensor)
    return per_image.mean(), {k: float(v.detach().mean()) for k, v in parts.items()}, per_image.detach()
