"""Weight averaging of detector checkpoints fine-tuned from one another ("model soup").

Detectors of one lineage (each schedule warm-started from the previous one, all from the same
ImageNet encoder) lie in one low-loss basin, so the element-wise weighted mean of their weights
is itself a working detector (Wortsman et al., "Model soups", ICML 2022; "WiSE-FT", CVPR 2022).
It often keeps what each member learnt (e.g. one schedule's hard negatives and another's real-
image behaviour) at the inference cost of one model. BatchNorm running statistics are averaged
like the weights; integer buffers (``num_batches_tracked``) are taken from the first member.

Written here because it is a few lines over livus' own checkpoint format
(:func:`livus.models.detector.save_detector`); ``torch.optim.swa_utils.AveragedModel`` averages
a model along one training run, not finished checkpoint files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Sequence

import torch

from livus.config import LivusConfig, load_config
from livus.models.detector import load_checkpoint
from livus.models.ensemble import normalise_weights


def average_state_dicts(states: Sequence[dict[str, torch.Tensor]], weights: Sequence[float] | None = None
                        ) -> dict[str, torch.Tensor]:
    """Weighted mean of floating-point tensors with the same keys and shapes (weights are
    normalised to sum to 1; default equal). Non-float tensors come from the first state."""
    if not states:
        raise ValueError("nothing to average")
    w = normalise_weights(weights, len(states))
    keys = list(states[0])
    for i, s in enumerate(states[1:], 1):
        if list(s) != keys:
            missing = sorted(set(keys) ^ set(s))[:5]
            raise ValueError(f"member {i} has other parameters than member 0 (e.g. {missing}): not one architecture")
    out: dict[str, torch.Tensor] = {}
    for k in keys:
        first = states[0][k]
        if any(s[k].shape != first.shape for s in states):
            raise ValueError(f"parameter {k!r} has different shapes across members")
        if first.is_floating_point():
            out[k] = sum(wi * s[k].float() for wi, s in zip(w, states)).to(first.dtype)
        else:
            out[k] = first.clone()
    return out


def average_detectors(paths: Sequence[str | Path], dest: str | Path, weights: Sequence[float] | None = None,
                      meta: dict[str, Any] | None = None) -> Path:
    """Write the weight average of the detector checkpoints ``paths`` to ``dest``.

    The members must share one config (architecture, input size); the average keeps the first
    member's config and metadata, plus ``meta['weight_average']`` naming members and weights and
    anything in ``meta``. Its score calibration and report threshold are the first member's and
    must be refitted (e.g. ``benchmarks/pretrained_cv_report.py`` on averaged fold models)."""
    if not paths:
        raise ValueError("nothing to average")
    ckpts = [load_checkpoint(p) for p in paths]
    arch = {k: v for k, v in ckpts[0]["config"].items() if k not in ("score_threshold", "score_calibration", "tta_flip")}
    for p, c in zip(paths[1:], ckpts[1:]):
        diff = [k for k in arch if c["config"].get(k) != arch[k]]
        if diff:
            raise ValueError(f"{p}: config differs from {paths[0]} in {diff}")
    w = normalise_weights(weights, len(paths))
    state = average_state_dicts([c["state_dict"] for c in ckpts], w)
    out_meta = dict(ckpts[0].get("meta", {}))
    out_meta["weight_average"] = {"members": [str(p) for p in paths], "weights": w}
    out_meta.update(meta or {})
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**ckpts[0], "state_dict": state, "meta": out_meta}, dest)
    return dest


def _fold_split(cfg: LivusConfig) -> tuple[int, int, int, int]:
    """What decides which images a CV run's fold holds out, and the cache it reads."""
    return cfg.train.folds, cfg.train.seed, cfg.train.max_train_images, cfg.detector.input_size_px


def average_cv_runs(runs: Sequence[str | Path], dest: str | Path, weights: Sequence[float] | None = None) -> list[Path]:
    """Average CV runs of ``livus train detector`` fold by fold: ``dest/fold<k>/detector.pt`` is
    the average of every run's ``fold<k>/detector.pt`` (all runs must hold the same folds, i.e.
    the same data, seed and fold count). ``dest/config.yaml`` is the first run's, and its
    model-space cache (``cache_<S>.npz``) is hard-linked (or copied) so that the averaged run can
    be evaluated and calibrated like a trained one (``benchmarks/pretrained_cv_report.py --cv``)."""
    runs = [Path(r) for r in runs]
    if not runs:
        raise ValueError("nothing to average")
    fold_sets = [sorted(p.parent.name for p in r.glob("fold*/detector.pt")) for r in runs]
    if not fold_sets[0] or any(f != fold_sets[0] for f in fold_sets):
        raise ValueError(f"the runs must hold the same fold models, found {dict(zip(map(str, runs), fold_sets))}")
    splits = [_fold_split(load_config(r / "config.yaml")) for r in runs]
    if any(s != splits[0] for s in splits):
        raise ValueError(f"the runs split the data differently (folds, seed, image cap, input size): {splits}")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(runs[0] / "config.yaml", dest / "config.yaml")
    for cache in runs[0].glob("cache_*.npz"):
        target = dest / cache.name
        if not target.exists():
            try:
                os.link(cache, target)
            except OSError:
                shutil.copy(cache, target)
    return [average_detectors([r / fold / "detector.pt" for r in runs], dest / fold / "detector.pt", weights)
            for fold in fold_sets[0]]
