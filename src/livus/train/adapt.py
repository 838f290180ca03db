"""Domain adaptation across scanners: per-image intensity standardisation, style augmentation
and gradient-reversal domain-adversarial training (DANN, Ganin & Lempitsky 2015).

* :func:`standardise_intensity`: each image's fan pixels to zero mean / unit spread, mapped
  back to ``[0, 1]`` — removes gain and dynamic-range differences between scanners.
* :func:`style_augment`: random gamma, gain, contrast, blur/sharpen and speckle-grain changes
  (the ways scanners differ) applied to a model-input image in ``[0, 1]``.
* :class:`GradientReversal`: identity forward, gradient multiplied by ``-lambda`` backward.
  A small :class:`DomainHead` on the deepest backbone features learns to tell the scanner
  groups apart; through the reversal the backbone learns features that make that hard.
  :func:`train_one_epoch_dann` is the detector's training step (``livus.train.trainer``) plus
  that domain loss; domain labels may include unlabelled images of the target group (their
  detection loss is masked out), the usual unsupervised domain-adaptation setting.

Written by hand: PyTorch has no gradient-reversal layer and the augmentations are a few lines
of OpenCV/numpy on one grey channel.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable

import cv2
import numpy as np
import torch
from torch import nn

from livus.models.losses import detector_loss
from livus.train.datasets import DetectorTrainSet, ModelSpaceCache


class GradientReversal(torch.autograd.Function):
    """``y = x`` forward; ``dL/dx = -lambda * dL/dy`` backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, lambd: float) -> torch.Tensor:  # type: ignore[override]
        ctx.lambd = float(lambd)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return -ctx.lambd * grad, None


def grad_reverse(x: torch.Tensor, lambd: float = 1.0) -> torch.Tensor:
    return GradientReversal.apply(x, lambd)


def dann_lambda(progress: float, gamma: float = 10.0) -> float:
    """Ganin's schedule ``2 / (1 + exp(-gamma p)) - 1``: 0 at the start, → 1 at the end of
    training (``progress`` in ``[0, 1]``), so the domain loss does not disturb early training."""
    return float(2.0 / (1.0 + math.exp(-gamma * min(max(progress, 0.0), 1.0))) - 1.0)


class DomainHead(nn.Module):
    """Gradient reversal → global average pool → 2-layer MLP → ``n_domains`` logits."""

    def __init__(self, in_channels: int, n_domains: int, hidden: int = 64) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU(inplace=True), nn.Dropout(0.2),
                                 nn.Linear(hidden, n_domains))
        self.lambd = 0.0

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        z = grad_reverse(features, self.lambd).mean(dim=(2, 3))
        return self.mlp(z)


class BackboneTap:
    """Keeps the deepest backbone feature map of the last forward pass of a ``LesionDetector``
    (a forward hook, so the detector code stays unchanged)."""

    def __init__(self, model: nn.Module) -> None:
        self.features: torch.Tensor | None = None
        self._handle = model.backbone.register_forward_hook(self._hook)  # type: ignore[union-attr]

    def _hook(self, module: nn.Module, inputs: Any, output: Any) -> None:
        _, feats = output
        self.features = feats[-1]

    def remove(self) -> None:
        self._handle.remove()


def train_one_epoch_dann(
    model: nn.Module, domain_head: DomainHead, tap: BackboneTap, dataset: torch.utils.data.Dataset,
    indices: np.ndarray, domains: np.ndarray, labelled: np.ndarray, optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None, weights: dict[str, float], batch_size: int,
    progress_start: float, progress_end: float, domain_weight: float = 0.1,
    progress: Callable[[int, float], None] | None = None,
) -> dict[str, float]:
    """One epoch of detector loss (``labelled`` images only) + ``domain_weight`` × domain
    cross-entropy (all images, through the gradient reversal). ``domains`` / ``labelled`` are
    indexed by dataset index; ``progress_start/end`` place this epoch in the ``dann_lambda``
    schedule. Returns mean loss parts plus ``domain`` and ``domain_acc``."""
    model.train()
    domain_head.train()
    sums: dict[str, float] = {}
    n = 0
    n_batches = max(1, math.ceil(len(indices) / batch_size))
    ce = nn.CrossEntropyLoss()
    for b, start in enumerate(range(0, len(indices), batch_size)):
        chunk = indices[start : start + batch_size]
        if len(chunk) < 2:
            continue
        domain_head.lambd = dann_lambda(progress_start + (progress_end - progress_start) * b / n_batches)
        items = [dataset[int(i)] for i in chunk]
        batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
        out = model(batch["image"])
        idx = batch["index"].numpy()
        lab = torch.from_numpy(labelled[idx].astype(bool))
        parts: dict[str, float] = {}
        total = torch.zeros(())
        if lab.sum() >= 1:
            sub_out = {k: v[lab] for k, v in out.items()}
            sub_t = {k: v[lab] for k, v in batch.items() if k != "index"}
            total, parts, _ = detector_loss(sub_out, sub_t, weights)
        assert tap.features is not None
        logits = domain_head(tap.features)
        dom = torch.from_numpy(domains[idx].astype(np.int64))
        dloss = ce(logits, dom)
        loss = total + domain_weight * dloss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(list(model.parameters()) + list(domain_head.parameters()), 5.0)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        parts["total"] = float(loss.detach())
        parts["domain"] = float(dloss.detach())
        parts["domain_acc"] = float((logits.argmax(1) == dom).float().mean())
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v
        n += 1
        if progress is not None:
            progress(len(chunk), parts["total"])
    return {k: v / max(n, 1) for k, v in sums.items()}


# ---- intensity adaptation (no training change) ----------------------------------------------


def standardise_intensity(image01: np.ndarray, valid: np.ndarray | None = None, spread: float = 0.18) -> np.ndarray:
    """Per-image standardisation inside ``valid`` (the fan): ``0.5 + spread * (x - median) / IQR``
    clipped to ``[0, 1]``; outside the fan stays 0. Median/IQR rather than mean/std so lesions
    and shadows do not shift the reference. Input and output float32 in ``[0, 1]``."""
    x = image01.astype(np.float32)
    m = (valid > 0) if valid is not None else np.ones(x.shape, bool)
    if m.sum() < 16:
        return x
    q25, q50, q75 = np.percentile(x[m], [25, 50, 75])
    iqr = max(float(q75 - q25), 1e-3)
    y = np.clip(0.5 + spread * (x - q50) / (iqr / 1.349), 0.0, 1.0).astype(np.float32)
    y[~m] = 0.0
    return y


def style_augment(image01: np.ndarray, rng: np.random.Generator, valid: np.ndarray | None = None) -> np.ndarray:
    """A random 'other scanner' look: gamma 0.6–1.6, gain ×0.7–1.4, contrast about the median,
    Gaussian blur (σ ≤ 1.2 px) or unsharp masking, and multiplicative grain noise. Model-input
    image in ``[0, 1]``; pixels outside ``valid`` stay 0."""
    x = image01.astype(np.float32)
    x = np.power(np.clip(x, 0, 1), float(rng.uniform(0.6, 1.6)))
    x = x * float(rng.uniform(0.7, 1.4))
    med = float(np.median(x[valid > 0])) if valid is not None and valid.any() else float(np.median(x))
    x = med + (x - med) * float(rng.uniform(0.7, 1.3))
    r = rng.random()
    if r < 0.4:
        x = cv2.GaussianBlur(x, (0, 0), float(rng.uniform(0.4, 1.2)))
    elif r < 0.7:
        blur = cv2.GaussianBlur(x, (0, 0), 1.5)
        x = x + float(rng.uniform(0.2, 0.8)) * (x - blur)
    if rng.random() < 0.5:
        grain = cv2.GaussianBlur(rng.normal(0, 1, x.shape).astype(np.float32), (0, 0), 0.8)
        x = x * (1 + float(rng.uniform(0.03, 0.12)) * grain)
    x = np.clip(x, 0, 1).astype(np.float32)
    if valid is not None:
        x[valid == 0] = 0.0
    return x


class StyleAugmentedSet(DetectorTrainSet):
    """:class:`livus.train.datasets.DetectorTrainSet` whose images get :func:`style_augment` with
    probability ``p`` (after the usual geometric augmentation; the fan is where the image is > 0)."""

    def __init__(self, cache: ModelSpaceCache, p: float = 0.7, **kwargs: Any) -> None:
        super().__init__(cache, **kwargs)
        self.p = p

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        out = super().__getitem__(i)
        rng = np.random.default_rng((self.seed, self.epoch, int(i), 7))
        if rng.random() < self.p:
            img = out["image"][0].numpy()
            out["image"] = torch.from_numpy(style_augment(img, rng, (img > 0).astype(np.uint8)))[None]
        return out


def standardised_cache(cache: ModelSpaceCache) -> ModelSpaceCache:
    """A copy of ``cache`` with every image through :func:`standardise_intensity` (its fan)."""
    images = np.stack([standardise_intensity(im, v) for im, v in zip(cache.images, cache.valid_masks)])
    return replace(cache, images=images)
