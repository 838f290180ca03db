"""Retraining with physician-confirmed cases: train a candidate, compare it with the active
model, register it (never activate it).

Confirmed cases are exported from the service as livus dataset folders (``images/``,
``masks/``, ``annotations.json``; see ``livus.io.dataset``) holding the images with the
physician-confirmed lesion outlines. One retraining round:

1. the base dataset's FIXED validation images (``validation_ids``, or a deterministic
   class-stratified share of the base dataset, the same on every round) are set aside;
2. confirmed images identical (same file bytes) to a validation image are dropped; the rest are
   split by patient into a training part and a held-out check part
   (``confirmed_check_share``), so the candidate is never scored on cases it trained on;
3. the candidate detector trains on base-training + confirmed-training images
   (``livus.train.detector.train_run``);
4. candidate and active model (from the registry; none on a first round) are scored on the
   fixed validation set and on the held-out confirmed cases (FROC sensitivity, Dice…);
5. a written comparison (``comparison.md``: both models' figures, the difference, which is
   better per figure, and a recommendation) goes next to the candidate; only then is the
   candidate registered — inactive, with the comparison as its model card. Switching models
   stays a human decision: ``livus model activate detector <version>``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from livus.config import LivusConfig, load_config
from livus.evaluate.run import Metrics
from livus.io.dataset import Dataset, ImageRecord, load_dataset
from livus.models.detector import load_detector
from livus.monitor.registry import ModelRegistry
from livus.train.datasets import ModelSpaceCache, build_cache, concat_caches
from livus.train.detector import train_run, validate
from livus.train.splits import stratified_kfold

MODEL_NAME = "detector"
# figures where a smaller value is better; every other headline figure: larger is better
LOWER_IS_BETTER = ("long_axis_err_px",)
KEY_FIGURE = "sens@0.25fp"


@dataclass
class RetrainConfig:
    """One retraining round (paths are folders; ``registry`` is the service's model registry)."""

    base_data: Path
    confirmed: list[Path]
    registry: Path
    out: Path
    model_name: str = MODEL_NAME
    validation_ids: list[int] | None = None  # fixed validation image ids of the base dataset
    validation_share: float = 0.2  # when validation_ids is None: 1/round(1/share) of the base data, fold 0
    confirmed_check_share: float = 0.3  # confirmed patients held out for the comparison
    seed: int = 0
    version: str | None = None  # default: candidate-<UTC timestamp>


@dataclass
class RetrainResult:
    version: str
    registered: bool
    comparison_path: Path
    candidate: dict[str, dict[str, float]]  # set name → headline figures
    active: dict[str, dict[str, float]] | None
    active_version: str | None
    recommendation: str
    counts: dict[str, int] = field(default_factory=dict)


def fixed_validation_ids(ds: Dataset, share: float, seed: int = 0) -> list[int]:
    """Deterministic class-stratified validation ids of a dataset (fold 0 of a
    ``round(1/share)``-fold split with ``seed``): the same images on every retraining round."""
    k = max(2, int(round(1.0 / share)))
    _, va = stratified_kfold([r.image_class or "unknown" for r in ds], k, seed)[0]
    return sorted(ds.images[i].id for i in va)


def split_confirmed_by_patient(records: list[ImageRecord], check_share: float, seed: int = 0) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """``(train, check)``: whole patients (``patient_id``, else the image) go to one side; at least
    one patient is checked when there are two or more."""
    keys = sorted({r.patient_id or f"img:{r.file_name}" for r in records})
    rng = np.random.default_rng(seed)
    rng.shuffle(keys)
    n_check = int(round(check_share * len(keys)))
    if len(keys) >= 2:
        n_check = min(max(1, n_check), len(keys) - 1)
    check_keys = set(keys[:n_check])
    train = [r for r in records if (r.patient_id or f"img:{r.file_name}") not in check_keys]
    check = [r for r in records if (r.patient_id or f"img:{r.file_name}") in check_keys]
    return train, check


def file_digest(path: Path) -> str:
    """SHA-1 of a file's bytes (to recognise the same image exported under another name)."""
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def _fmt(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def compare_figures(candidate: dict[str, float], active: dict[str, float] | None) -> list[tuple[str, float, float | None, str]]:
    """Per headline figure: ``(name, candidate, active, verdict)`` with verdict better / worse /
    equal / new (no active model) / n/a (a figure is undefined)."""
    rows = []
    for k, c in candidate.items():
        a = None if active is None else active.get(k)
        if active is None:
            verdict = "new"
        elif a is None or c is None or math.isnan(c) or math.isnan(a):
            verdict = "n/a"
        else:
            d = (a - c) if k in LOWER_IS_BETTER else (c - a)
            verdict = "better" if d > 1e-9 else "worse" if d < -1e-9 else "equal"
        rows.append((k, c, a, verdict))
    return rows


def recommendation(cand: dict[str, dict[str, float]], act: dict[str, dict[str, float]] | None) -> str:
    """One sentence: does the key figure (sensitivity at 0.25 FP/image) improve on the fixed
    validation set without falling on the confirmed cases? Advice only; a person decides."""
    if act is None:
        return "No active model to compare with: review the candidate's figures before activating it."
    v_c, v_a = cand["validation"].get(KEY_FIGURE, math.nan), act["validation"].get(KEY_FIGURE, math.nan)
    c_c = cand.get("confirmed", {}).get(KEY_FIGURE, math.nan)
    c_a = (act.get("confirmed") or {}).get(KEY_FIGURE, math.nan)
    if any(math.isnan(x) for x in (v_c, v_a)):
        return f"{KEY_FIGURE} is undefined on the validation set: no recommendation."
    conf_ok = math.isnan(c_c) or math.isnan(c_a) or c_c >= c_a
    if v_c >= v_a and conf_ok:
        return (f"Candidate is at least as sensitive at 0.25 FP/image on the fixed validation set ({v_c:.3f} vs {v_a:.3f}) "
                "and not worse on the held-out confirmed cases: activation may be considered after review.")
    return (f"Candidate does not improve {KEY_FIGURE} on both sets (validation {v_c:.3f} vs {v_a:.3f}, confirmed "
            f"{_fmt(c_c)} vs {_fmt(c_a)}): keep the active model.")


def comparison_markdown(version: str, active_version: str | None, cand: dict[str, dict[str, float]],
                        act: dict[str, dict[str, float]] | None, counts: dict[str, int], rec: str) -> str:
    lines = [f"# Candidate {version} vs active {active_version or '(none)'}", "",
             "Detector retrained with physician-confirmed cases. Registered INACTIVE: activation is a human decision "
             f"(`livus model activate {MODEL_NAME} {version}`).", "",
             "Images: " + ", ".join(f"{k} {v}" for k, v in counts.items()), ""]
    for set_name in cand:
        lines += [f"## {set_name}", "", "| figure | candidate | active | candidate is |", "|---|---|---|---|"]
        for k, c, a, verdict in compare_figures(cand[set_name], None if act is None else act.get(set_name)):
            lines.append(f"| {k} | {_fmt(c)} | {_fmt(a)} | {verdict} |")
        lines.append("")
    lines += ["## Recommendation", "", rec, ""]
    return "\n".join(lines)


def _cache(ds: Dataset, cfg: LivusConfig, records: list[ImageRecord]) -> ModelSpaceCache:
    cfg.preprocess.input_size_px = cfg.detector.input_size_px
    return build_cache(ds, cfg.preprocess, records)


def retrain(rc: RetrainConfig, cfg: LivusConfig | None = None, progress: bool = False) -> RetrainResult:
    """Run one retraining round (see module docstring); returns the comparison and where it is."""
    cfg = cfg or LivusConfig()
    rc.out.mkdir(parents=True, exist_ok=True)
    base = load_dataset(rc.base_data)
    val_ids = set(rc.validation_ids if rc.validation_ids is not None else fixed_validation_ids(base, rc.validation_share, rc.seed))
    val_recs = [r for r in base if r.id in val_ids]
    train_recs = [r for r in base if r.id not in val_ids]
    if not val_recs:
        raise ValueError("the fixed validation set is empty")
    val_digests = {file_digest(base.image_path(r)) for r in val_recs}
    n_dropped = 0
    conf_train_parts: list[ModelSpaceCache] = []
    conf_check_parts: list[tuple[ModelSpaceCache, list[ImageRecord]]] = []
    n_conf_train = n_conf_check = 0
    for folder in rc.confirmed:
        cds = load_dataset(folder)
        # a confirmed case that is one of the fixed validation images must not be trained on
        fresh = [r for r in cds.images if file_digest(cds.image_path(r)) not in val_digests]
        n_dropped += len(cds.images) - len(fresh)
        tr, ck = split_confirmed_by_patient(fresh, rc.confirmed_check_share, rc.seed)
        if tr:
            conf_train_parts.append(_cache(cds, cfg, tr))
            n_conf_train += len(tr)
        if ck:
            conf_check_parts.append((_cache(cds, cfg, ck), ck))
            n_conf_check += len(ck)
    if not rc.confirmed or n_conf_train + n_conf_check == 0:
        raise ValueError("no confirmed cases given: nothing to retrain with")
    train_cache = _cache(base, cfg, train_recs)
    for part in conf_train_parts:
        train_cache = concat_caches(train_cache, part)
    val_cache = _cache(base, cfg, val_recs)
    check_cache: ModelSpaceCache | None = None
    check_recs: list[ImageRecord] = []
    for part, recs in conf_check_parts:
        check_cache = part if check_cache is None else concat_caches(check_cache, part)
        check_recs += recs

    version = rc.version or time.strftime("candidate-%Y%m%dT%H%M%SZ", time.gmtime())
    run_dir = rc.out / version
    meta = {"version": version, "training_data": f"{base.root.name} (minus fixed validation) + confirmed: "
            + ", ".join(str(p) for p in rc.confirmed)}
    model, _ = train_run(cfg, train_cache, None, [], run_dir, progress=progress, meta=meta)

    def score(m: Any) -> dict[str, dict[str, float]]:
        out = {"validation": validate(m, val_cache, val_recs).headline()}
        if check_cache is not None:
            out["confirmed"] = validate(m, check_cache, check_recs).headline()
        return out

    cand = score(model)
    registry = ModelRegistry(rc.registry)
    active_mv = registry.active(rc.model_name)
    act = None
    if active_mv is not None:
        weights = active_mv.path / "detector.pt"
        if weights.is_file():
            act = score(load_detector(weights))
    counts = {"base training": len(train_recs), "fixed validation": len(val_recs), "confirmed training": n_conf_train,
              "confirmed held out": n_conf_check, "confirmed dropped (identical to a validation image)": n_dropped}
    rec = recommendation(cand, act)
    text = comparison_markdown(version, None if active_mv is None else active_mv.version, cand, act, counts, rec)
    comparison_path = run_dir / "comparison.md"
    comparison_path.write_text(text, encoding="utf-8")
    metrics = {"candidate": cand, "active": act, "active_version": None if active_mv is None else active_mv.version,
               "counts": counts, "recommendation": rec, "validation_ids": sorted(val_ids)}
    (run_dir / "comparison.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    registry.register(rc.model_name, version, [run_dir / "detector.pt"], card=comparison_path, metrics=metrics, activate=False)
    return RetrainResult(version, True, comparison_path, cand, act, None if active_mv is None else active_mv.version, rec, counts)


def retrain_cli(args: argparse.Namespace) -> int:
    """``livus train retrain --data BASE --confirmed DIR [DIR ...] --registry DIR [--config YAML]
    [--out RUN] [--epochs N]``: prints the comparison; the candidate is registered inactive."""
    cfg = load_config(args.config)
    if getattr(args, "epochs", None):
        cfg.train.epochs = int(args.epochs)
    rc = RetrainConfig(base_data=Path(args.data), confirmed=[Path(p) for p in args.confirmed], registry=Path(args.registry),
                       out=Path(args.out))
    res = retrain(rc, cfg, progress=True)
    print(res.comparison_path.read_text(encoding="utf-8"))
    print(f"registered {rc.model_name} {res.version} (inactive). To use it: livus model activate {rc.model_name} {res.version}")
    return 0
