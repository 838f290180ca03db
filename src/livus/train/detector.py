"""Training of the lesion detector/segmenter: k-fold cross-validation or a final model on all
images, with per-epoch CSV logs, validation metrics and resumable checkpoints.

Run folder layout (``--out RUN``)::

    RUN/config.yaml             the full LivusConfig used
    RUN/cache_<S>.npz           model-space cache of the dataset (preprocessed once; rebuilt when
                                its fingerprint of images, labels and settings no longer matches)
    RUN/fold<k>/log.csv         per-epoch losses and validation figures
    RUN/fold<k>/state.pt        resumable training state (model, optimiser, sampler, epoch)
    RUN/fold<k>/detector.pt     the fold's model (save_detector format)
    RUN/fold<k>/metrics.json    the fold's final validation metrics (+ froc.png)
    RUN/cv.json                 per-fold and mean figures
    RUN/all/...                 the model trained on every image (``--folds 0``)
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from livus.config import LivusConfig, load_config, save_config
from livus.evaluate.run import Metrics, compute_metrics, write_metrics
from livus.io.dataset import Dataset, ImageRecord, load_dataset
from livus.models.decode import Detection, decode_detections, liver_polygon
from livus.models.detector import LesionDetector, count_parameters, load_detector, save_detector
from livus.preprocess.geometry import Letterbox
from livus.simulate.diffuse import parse_mix
from livus.train.datasets import (
    DetectorTrainSet, ModelSpaceCache, build_cache, cache_fingerprint, concat_caches, load_cache, save_cache, saved_fingerprint,
)
from livus.train.distributed import DistContext, is_main, main_first, wrap_model
from livus.train.splits import stratified_kfold
from livus.train.trainer import CsvLog, HardExampleSampler, load_training_state, predict, save_training_state, train_one_epoch
from livus.types import FrameResult, Lesion

MODEL_VERSION_PREFIX = "livus-detector"


# ---- results in original pixels -------------------------------------------------------------


def detections_to_result(
    dets: list[Detection], liver_model: list[list[float]] | None, lb: Letterbox, rec: ImageRecord
) -> FrameResult:
    """Model-pixel detections → a ``FrameResult`` in ORIGINAL pixels (as the pipeline does)."""
    lesions = []
    for i, d in enumerate(dets, start=1):
        c = lb.points_to_original(np.asarray([d.center_px], float))[0]
        poly = lb.points_to_original(np.asarray(d.polygon_px, float)).tolist() if d.polygon_px else []
        lesions.append(
            Lesion(id=i, score=d.score, center_px=(float(c[0]), float(c[1])), long_axis_px=d.long_axis_px / lb.scale,
                   short_axis_px=d.short_axis_px / lb.scale, angle_deg=d.angle_deg, polygon_px=poly)
        )
    liver = lb.points_to_original(np.asarray(liver_model, float)).tolist() if liver_model else None
    return FrameResult(source=rec.file_name, frame_index=rec.frame_index or 0, image_size_px=(rec.width, rec.height),
                       liver_polygon_px=liver, lesions=lesions)


def validate(model: LesionDetector, cache: ModelSpaceCache, records: list[ImageRecord], batch_size: int = 16) -> Metrics:
    """Validation metrics (original pixels): every candidate above ``candidate_threshold``
    enters the FROC; size sensitivity, Dice and long-axis error use ``score_threshold``."""
    cfg = model.cfg
    results = []
    k = 0
    for out in predict(model, cache.images, batch_size):
        valid = torch.from_numpy(cache.valid_masks[k : k + out["heatmap"].shape[0]])
        dets = decode_detections(out, cfg, valid_mask=valid, score_threshold=cfg.candidate_threshold)
        for b, d in enumerate(dets):
            results.append(detections_to_result(d, liver_polygon(out, b, cfg.mask_threshold), cache.letterboxes[k + b], records[k + b]))
        k += len(dets)
    return compute_metrics(records, results, report_threshold=cfg.score_threshold)


# ---- one training run -----------------------------------------------------------------------


def _loss_weights(cfg: LivusConfig) -> dict[str, float]:
    t = cfg.train
    return {"heatmap": t.heatmap_weight, "axes": t.axes_weight, "orient": t.orient_weight, "offset": t.offset_weight,
            "lesion_mask": t.lesion_mask_weight, "liver_mask": t.liver_mask_weight, "aux": t.aux_weight,
            "image": t.image_weight}


def resolve_device(name: str) -> torch.device:
    """``cpu`` | ``cuda`` | ``mps`` → a torch device; a clear error when it is not available."""
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: no CUDA device is available")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RuntimeError("--device mps: no MPS device is available")
    if name not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {name!r} (cpu | cuda | mps)")
    return torch.device(name)


def param_groups(model: LesionDetector, lr: float, encoder_lr_scale: float) -> list[dict[str, Any]]:
    """Optimiser groups: a pretrained encoder learns at ``lr × encoder_lr_scale``, the rest at ``lr``
    (frozen parameters are left out)."""
    scale = encoder_lr_scale if model.cfg.encoder != "resnet_lite" else 1.0
    enc = [p for p in model.backbone.parameters() if p.requires_grad]
    ids = {id(p) for p in model.backbone.parameters()}
    rest = [p for p in model.parameters() if id(p) not in ids and p.requires_grad]
    return [g for g in ({"params": enc, "lr": lr * scale}, {"params": rest, "lr": lr}) if g["params"]]


def load_init_weights(model: LesionDetector, init_path: Path) -> None:
    """Start ``model`` from the detector.pt at ``init_path``. The training-only deep-supervision
    heads (``aux.*``) are taken where both have them and otherwise left as they are: a shipped
    model (``ship_model``) has none, so they start fresh. Any other missing, unexpected or
    differently shaped weight is an error (another architecture)."""
    own, init = model.state_dict(), load_detector(init_path).state_dict()
    init = {k: v for k, v in init.items() if k in own or not k.startswith("aux.")}
    missing = {k for k in own.keys() - init.keys() if not k.startswith("aux.")}
    reshaped = {k for k in own.keys() & init.keys() if own[k].shape != init[k].shape}
    wrong = sorted(missing | (init.keys() - own.keys()) | reshaped)
    if wrong:
        raise ValueError(f"train.init_from {init_path}: not this detector's architecture ({len(wrong)} weights differ, "
                         f"e.g. {wrong[0]})")
    model.load_state_dict(init, strict=False)


def train_run(
    cfg: LivusConfig, train_cache: ModelSpaceCache, val_cache: ModelSpaceCache | None, val_records: list[ImageRecord],
    run_dir: Path, resume: bool = False, progress: bool = True, meta: dict[str, Any] | None = None,
    init_path: Path | None = None, dist: DistContext | None = None, n_simulated: int = 0,
) -> tuple[LesionDetector, Metrics | None]:
    """Train one model; validate every ``eval_every`` epochs (and at the end) when a validation
    set is given. Writes ``log.csv``, ``state.pt``, ``detector.pt`` and ``metrics.json``.
    ``init_path``: a detector.pt of the same architecture to start from (else ImageNet/random).
    ``dist``: one rank of a data-parallel run (``livus.train.distributed``); only rank 0
    validates and writes files (the other ranks return no metrics). ``n_simulated``: the last
    images of ``train_cache`` that are simulated (``train.diffuse_on_real_prob`` spares them)."""
    t = cfg.train
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(t.seed)
    device = resolve_device(t.device)
    model = LesionDetector(cfg.detector, pretrained=t.pretrained and init_path is None)
    if init_path is not None:
        load_init_weights(model, init_path)
        meta = dict(meta or {}, init_from=str(init_path))
    model = model.to(device)
    dataset = DetectorTrainSet(train_cache, augment=t.augment, copy_paste_prob=t.copy_paste_prob, seed=t.seed, backend=t.augment_backend,
                               scanner_augment=t.scanner_augment, diffuse_on_real_prob=t.diffuse_on_real_prob,
                               diffuse_mix=parse_mix(t.diffuse_on_real_mix) if t.diffuse_on_real_prob > 0 else None,
                               n_simulated=n_simulated, simulated_liver_loss=t.simulated_liver_loss)
    sampler = HardExampleSampler(len(train_cache), t.hard_example_fraction if t.hard_example_mining else 0.0, seed=t.seed)
    groups = param_groups(model, t.lr, t.encoder_lr_scale)
    opt = torch.optim.AdamW(groups, lr=t.lr, weight_decay=t.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(train_cache) / t.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in groups], total_steps=steps_per_epoch * t.epochs + 1,
                                                pct_start=0.15)
    start_epoch = 0
    state_path = run_dir / "state.pt"
    log = CsvLog(run_dir / "log.csv")
    if resume and state_path.is_file():
        st = load_training_state(state_path)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        sampler.load_state_dict(st["sampler"])
        start_epoch = int(st["epoch"])
    net = model if dist is None else wrap_model(model, dist)
    metrics: Metrics | None = None
    weights = _loss_weights(cfg)
    t0 = time.time()
    for epoch in range(start_epoch, t.epochs):
        dataset.epoch = epoch
        idx = sampler.epoch_indices()
        bar = None
        if progress and is_main(dist):
            from tqdm import tqdm

            bar = tqdm(total=len(idx), desc=f"{run_dir.name} epoch {epoch + 1}/{t.epochs}", unit="img", mininterval=10)

        def _tick(n: int, loss: float) -> None:
            if bar is not None:
                bar.update(n)
                bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

        te = time.time()
        parts, seen_idx, seen_loss = train_one_epoch(net, dataset, idx, opt, sched, weights, t.batch_size, _tick, device, dist)
        if bar is not None:
            bar.close()
        sampler.update(seen_idx, seen_loss)
        row: dict[str, Any] = {"epoch": epoch + 1, "epoch_s": round(time.time() - te, 1), "lr": opt.param_groups[0]["lr"]}
        row.update({f"loss_{k}": round(v, 4) for k, v in parts.items()})
        last = epoch + 1 == t.epochs
        if not is_main(dist):
            continue
        if val_cache is not None and len(val_cache) and (last or (epoch + 1) % max(t.eval_every, 1) == 0):
            metrics = validate(model, val_cache, val_records)
            row.update({k: round(v, 4) for k, v in metrics.headline().items()})
            print(f"[{run_dir.name}] epoch {epoch + 1}: " + ", ".join(f"{k}={v:.3f}" for k, v in metrics.headline().items()), flush=True)
        log.write(row)
        save_training_state(state_path, model=model.state_dict(), optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                            sampler=sampler.state_dict(), epoch=epoch + 1)
    if not is_main(dist):
        return model.cpu().eval(), None
    if metrics is None and val_cache is not None and len(val_cache):
        metrics = validate(model, val_cache, val_records)  # resumed after the last epoch
    train_s = time.time() - t0
    m = dict(meta or {})
    m.update({"train_seconds_this_session": round(train_s, 1), "train_images": len(train_cache), "epochs": t.epochs,
              "params": count_parameters(model)})
    if metrics is not None:
        m["validation"] = metrics.headline()
        write_metrics(metrics, run_dir, title=run_dir.name)
    model = model.cpu()
    save_detector(model, run_dir / "detector.pt", m)
    return model.eval(), metrics


# ---- cross-validation / final model ---------------------------------------------------------


def _nanmean(values: list[float]) -> float:
    v = [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(v)) if v else math.nan


def get_cache(
    cfg: LivusConfig, data_dir: Path, out_dir: Path, records: list[ImageRecord], name: str = "cache"
) -> ModelSpaceCache:
    """Load ``out_dir/<name>_<S>.npz`` or build it with ``preprocess_frame`` (same as inference).
    A saved cache is used only when its ``cache_fingerprint`` matches these records, their files
    and the preprocessing settings; otherwise it is rebuilt and overwritten."""
    size = cfg.detector.input_size_px
    cfg.preprocess.input_size_px = size
    path = out_dir / f"{name}_{size}.npz"
    ds = load_dataset(data_dir)
    fingerprint = cache_fingerprint(ds, records, cfg.preprocess)
    if path.is_file():
        if saved_fingerprint(path) == fingerprint:
            return load_cache(path)
        print(f"{path}: built from other images or settings, rebuilding", flush=True)
    cache = build_cache(ds, cfg.preprocess, records, progress=True)
    save_cache(cache, path, fingerprint)
    return cache


def init_checkpoint(cfg: LivusConfig, part: str) -> Path | None:
    """The detector.pt that ``part`` (``fold{f}`` or ``all``) starts from under ``train.init_from``:
    the file itself, or ``init_from/part/detector.pt`` for a run folder; None without ``init_from``."""
    if not cfg.train.init_from:
        return None
    src = Path(cfg.train.init_from)
    path = src / part / "detector.pt" if src.is_dir() else src
    if not path.is_file():
        raise FileNotFoundError(f"train.init_from: no {path}")
    return path


def train_detector(
    data_dir: Path, cfg: LivusConfig, out_dir: Path, folds: int | None = None, resume: bool = False, progress: bool = True,
    dist: DistContext | None = None,
) -> dict[str, Any]:
    """k-fold CV (``folds`` ≥ 2; default ``cfg.train.folds``) or, with ``folds = 0``, one model
    on all images. Returns the summary written to ``cv.json`` (or ``all/metrics``). ``dist``:
    one rank of a data-parallel run; rank 0 writes the files and returns the summary."""
    torch.set_num_threads(max(1, cfg.train.num_threads))
    out_dir.mkdir(parents=True, exist_ok=True)
    if is_main(dist):
        save_config(cfg, out_dir / "config.yaml")
    ds = load_dataset(data_dir)
    records = ds.images
    if cfg.train.max_train_images:
        records = records[: cfg.train.max_train_images]
    cache = main_first(dist, lambda: get_cache(cfg, data_dir, out_dir, records))
    extra: ModelSpaceCache | None = None  # simulated images: training splits only, never validation
    if cfg.train.use_simulated:
        if not cfg.train.simulated_dir:
            raise ValueError("train.use_simulated needs train.simulated_dir")
        sim_dir = Path(cfg.train.simulated_dir)
        extra = main_first(dist, lambda: get_cache(cfg, sim_dir, out_dir, load_dataset(sim_dir).images, name="simulated"))
    with_extra = (lambda c: concat_caches(c, extra)) if extra is not None else (lambda c: c)  # noqa: E731
    n_simulated = len(extra) if extra is not None else 0  # with_extra puts them last
    k = cfg.train.folds if folds is None else folds
    training_data = str(ds.info.get("name") or data_dir.name) + (" + simulated" if cfg.train.use_simulated else "")
    meta = {"version": f"{MODEL_VERSION_PREFIX}-{time.strftime('%Y%m%d')}", "training_data": training_data,
            "input_size_px": cfg.detector.input_size_px, "config": "see run folder config.yaml"}
    if k == 0:
        model, _ = train_run(cfg, with_extra(cache), None, [], out_dir / "all", resume, progress, meta, init_checkpoint(cfg, "all"),
                             dist, n_simulated)
        return {"folds": 0, "model": str(out_dir / "all" / "detector.pt")}
    splits = stratified_kfold(cache.classes, k, cfg.train.seed)
    per_fold: list[dict[str, float]] = []
    for f, (tr, va) in enumerate(splits):
        if cfg.train.folds_to_run and f not in cfg.train.folds_to_run:
            continue
        fold_dir = out_dir / f"fold{f}"
        done = fold_dir / "metrics.json"
        if resume and done.is_file() and (fold_dir / "detector.pt").is_file() and not (fold_dir / "state.pt").is_file():
            per_fold.append(json.loads((fold_dir / "headline.json").read_text()))
            continue
        val_recs = [records[i] for i in va]
        _, metrics = train_run(cfg, with_extra(cache.subset(tr)), cache.subset(va), val_recs, fold_dir, resume, progress,
                               dict(meta, fold=f, folds=k), init_checkpoint(cfg, f"fold{f}"), dist, n_simulated)
        if not is_main(dist):
            continue
        assert metrics is not None
        per_fold.append(metrics.headline())
        (fold_dir / "headline.json").write_text(json.dumps(per_fold[-1], indent=1))
        (fold_dir / "state.pt").unlink(missing_ok=True)
    if not is_main(dist):
        return {"folds": k, "rank": dist.rank}
    keys = list(per_fold[0])
    summary = {"folds": k, "per_fold": per_fold, "mean": {kk: _nanmean([p[kk] for p in per_fold]) for kk in keys},
               "use_cbam": cfg.detector.use_cbam, "input_size_px": cfg.detector.input_size_px, "epochs": cfg.train.epochs}
    (out_dir / "cv.json").write_text(json.dumps(summary, indent=1))
    return summary


def format_cv_table(summary: dict[str, Any]) -> str:
    """Markdown table: one row per fold and the mean."""
    keys = list(summary["mean"])
    lines = ["| fold | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for f, p in enumerate(summary["per_fold"]):
        lines.append(f"| {f} | " + " | ".join(f"{p[k]:.3f}" for k in keys) + " |")
    lines.append("| mean | " + " | ".join(f"{summary['mean'][k]:.3f}" for k in keys) + " |")
    return "\n".join(lines)


def train_detector_cli(args: argparse.Namespace) -> int:
    """``livus train detector --data DIR [--config YAML] [--out RUN] [--folds K] [--resume] [--device D]``."""
    cfg = load_config(args.config)
    if getattr(args, "device", None):
        cfg.train.device = args.device
    out = Path(args.out)
    if getattr(args, "ddp", False):  # one rank of `torchrun ... livus train detector --ddp`
        from livus.train.distributed import close, init_from_env

        dist = init_from_env(cfg.train.device)
        try:
            summary = train_detector(Path(args.data), cfg, out, args.folds, args.resume, dist=dist)
        finally:
            close()
        if not dist.is_main:
            return 0
    else:
        summary = train_detector(Path(args.data), cfg, out, args.folds, args.resume)
    if summary.get("folds"):
        print(format_cv_table(summary))
    else:
        print(f"model written to {summary['model']}")
    return 0


# ---- after training: operating threshold, shipped model, model card -----------------------


@dataclass
class CVRun:
    """A finished CV run of ``livus train detector`` as its folds saw the data: the run's config,
    the dataset and its records (capped as in training), their model-space cache and the
    ``(train, validation)`` index splits; fold ``f``'s model is ``run_dir/fold<f>/detector.pt``."""

    run_dir: Path
    cfg: LivusConfig
    dataset: Dataset
    records: list[ImageRecord]
    cache: ModelSpaceCache
    splits: list[tuple[np.ndarray, np.ndarray]]

    def fold_model_path(self, fold: int) -> Path:
        return self.run_dir / f"fold{fold}" / "detector.pt"

    @property
    def folds(self) -> list[int]:
        """The folds whose model exists."""
        return [f for f in range(len(self.splits)) if self.fold_model_path(f).is_file()]

    def validation(self, fold: int) -> tuple[ModelSpaceCache, list[ImageRecord]]:
        """Fold ``fold``'s validation images: their cache and their records."""
        va = self.splits[fold][1]
        return self.cache.subset(va), [self.records[i] for i in va]


def load_cv_run(run_dir: Path, data_dir: Path) -> CVRun:
    """The folds of the CV run in ``run_dir`` over the dataset at ``data_dir`` (its cache is
    built with ``preprocess_frame`` when missing)."""
    run_dir, data_dir = Path(run_dir), Path(data_dir)
    cfg = load_config(run_dir / "config.yaml")
    ds = load_dataset(data_dir)
    records = ds.images[: cfg.train.max_train_images] if cfg.train.max_train_images else ds.images
    cache = get_cache(cfg, data_dir, run_dir, records)
    return CVRun(run_dir, cfg, ds, records, cache, stratified_kfold(cache.classes, cfg.train.folds, cfg.train.seed))


def revalidate_run(run_dir: Path, data_dir: Path, score_threshold: float | None = None) -> list[Metrics]:
    """Re-run validation of every ``run_dir/fold<k>/detector.pt`` on its own validation split
    (from the run's config and cache); ``score_threshold`` overrides the report threshold."""
    cv = load_cv_run(run_dir, data_dir)
    out = []
    for f in cv.folds:
        model = load_detector(cv.fold_model_path(f))
        if score_threshold is not None:
            model.cfg.score_threshold = score_threshold
        out.append(validate(model, *cv.validation(f)))
    return out


def ship_model(
    trained: Path, dest: Path, score_threshold: float | None = None, extra_meta: dict[str, Any] | None = None,
    score_calibration: tuple[float, ...] | None = None, tta_flip: bool | None = None,
) -> Path:
    """Copy a trained checkpoint to ``dest`` (e.g. ``models/detector.pt``) without the
    training-only auxiliary heads, optionally with a new report threshold, a score calibration
    (``DetectorConfig.score_calibration``), mirror test-time augmentation
    (``DetectorConfig.tta_flip``: the calibration must have been fitted with the same setting)
    and more metadata."""
    from livus.models.detector import load_checkpoint, load_detector

    meta = dict(load_checkpoint(trained).get("meta", {}))
    model = load_detector(trained)
    cfg = model.cfg
    if score_threshold is not None:
        cfg.score_threshold = float(score_threshold)
    if score_calibration is not None:
        cfg.score_calibration = tuple(float(c) for c in score_calibration)
    if tta_flip is not None:
        cfg.tta_flip = bool(tta_flip)
    cfg.deep_supervision = False
    slim = LesionDetector(cfg)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("aux.")}
    slim.load_state_dict(state)
    meta.update(extra_meta or {})
    return save_detector(slim.eval(), dest, meta)


def cv_report(run_dir: Path, data_dir: Path, fp_rate: float = 0.25) -> dict[str, Any]:
    """Cross-validated figures at one operating threshold: each fold's FROC gives its score
    threshold at ``fp_rate`` FP/image; their mean becomes the report threshold and every fold is
    re-validated with it. (The threshold is chosen on the validation folds themselves, so the
    figures that depend on it are mildly optimistic; the FROC figures do not depend on it.)"""
    first = revalidate_run(run_dir, data_dir)
    thr = float(np.mean([m.threshold_at_025fp if fp_rate == 0.25 else math.nan for m in first]))
    at_thr = revalidate_run(run_dir, data_dir, score_threshold=thr)
    per_fold = [m.headline() for m in at_thr]
    keys = list(per_fold[0])
    return {
        "folds": len(per_fold), "operating_threshold": thr, "fold_thresholds": [m.threshold_at_025fp for m in first],
        "per_fold": per_fold, "mean": {k: _nanmean([p[k] for p in per_fold]) for k in keys},
        "fp_per_image_at_threshold": [m.fp_per_image_reported for m in at_thr],
        "lesions_by_size": [m.lesions_by_size for m in at_thr],
    }


TARGETS = {"sens@0.25fp": 0.95, "sens_lt60": 0.85, "mass_dice": 0.80, "liver_dice": 0.92}


def targets_table(mean: dict[str, float]) -> str:
    """Markdown: target vs measured CV mean."""
    lines = ["| figure | target | CV mean | met |", "|---|---|---|---|"]
    for k, t in TARGETS.items():
        v = mean.get(k, math.nan)
        lines.append(f"| {k} | ≥ {t:.2f} | {v:.3f} | {'yes' if v >= t else 'no'} |")
    return "\n".join(lines)


def comparison_table(rows: dict[str, dict[str, float]]) -> str:
    """Markdown table: one row per named set of headline figures."""
    keys = list(next(iter(rows.values())))
    lines = ["| run | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, fig in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{fig[k]:.3f}" for k in keys) + " |")
    return "\n".join(lines)


def _foreign_sections(path: Path, sections: dict[str, str], figures: dict[str, Any], retired: set[str]) -> str:
    """Sections of an existing card written by others (e.g. the classifier's): everything from
    the first ``## `` heading this writer does not produce (now or, ``retired``, formerly), kept
    verbatim."""
    if not path.is_file():
        return ""
    own = set(sections) | set(figures.get("comparisons", {})) | retired
    own |= {"Model", "Training data", "Training", "Cross-validated figures"}
    text = path.read_text(encoding="utf-8")
    for line_start, line in _heading_lines(text):
        if line[3:].strip() not in own:
            return text[line_start:].rstrip("\n") + "\n"
    return ""


def _heading_lines(text: str) -> list[tuple[int, str]]:
    out, pos = [], 0
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            out.append((pos, line.rstrip("\n")))
        pos += len(line)
    return out


def write_model_card(
    path: Path, sections: dict[str, str], figures: dict[str, Any], retired: tuple[str, ...] = ()
) -> Path:
    """Write ``MODEL_CARD.md`` from hand-written ``sections`` (markdown text by heading) and
    computed ``figures`` (tables are rendered from them, never typed); ``retired`` names headings
    an earlier version of this writer produced, dropped from the old card."""
    cv = figures["cv"]
    parts = [f"# {sections['title']}\n", "**Decision support for research only — not for clinical use.**\n"]
    for head in ("Model", "Training data", "Training"):
        parts.append(f"## {head}\n\n{sections[head]}\n")
    parts.append("## Cross-validated figures\n\n" + sections["Cross-validated figures"] + "\n\n" + format_cv_table(cv) + "\n")
    parts.append("Targets vs measured (CV mean):\n\n" + targets_table(cv["mean"]) + "\n")
    for title, rows in figures.get("comparisons", {}).items():
        parts.append(f"## {title}\n\n" + sections.get(title, "") + "\n\n" + comparison_table(rows) + "\n")
    for head in ("Input size", "Intended use", "Known limits", "Credits"):
        if head in sections:
            parts.append(f"## {head}\n\n{sections[head]}\n")
    parts.append(_foreign_sections(path, sections, figures, set(retired)))
    path.write_text("\n".join(p for p in parts if p), encoding="utf-8")
    return path
