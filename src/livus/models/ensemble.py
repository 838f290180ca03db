"""ClassifierEnsemble: weighted probability averaging of several lesion classifiers.

Members are :class:`livus.models.classifier.LesionClassifier` models that share the crop rule
(``crop_size_px``, ``margin``, ``min_side_px``), e.g. the light default and a wider variant. Each
member's malignancy logit is turned into its CALIBRATED probability (its own temperature), the
probabilities are averaged with weights ``w`` (``w ≥ 0``, ``Σ w = 1``) and the ensemble returns
the logit of that average with temperature 1. The feature heads are averaged the same way
(uncalibrated, as in ``classify_lesions``), each only over the members trained with that
feature's labels (``meta["trained_features"]``), weights renormalised.

The ensemble has the call contract of ``LesionClassifier`` (``cfg``, ``temperature``,
``threshold``, ``feature_names``, ``meta``, ``forward(x, size)``), so
:func:`livus.models.classifier.classify_lesions` and
:func:`livus.models.classifier.predict_logits` accept it unchanged. Mirror TTA is done inside
each member (its own ``cfg.tta_flip``); the ensemble's ``cfg.tta_flip`` is False so it is not
applied twice. Grad-CAM (``cam_layer``) explains the member with the largest weight.

Weights: :func:`choose_weights` searches a grid on the simplex for the smallest log-loss (or
largest AUC) on VALIDATION predictions; the caller keeps those apart from the data it reports
on (``benchmarks/classifier_ensemble.py`` chooses them on the folds other than the test fold).

Files: :func:`save_ensemble` writes a small JSON spec that names member checkpoints (paths
relative to the spec) with their weights and the ensemble's operating threshold;
:func:`load_ensemble` reads it back.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from livus.models.classifier import LesionClassifier, load_classifier

ENSEMBLE_KIND = "livus.classifier_ensemble/1"
_EPS = 1e-6


def _crop_rule(model: LesionClassifier) -> tuple[int, float, float]:
    return (model.cfg.crop_size_px, model.cfg.margin, model.cfg.min_side_px)


def member_logits(model: nn.Module, x: torch.Tensor, size: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """One member's logits for crops ``x`` ``(N, 2, S, S)``; averaged with the mirrored crop when
    the member's ``cfg.tta_flip`` (both halves in one batch)."""
    n = x.shape[0]
    if not model.cfg.tta_flip:
        return model(x, size)
    both = model(torch.cat([x, torch.flip(x, dims=[3])]), None if size is None else torch.cat([size, size]))
    return {k: (v[:n] + v[n:]) / 2 for k, v in both.items()}


def _logit(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(_EPS, 1 - _EPS)
    return torch.log(p) - torch.log1p(-p)


class ClassifierEnsemble(nn.Module):
    """Weighted probability average of lesion classifiers (drop-in for ``LesionClassifier`` in
    ``classify_lesions``)."""

    def __init__(self, members: Sequence[LesionClassifier], weights: Sequence[float] | None = None,
                 threshold: float = 0.5, meta: dict[str, Any] | None = None) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        rules = {_crop_rule(m) for m in members}
        if len(rules) != 1:
            raise ValueError(f"members must share the crop rule (crop_size_px, margin, min_side_px), got {sorted(rules)}")
        names = {tuple(m.feature_names) for m in members}
        if len(names) != 1:
            raise ValueError("members must have the same feature heads")
        self.members = nn.ModuleList(members)
        self.register_buffer("weights", torch.tensor(normalise_weights(weights, len(members)), dtype=torch.float32))
        self.cfg = replace(members[0].cfg, tta_flip=False, use_size=any(m.cfg.use_size for m in members))
        self.feature_names: tuple[str, ...] = tuple(members[0].feature_names)
        self.register_buffer("temperature", torch.tensor(1.0))  # members are calibrated one by one
        self.register_buffer("threshold", torch.tensor(float(threshold)))
        # feature heads: average only over members that were trained with that feature's labels
        # (meta["trained_features"]; no list = all); untrained heads would only add noise
        trained = [(getattr(m, "meta", None) or {}).get("trained_features") for m in members]
        known = torch.tensor([[t is None or n in t for n in self.feature_names] for t in trained], dtype=torch.float32)
        fw = self.weights[:, None] * known
        fw = torch.where(fw.sum(0, keepdim=True) > 0, fw, self.weights[:, None].expand_as(fw))
        self.register_buffer("feature_weights", fw / fw.sum(0, keepdim=True))  # (M, K), columns sum to 1
        self.meta: dict[str, Any] = {"kind": ENSEMBLE_KIND, **(meta or {})}
        if all(t is not None for t in trained):
            self.meta.setdefault("trained_features", sorted(set().union(*trained)))

    @property
    def cam_layer(self) -> nn.Module:
        """Grad-CAM layer: the deepest stage of the member with the largest weight."""
        return self.members[int(torch.argmax(self.weights))].cam_layer

    def member_probabilities(self, x: torch.Tensor, size: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Per member: calibrated malignancy ``(M, N)`` and feature probabilities ``(M, N, K)``."""
        mal, feat = [], []
        for m in self.members:
            out = member_logits(m, x, size if m.cfg.use_size else None)
            mal.append(torch.sigmoid(out["malignancy"] / m.temperature))
            feat.append(torch.sigmoid(out["features"]))
        return {"malignancy": torch.stack(mal), "features": torch.stack(feat)}

    def forward(self, x: torch.Tensor, size: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Logits of the weighted mean probabilities: ``malignancy`` ``(N,)`` (already calibrated:
        temperature 1) and ``features`` ``(N, K)``."""
        p = self.member_probabilities(x, size)
        w = self.weights.to(p["malignancy"].dtype)
        return {"malignancy": _logit(torch.einsum("m,mn->n", w, p["malignancy"])),
                "features": _logit(torch.einsum("mk,mnk->nk", self.feature_weights.to(w.dtype), p["features"]))}


def normalise_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    """Non-negative weights summing to 1 (equal weights when ``None``)."""
    if weights is None:
        return [1.0 / n] * n
    w = np.asarray(weights, np.float64)
    if w.shape != (n,) or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError(f"need {n} non-negative weights with a positive sum, got {list(weights)}")
    return (w / w.sum()).tolist()


def simplex_grid(n_members: int, step: float = 0.05) -> np.ndarray:
    """All weight vectors on the simplex with entries in multiples of ``step`` ``(G, M)``."""
    k = int(round(1 / step))
    if not np.isclose(k * step, 1.0):
        raise ValueError("step must divide 1")
    rows = [c + (k - sum(c),) for c in itertools.product(range(k + 1), repeat=n_members - 1) if sum(c) <= k]
    return np.asarray(rows, np.float64) / k


def log_loss(y: np.ndarray, prob: np.ndarray) -> float:
    """Mean binary cross-entropy (nats) of probabilities ``prob`` for 0/1 labels ``y``."""
    p = np.clip(np.asarray(prob, np.float64), _EPS, 1 - _EPS)
    y = np.asarray(y, np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def choose_weights(member_probs: np.ndarray, y: np.ndarray, criterion: str = "log_loss", step: float = 0.05) -> np.ndarray:
    """Weights ``(M,)`` for validation probabilities ``member_probs`` ``(N, M)`` and labels ``y``.

    ``criterion``: ``log_loss`` (smallest mean cross-entropy of the averaged probability) or
    ``auc`` (largest ROC AUC). Grid over the simplex in steps of ``step``; among equally good
    grid points the one closest to equal weights is taken (less variance from a small set).
    """
    probs = np.asarray(member_probs, np.float64)
    y = np.asarray(y, np.float64)
    if probs.ndim != 2 or len(probs) != len(y):
        raise ValueError("member_probs must be (N, M) with one row per label")
    grid = simplex_grid(probs.shape[1], step)
    fused = probs @ grid.T  # (N, G)
    if criterion == "log_loss":
        score = np.array([-log_loss(y, fused[:, g]) for g in range(len(grid))])
    elif criterion == "auc":  # raises ValueError when ``y`` has one class only
        from sklearn.metrics import roc_auc_score

        score = np.array([roc_auc_score(y, fused[:, g]) for g in range(len(grid))])
    else:
        raise ValueError(f"unknown criterion {criterion!r} (log_loss | auc)")
    best = np.flatnonzero(score >= score.max() - 1e-12)
    centre = np.full(probs.shape[1], 1 / probs.shape[1])
    pick = best[np.argmin(np.abs(grid[best] - centre).sum(axis=1))]
    return grid[pick]


def fuse(member_probs: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Weighted average ``(N,)`` of member probabilities ``(N, M)``."""
    return np.asarray(member_probs, np.float64) @ np.asarray(normalise_weights(weights, np.shape(member_probs)[1]))


def save_ensemble(path: str | Path, member_paths: Sequence[str | Path], weights: Sequence[float], threshold: float,
                  meta: dict[str, Any] | None = None) -> Path:
    """Write the JSON spec of an ensemble whose members are saved checkpoints (``save_classifier``).
    Member paths are stored relative to the spec's folder when they lie under it."""
    path = Path(path)
    base = path.parent.resolve()
    rel = []
    for p in member_paths:
        p = Path(p).resolve()
        rel.append(str(p.relative_to(base)) if p.is_relative_to(base) else str(p))
    w = normalise_weights(weights, len(rel))
    spec = {"kind": ENSEMBLE_KIND, "members": [{"path": r, "weight": x} for r, x in zip(rel, w)],
            "threshold": float(threshold), "meta": dict(meta or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    return path


def load_ensemble(path: str | Path) -> ClassifierEnsemble:
    """Read a spec written by :func:`save_ensemble`; members are loaded with ``load_classifier``
    (relative paths from the spec's folder). The ensemble is in eval mode."""
    path = Path(path)
    spec = json.loads(path.read_text(encoding="utf-8"))
    if spec.get("kind") != ENSEMBLE_KIND:
        raise ValueError(f"{path}: not a livus classifier ensemble spec (kind={spec.get('kind')!r})")
    members = [load_classifier(path.parent / m["path"]) for m in spec["members"]]
    ens = ClassifierEnsemble(members, [m["weight"] for m in spec["members"]], spec.get("threshold", 0.5), spec.get("meta"))
    return ens.eval()
