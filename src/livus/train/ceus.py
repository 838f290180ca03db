"""Training of the CEUS feature model (:mod:`livus.models.ceus`) on simulated contrast clips.

Data: :func:`simulate_ceus_lesions` renders seeded CEUS clips (``livus.simulate.clips``) on
several convex scanner profiles, with frame times drawn per clip (a baseline frame, 3–5
arterial 10–30 s, 2–4 portal 30–120 s, 1–3 late 120–240 s), and keeps per lesion a window of
each frame around its annotated box plus the labels of ``livus.simulate.ceus.ceus_labels``.
Lesion diagnoses are drawn from ``CEUS_DIAGNOSIS_MIX`` (more enhancing lesions than the
B-mode mix, so each label has both values often enough).

Split: by clip (all lesions of a clip on the same side). Training uses each lesion's annotated
polygon, its box alone (the model then reads the box's inscribed ellipse) and jittered copies
(:func:`jitter_outlines`: one offset/scale per clip plus a small per-frame wobble) so the model
tolerates detector/tracker outlines; test figures are given for annotated polygons, annotated
boxes and jittered boxes.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from livus.evaluate.classification import roc_auc
from livus.models.ceus import (
    WASHOUT_CLASSES,
    CeusConfig,
    CeusModel,
    PhaseSample,
    model_inputs,
    phase_samples,
    predict,
    save_ceus_model,
)

CEUS_DIAGNOSIS_MIX = {"hcc": 0.3, "metastasis": 0.2, "hemangioma": 0.14, "fnh": 0.1, "cyst": 0.06,
                      "regenerative_nodule": 0.06, "dysplastic_nodule": 0.06, "focal_fat_sparing": 0.04,
                      "focal_fat_deposition": 0.04}
CONVEX_PROFILES = ("sonora_c5", "meditone_c3", "vistara_c6", "echowave_c4m")
WINDOW_REACH = 3.5  # kept window half-side / box half-side (room for the ring and box jitter)


@dataclass
class CeusTrainConfig:
    """Simulation, split and optimisation settings (sizes in pixels, times in seconds)."""

    n_clips: int = 120
    seed: int = 0
    test_fraction: float = 0.3
    image_size: tuple[int, int] = (512, 384)  # width, height of the simulated frames
    profiles: tuple[str, ...] = CONVEX_PROFILES
    epochs: int = 300
    batch: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    jitter_copies: int = 3  # jittered copies of each training lesion (plus the annotated boxes)
    box_shift: float = 0.08  # box jitter: centre shift, fraction of the box side
    box_scale: float = 0.12  # box jitter: relative size change
    capsule_weight: float = 1.0
    capsule_pos_weight_max: float = 10.0  # BCE pos_weight = min(negatives / positives, this); 1 = unweighted


@dataclass
class LesionClip:
    """One lesion of one simulated CEUS clip: frame windows (uint8) around it, its box
    ``[x0, y0, x1, y1]`` and outline polygon ``[[x, y], ...]`` in each window's pixels, times
    after injection (s) and labels."""

    clip_id: int
    lesion_id: int
    diagnosis: str
    profile: str
    diameter_mm: float
    times_s: np.ndarray
    windows: list[np.ndarray]
    boxes: list[list[float]]
    polygons: list[list[list[float]]]
    aphe: int
    washout: int  # index into WASHOUT_CLASSES
    capsule: int


def sample_times(rng: np.random.Generator) -> list[float]:
    """Frame times (s after injection) of one simulated clip, sorted."""
    t: list[float] = []
    if rng.random() < 0.7:
        t.append(float(rng.uniform(0, 8)))
    for lo, hi, k in ((10, 30, rng.integers(3, 6)), (30, 120, rng.integers(2, 5)), (120, 240, rng.integers(1, 4))):
        t += rng.uniform(lo, hi, int(k)).round(1).tolist()
    return sorted(t)


def _scene(rng: np.random.Generator, geom):  # noqa: ANN001, ANN202 - livus.simulate types
    """A scene with at least one lesion whose diagnosis follows ``CEUS_DIAGNOSIS_MIX``."""
    from livus.simulate.scenes import BENIGN_MIX, place_lesions, sample_anatomy, sample_liver_state

    def choice(mix: dict[str, float]) -> str:
        return str(rng.choice(list(mix), p=np.asarray(list(mix.values())) / sum(mix.values())))

    for _ in range(20):
        diag = choice(CEUS_DIAGNOSIS_MIX)
        diagnoses = [diag] * (1 if rng.random() < 0.8 else 2)
        if rng.random() < 0.15:
            diagnoses.append(choice(BENIGN_MIX))
        scene = sample_anatomy(rng, geom, sample_liver_state(rng, diag))
        place_lesions(rng, scene, geom, diagnoses)
        if scene.lesions:
            return scene
    raise RuntimeError("could not place a lesion in 20 scenes")


def _window(image: np.ndarray, box: list[float], polygon: list[list[float]]
            ) -> tuple[np.ndarray, list[float], list[list[float]]]:
    """The part of ``image`` around a lesion, with its box and polygon in the part's pixels."""
    x0, y0, x1, y1 = box
    half = WINDOW_REACH * max(x1 - x0, y1 - y0, 4.0) / 2 + 4
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    h, w = image.shape
    xa, ya = max(int(cx - half), 0), max(int(cy - half), 0)
    xb, yb = min(int(cx + half) + 1, w), min(int(cy + half) + 1, h)
    return image[ya:yb, xa:xb].copy(), [x0 - xa, y0 - ya, x1 - xa, y1 - ya], [[x - xa, y - ya] for x, y in polygon]


def simulate_ceus_lesions(n_clips: int, seed: int, image_size: tuple[int, int] = (512, 384),
                          profiles: Sequence[str] = CONVEX_PROFILES, log: bool = False) -> list[LesionClip]:
    """Render ``n_clips`` seeded CEUS clips and return their lesions (see the module docstring)."""
    from livus.simulate.ceus import ceus_labels
    from livus.simulate.clips import simulate_ceus_clip
    from livus.simulate.profiles import get_profile
    from livus.simulate.still import GeometryCache

    rng = np.random.default_rng(seed)
    cache = GeometryCache()
    out: list[LesionClip] = []
    t0 = time.time()
    for c in range(n_clips):
        prof = get_profile(profiles[int(rng.integers(len(profiles)))])
        geom = cache.get(prof, tuple(image_size))
        scene = _scene(rng, geom)
        times = sample_times(rng)
        frames = simulate_ceus_clip(rng, geom, scene, times_s=tuple(times))
        specs = {s.lesion_id: s for s in scene.lesions}
        for lid, spec in specs.items():
            wins, boxes, polys, ts = [], [], [], []
            for t, fr in zip(times, frames):
                lab = next((lab for lab in fr.lesions if lab.annotation.lesion_id == lid), None)
                if lab is None or len(lab.annotation.polygon_px) < 3:
                    continue
                win, box, poly = _window(fr.image, lab.annotation.bbox_xyxy, lab.annotation.polygon_px)
                wins.append(win)
                boxes.append(box)
                polys.append(poly)
                ts.append(t)
            if len(ts) < 3:
                continue
            y = ceus_labels(spec)
            out.append(LesionClip(c, lid, spec.diagnosis, prof.name, spec.diameter_mm, np.asarray(ts), wins, boxes, polys,
                                  int(y["arterial_phase_hyperenhancement"]), WASHOUT_CLASSES.index(y["washout"]),
                                  int(y["capsule_enhancement"])))
        if log and (c + 1) % 20 == 0:
            print(f"  simulated {c + 1}/{n_clips} clips, {len(out)} lesions, {time.time() - t0:.0f} s", flush=True)
    return out


def jitter_outlines(boxes: Sequence[Sequence[float]], polygons: Sequence[Sequence[Sequence[float]]],
                    rng: np.random.Generator, shift: float, scale: float) -> tuple[list[list[float]], list[list[list[float]]]]:
    """Boxes and polygons moved/resized like an imperfect tracker: one offset and scale for the
    whole clip (fractions ``shift`` of the box side, ``scale`` of the size) plus a third of that
    per frame, about each box centre."""
    g_shift, g_scale = rng.uniform(-shift, shift, 2), rng.uniform(-scale, scale, 2)
    out_b, out_p = [], []
    for (x0, y0, x1, y1), poly in zip(boxes, polygons):
        w, h = x1 - x0, y1 - y0
        c = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        ds = (g_shift + rng.uniform(-shift, shift, 2) / 3) * (w, h)
        sc = 1 + g_scale + rng.uniform(-scale, scale, 2) / 3
        out_b.append([c[0] + ds[0] - sc[0] * w / 2, c[1] + ds[1] - sc[1] * h / 2,
                      c[0] + ds[0] + sc[0] * w / 2, c[1] + ds[1] + sc[1] * h / 2])
        out_p.append(((np.asarray(poly, float) - c) * sc + c + ds).tolist())
    return out_b, out_p


OUTLINES = ("polygon", "box")  # which outline a phase sample uses: the polygon, or the box's inscribed ellipse


def lesion_samples(lesions: Sequence[LesionClip], cfg: CeusConfig, outline: str = "polygon",
                   rng: np.random.Generator | None = None, shift: float = 0.0, scale: float = 0.0) -> list[PhaseSample]:
    """Phase samples of ``lesions`` from their annotated outlines (``outline`` in ``OUTLINES``),
    or jittered ones when ``rng`` is given."""
    if outline not in OUTLINES:
        raise ValueError(f"outline must be one of {OUTLINES}, got {outline!r}")
    out = []
    for les in lesions:
        boxes, polys = (les.boxes, les.polygons) if rng is None else jitter_outlines(les.boxes, les.polygons, rng, shift, scale)
        out.append(phase_samples(les.windows, les.times_s, boxes, cfg, polygons_px=polys if outline == "polygon" else None))
    return out


def labels(lesions: Sequence[LesionClip]) -> dict[str, np.ndarray]:
    """Label arrays ``aphe`` (N,), ``washout`` (N,) class indices, ``capsule`` (N,)."""
    return {"aphe": np.array([x.aphe for x in lesions]), "washout": np.array([x.washout for x in lesions]),
            "capsule": np.array([x.capsule for x in lesions])}


def split_by_clip(lesions: Sequence[LesionClip], test_fraction: float, seed: int) -> tuple[list[LesionClip], list[LesionClip]]:
    """(train, test) with whole clips on one side."""
    clips = sorted({x.clip_id for x in lesions})
    rng = np.random.default_rng(seed + 1)
    test = set(rng.permutation(clips)[: int(round(test_fraction * len(clips)))].tolist())
    return [x for x in lesions if x.clip_id not in test], [x for x in lesions if x.clip_id in test]


def train_model(samples: list[PhaseSample], y: dict[str, np.ndarray], cfg: CeusConfig, tcfg: CeusTrainConfig,
                seed: int = 0) -> CeusModel:
    """Fit a :class:`CeusModel` (Adam, masked-free multi-task loss: BCE + CE + BCE)."""
    torch.manual_seed(seed)
    model = CeusModel(cfg)
    model.set_normalisation(np.stack([s.measurements for s in samples]))
    x, t = model_inputs(samples, cfg.kind)
    ya = torch.from_numpy(y["aphe"].astype(np.float32))
    yw = torch.from_numpy(y["washout"].astype(np.int64))
    yc = torch.from_numpy(y["capsule"].astype(np.float32))
    pos = float(yc.sum())
    pw = torch.tensor(max(min((len(yc) - pos) / max(pos, 1.0), tcfg.capsule_pos_weight_max), 1.0))
    opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, tcfg.epochs)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(tcfg.epochs):
        for idx in torch.randperm(len(ya), generator=g).split(tcfg.batch):
            out = model(x[idx], t[idx])
            loss = (F.binary_cross_entropy_with_logits(out["aphe"], ya[idx]) + F.cross_entropy(out["washout"], yw[idx])
                    + tcfg.capsule_weight * F.binary_cross_entropy_with_logits(out["capsule"], yc[idx], pos_weight=pw))
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return model.eval()


def feature_metrics(p: dict[str, np.ndarray], y: dict[str, np.ndarray], diagnoses: Sequence[str] | None = None
                    ) -> dict[str, float]:
    """Held-out figures from probabilities ``p`` (:func:`livus.models.ceus.predict`): AUCs per
    feature, washout one-vs-rest AUCs and accuracy; with ``diagnoses`` also the capsule AUC
    among HCCs only (capsule labels exist only there)."""
    res = {"n": len(y["aphe"]), "aphe_auc": roc_auc(y["aphe"], p["aphe"]), "capsule_auc": roc_auc(y["capsule"], p["capsule"]),
           "washout_acc": float((p["washout"].argmax(1) == y["washout"]).mean()),
           "aphe_brier": float(np.mean((p["aphe"] - y["aphe"]) ** 2)),
           "capsule_brier": float(np.mean((p["capsule"] - y["capsule"]) ** 2))}
    for k, c in enumerate(WASHOUT_CLASSES):
        res[f"washout_{c}_auc"] = roc_auc(y["washout"] == k, p["washout"][:, k])
    if diagnoses is not None:
        hcc = np.asarray(diagnoses) == "hcc"
        res["capsule_auc_hcc_only"] = roc_auc(y["capsule"][hcc], p["capsule"][hcc])
        neg = hcc & (y["capsule"] == 0)
        res["capsule_mean_p_hcc_without"] = float(p["capsule"][neg].mean()) if neg.any() else float("nan")
    return res


def held_out_predictions(model: CeusModel, test: Sequence[LesionClip], cfg: CeusConfig, tcfg: CeusTrainConfig
                     ) -> dict[str, dict[str, np.ndarray]]:
    """Probabilities on ``test`` read through the annotated polygons, the annotated boxes and
    jittered boxes (keys ``polygon``, ``box``, ``jittered_box``)."""
    rng = np.random.default_rng(tcfg.seed + 3)
    inputs = {"polygon": lesion_samples(test, cfg, "polygon"), "box": lesion_samples(test, cfg, "box"),
              "jittered_box": lesion_samples(test, cfg, "box", rng, tcfg.box_shift, tcfg.box_scale)}
    return {name: predict(model, s) for name, s in inputs.items()}


def training_set(train: Sequence[LesionClip], cfg: CeusConfig, tcfg: CeusTrainConfig
                 ) -> tuple[list[PhaseSample], dict[str, np.ndarray]]:
    """Samples from the annotated polygons and boxes plus ``jitter_copies`` jittered copies
    (alternately polygon and box), with their labels."""
    rng = np.random.default_rng(tcfg.seed + 2)
    samples = lesion_samples(train, cfg, "polygon") + lesion_samples(train, cfg, "box")
    for k in range(tcfg.jitter_copies):
        samples += lesion_samples(train, cfg, OUTLINES[k % 2], rng, tcfg.box_shift, tcfg.box_scale)
    y = {k: np.tile(v, tcfg.jitter_copies + 2) for k, v in labels(train).items()}
    return samples, y


def fit_and_evaluate(train: Sequence[LesionClip], test: Sequence[LesionClip], cfg: CeusConfig,
                     tcfg: CeusTrainConfig) -> tuple[CeusModel, dict[str, dict[str, float]]]:
    """Train on ``train``; held-out figures on ``test`` from the annotated polygons, the annotated
    boxes and jittered boxes."""
    samples, y = training_set(train, cfg, tcfg)
    t0 = time.time()
    model = train_model(samples, y, cfg, tcfg, tcfg.seed)
    fit_s = time.time() - t0
    y_test, diag = labels(test), [x.diagnosis for x in test]
    res = {name: feature_metrics(p, y_test, diag) for name, p in held_out_predictions(model, test, cfg, tcfg).items()}
    res["polygon"]["fit_s"] = fit_s
    return model, res


def cross_validate(lesions: Sequence[LesionClip], cfg: CeusConfig, tcfg: CeusTrainConfig, folds: int = 3
                   ) -> dict[str, dict[str, float]]:
    """``folds``-fold cross-validation by clip; figures on the pooled out-of-fold predictions
    (every lesion predicted once by the model that did not see its clip)."""
    clips = np.array(sorted({x.clip_id for x in lesions}))
    fold_of = dict(zip(np.random.default_rng(tcfg.seed + 4).permutation(clips).tolist(), np.arange(len(clips)) % folds))
    order: list[LesionClip] = []
    pooled: dict[str, list[dict[str, np.ndarray]]] = {}
    for k in range(folds):
        train = [x for x in lesions if fold_of[x.clip_id] != k]
        test = [x for x in lesions if fold_of[x.clip_id] == k]
        model = train_model(*training_set(train, cfg, tcfg), cfg, tcfg, tcfg.seed)
        for name, p in held_out_predictions(model, test, cfg, tcfg).items():
            pooled.setdefault(name, []).append(p)
        order += test
    y, diag = labels(order), [x.diagnosis for x in order]
    return {name: feature_metrics({k: np.concatenate([p[k] for p in ps]) for k in ps[0]}, y, diag)
            for name, ps in pooled.items()}


def train_ceus(tcfg: CeusTrainConfig, cfg: CeusConfig | None = None, save: Path | None = None,
               lesions: list[LesionClip] | None = None) -> tuple[CeusModel, dict]:
    """Simulate (unless ``lesions`` given), split by clip, train, evaluate on held-out clips;
    write the model to ``save`` (its held-out figures in the checkpoint's meta)."""
    cfg = cfg or CeusConfig()
    if lesions is None:
        lesions = simulate_ceus_lesions(tcfg.n_clips, tcfg.seed, tcfg.image_size, tcfg.profiles, log=True)
    train, test = split_by_clip(lesions, tcfg.test_fraction, tcfg.seed)
    model, res = fit_and_evaluate(train, test, cfg, tcfg)
    report = {"n_clips": len({x.clip_id for x in lesions}), "n_train_clips": len({x.clip_id for x in train}),
              "n_test_clips": len({x.clip_id for x in test}), "n_train_lesions": len(train), "n_test_lesions": len(test),
              "held_out": res, "train_config": {k: v if not isinstance(v, tuple) else list(v) for k, v in vars(tcfg).items()}}
    if save is not None:
        model.meta = {"trained_on": "simulated CEUS clips only (livus.simulate); no real CEUS validation", **report}
        save_ceus_model(model, save)
    return model, report


def train_ceus_cli(args: argparse.Namespace) -> int:
    """``livus train ceus``: simulate, train, print held-out figures, save the model."""
    torch.set_num_threads(max(1, int(args.threads)))
    tcfg = CeusTrainConfig(n_clips=args.clips, seed=args.seed)
    _, report = train_ceus(tcfg, CeusConfig(kind=args.kind), Path(args.save) if args.save else None)
    print(json.dumps(report["held_out"], indent=1))
    if args.save:
        print(f"model written to {args.save}")
    return 0
