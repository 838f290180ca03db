"""CEUS feature heads: arterial-phase hyperenhancement, washout (none / late / early) and
capsule-like enhancement of ONE lesion, from a contrast-mode clip.

Input of one lesion: contrast-mode frames (grey, original pixels), each frame's time after
injection (seconds) and the lesion's axis-aligned box ``[x0, y0, x1, y1]`` in that frame's
original pixels (a tracked or annotated box; ``None`` where the lesion was not found),
optionally its outline polygon per frame (else the ellipse inscribed in the box is used).

Phase samples (:func:`phase_samples`): the clip is read at ``CeusConfig.slot_times_s``
(baseline, arterial 10–30 s, portal 30–120 s, late > 120 s). Each slot averages the frames
whose time lies between the midpoints to its neighbouring slots (the nearest frame when none
does) and carries that time (s/180) and a flag (1 = a frame lay in the slot's window) as
inputs, so clips sampled at any times can be read. Per slot the model sees either

* ``kind="mlp"``: hand-crafted time-intensity measurements (:func:`frame_measurements`):
  bands of a normalised radius ρ (distance to the outline in units of the lesion's
  equivalent radius: core ρ < 0.5, inner 0.5–0.8, three bands 0.8–1.1 across the outline)
  compared with a ring of surrounding liver (ρ 1.3–1.9, median); grey levels are
  log-compressed, so differences are ratios in dB-like units; or
* ``kind="cnn"``: the lesion crop (crop rule of :mod:`livus.preprocess.crops`, margin 0.5, image
  and ellipse-mask channels, ``crop_px`` square) through a small shared conv encoder.

Heads: ``aphe`` (one logit), ``washout`` (three logits, order ``WASHOUT_CLASSES``),
``capsule`` (one logit). Checkpoints (:func:`save_ceus_model` / :func:`load_ceus_model`) hold
float16 weights, the config and the feature normalisation (well under 1 MB).

Pipeline entry: :func:`ceus_features_for_lesion` (frames, times, per-frame boxes) or
:func:`ceus_features_for_track` (``Frame`` list + a ``LesionTrack`` of the tracker).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from livus.config import to_dict
from livus.types import Frame, LesionTrack

CHECKPOINT_KIND = "livus.ceus/1"
WASHOUT_CLASSES = ("none", "late", "early")
TIME_SCALE_S = 180.0
MEASUREMENT_NAMES = ("ring", "lesion_minus_ring", "core_minus_ring", "inner_minus_ring", "band_0.8_0.9_minus_ring",
                     "band_0.9_1.0_minus_ring", "band_1.0_1.1_minus_ring", "lesion_std", "frac_above_ring")
RING = (1.3, 1.9)  # normalised radii of the surrounding-liver ring
Box = Sequence[float]  # [x0, y0, x1, y1], original pixels
Polygon = Sequence[Sequence[float]]  # [[x, y], ...], original pixels


@dataclass
class CeusConfig:
    """CEUS feature model (see the module docstring)."""

    kind: str = "mlp"  # mlp (hand-crafted measurements) | cnn (phase crops)
    slot_times_s: tuple[float, ...] = (3.0, 12.0, 16.0, 20.0, 25.0, 30.0, 45.0, 60.0, 90.0, 120.0, 150.0, 180.0)
    hidden: int = 64
    dropout: float = 0.2
    crop_px: int = 32  # cnn: phase-crop side (model pixels)
    crop_margin: float = 0.5  # cnn: crop side = box side * (1 + 2 * margin)
    cnn_widths: tuple[int, ...] = (8, 16, 32)

    @property
    def n_slots(self) -> int:
        return len(self.slot_times_s)


# ----------------------------------------------------------------------------- measurements


def _grey(frame: np.ndarray) -> np.ndarray:
    """2-D grey view of a frame (colour frames are averaged over channels)."""
    f = np.asarray(frame)
    return f.mean(axis=2) if f.ndim == 3 else f


def _outline_mask(shape: tuple[int, int], box: Box, polygon: Polygon | None) -> np.ndarray:
    """uint8 0/1 lesion region (pixels of an image of ``shape``): ``polygon`` when given, else the
    ellipse inscribed in ``box``."""
    from livus.preprocess.crops import lesion_region_mask

    x0, y0, x1, y1 = (float(v) for v in box)
    ellipse = ((x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, 1.0), max(y1 - y0, 1.0), 0.0)
    return lesion_region_mask(shape, polygon if polygon is not None and len(polygon) >= 3 else None, ellipse)


def _norm_radius(shape: tuple[int, int], box: Box, polygon: Polygon | None, reach: float
                 ) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Normalised radius ρ over a window of the image around the lesion, and the window's slices.

    ρ = 1 ∓ (distance to the outline) / r_eq (inside / outside), ``r_eq`` = radius of the disc of
    the lesion's area: 0 at the deepest point of a disc, 1 on the outline, 1.5 half a radius
    outside. The outline is ``polygon`` when given, else the ellipse inscribed in ``box``; the
    window reaches ``reach`` box half-sides from the box centre.
    """
    import cv2

    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = max(x1 - x0, y1 - y0, 2.0) / 2
    h, w = shape
    xa, xb = max(int(np.floor(cx - reach * half)), 0), min(int(np.ceil(cx + reach * half)) + 1, w)
    ya, yb = max(int(np.floor(cy - reach * half)), 0), min(int(np.ceil(cy + reach * half)) + 1, h)
    if xb <= xa or yb <= ya:
        return np.zeros((0, 0), np.float32), (slice(0, 0), slice(0, 0))
    shifted_poly = None if polygon is None else [[p[0] - xa, p[1] - ya] for p in polygon]
    mask = _outline_mask((yb - ya, xb - xa), [x0 - xa, y0 - ya, x1 - xa, y1 - ya], shifted_poly)
    if not mask.any():
        return np.full(mask.shape, 9.0, np.float32), (slice(ya, yb), slice(xa, xb))
    r_eq = max(float(np.sqrt(mask.sum() / np.pi)), 1.0)
    d_in = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    d_out = cv2.distanceTransform(1 - mask, cv2.DIST_L2, 3)
    rho = np.where(mask > 0, 1.0 - (d_in - 0.5) / r_eq, 1.0 + (d_out - 0.5) / r_eq)
    return rho.astype(np.float32), (slice(ya, yb), slice(xa, xb))


def frame_measurements(frame: np.ndarray, box: Box, polygon: Polygon | None = None) -> np.ndarray:
    """``MEASUREMENT_NAMES`` of one lesion in one contrast frame (grey / 255 units).

    ``frame``: uint8 grey (or colour) original pixels; ``box``: ``[x0, y0, x1, y1]`` and optional
    outline ``polygon`` ``[[x, y], ...]``, original pixels. Regions are bands of the normalised
    radius ρ (:func:`_norm_radius`): core < 0.5, inner 0.5–0.8, then 0.8–0.9, 0.9–1.0, 1.0–1.1
    around the outline, and the liver ring ``RING`` (its median; pixels exactly 0, outside the
    fan, are ignored). All but ``ring`` and ``lesion_std`` are relative to the ring.
    """
    g = _grey(frame)
    rho, win = _norm_radius(g.shape[:2], box, polygon, 1.0 + 2 * (RING[1] - 1.0))
    v = g[win].astype(np.float32) / 255.0
    lesion = v[rho < 1.0]
    ring_px = v[(rho >= RING[0]) & (rho < RING[1]) & (v > 0)]
    if lesion.size == 0:
        return np.zeros(len(MEASUREMENT_NAMES), np.float32)
    ring = float(np.median(ring_px)) if ring_px.size else 0.0

    def band(lo: float, hi: float) -> float:
        r = v[(rho >= lo) & (rho < hi)]
        return (float(r.mean()) if r.size else float(lesion.mean())) - ring

    return np.array([ring, lesion.mean() - ring, band(-9.0, 0.5), band(0.5, 0.8), band(0.8, 0.9), band(0.9, 1.0),
                     band(1.0, 1.1), lesion.std(), (lesion > ring).mean()], np.float32)


def phase_crop(frame: np.ndarray, box: Box, cfg: CeusConfig, polygon: Polygon | None = None) -> np.ndarray:
    """``(2, crop_px, crop_px)`` float32 phase crop (crop rule of :mod:`livus.preprocess.crops`): grey
    in ``[0, 1]`` and the lesion region (``polygon``, else the ellipse inscribed in ``box``)."""
    from livus.preprocess.crops import crop_box_for_bbox, crop_matrix, extract_crop

    g = _grey(frame).astype(np.uint8)
    m = crop_matrix(crop_box_for_bbox(list(box), cfg.crop_margin, 8.0), cfg.crop_px)
    return extract_crop(g, _outline_mask(g.shape, box, polygon), m, cfg.crop_px)


@dataclass
class PhaseSample:
    """Model input of one lesion: per slot ``measurements`` (S, M), ``crops`` (S, 2, P, P) when
    requested, ``times`` (S, 2) = (slot time / 180 s, 1 if a frame lay in the slot window)."""

    measurements: np.ndarray
    times: np.ndarray
    crops: np.ndarray | None = None


def _slot_windows(slot_times_s: Sequence[float]) -> list[tuple[float, float]]:
    t = np.asarray(slot_times_s, float)
    mids = (t[1:] + t[:-1]) / 2
    lo = np.concatenate([[-np.inf], mids])
    hi = np.concatenate([mids, [np.inf]])
    return list(zip(lo.tolist(), hi.tolist()))


def phase_samples(frames: Sequence[np.ndarray], times_s: Sequence[float], boxes_px: Sequence[Box | None],
                  cfg: CeusConfig, with_crops: bool | None = None,
                  polygons_px: Sequence[Polygon | None] | None = None) -> PhaseSample:
    """Read one lesion's clip at the config's slots (see the module docstring).

    ``frames``: grey frames (original pixels); ``times_s``: seconds after injection per frame;
    ``boxes_px``: the lesion's ``[x0, y0, x1, y1]`` per frame (original pixels) or ``None``
    where it was not found; ``polygons_px``: optional outlines per frame (``None`` entries: the
    ellipse inscribed in the box). Raises ``ValueError`` when no frame has a box.
    """
    polygons_px = [None] * len(boxes_px) if polygons_px is None else polygons_px
    if not (len(frames) == len(times_s) == len(boxes_px) == len(polygons_px)):
        raise ValueError("frames, times_s, boxes_px (and polygons_px) must have the same length")
    keep = [i for i, b in enumerate(boxes_px) if b is not None]
    if not keep:
        raise ValueError("the lesion has no box in any frame")
    with_crops = cfg.kind == "cnn" if with_crops is None else with_crops
    t = np.asarray([float(times_s[i]) for i in keep])
    meas = np.stack([frame_measurements(frames[i], boxes_px[i], polygons_px[i]) for i in keep])
    crops = np.stack([phase_crop(frames[i], boxes_px[i], cfg, polygons_px[i]) for i in keep]) if with_crops else None
    m_out, t_out, c_out = [], [], []
    for (lo, hi), target in zip(_slot_windows(cfg.slot_times_s), cfg.slot_times_s):
        sel = np.flatnonzero((t >= lo) & (t < hi))
        inside = sel.size > 0
        if not inside:
            sel = np.array([int(np.argmin(np.abs(t - target)))])
        m_out.append(meas[sel].mean(axis=0))
        t_out.append([float(t[sel].mean()) / TIME_SCALE_S, float(inside)])
        if crops is not None:
            c_out.append(crops[sel[len(sel) // 2]])
    return PhaseSample(np.stack(m_out).astype(np.float32), np.asarray(t_out, np.float32),
                       np.stack(c_out).astype(np.float32) if crops is not None else None)


# ----------------------------------------------------------------------------- model


class CeusModel(nn.Module):
    """Small CEUS feature model: per-slot encoder (identity on the normalised measurements, or a
    tiny CNN on phase crops) + slot times → MLP → ``aphe`` / ``washout`` / ``capsule`` logits."""

    def __init__(self, cfg: CeusConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or CeusConfig()
        n_meas = len(MEASUREMENT_NAMES)
        self.register_buffer("mean", torch.zeros(n_meas))
        self.register_buffer("std", torch.ones(n_meas))
        if self.cfg.kind == "mlp":
            self.encoder: nn.Module | None = None
            per_slot = n_meas
        elif self.cfg.kind == "cnn":
            layers: list[nn.Module] = []
            c_in = 2
            for c in self.cfg.cnn_widths:
                layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
                c_in = c
            self.encoder = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
            per_slot = c_in
        else:
            raise ValueError(f"unknown CEUS model kind {self.cfg.kind!r} (mlp | cnn)")
        d = self.cfg.n_slots * (per_slot + 2)
        self.trunk = nn.Sequential(nn.Linear(d, self.cfg.hidden), nn.ReLU(inplace=True), nn.Dropout(self.cfg.dropout),
                                   nn.Linear(self.cfg.hidden, self.cfg.hidden), nn.ReLU(inplace=True))
        self.aphe = nn.Linear(self.cfg.hidden, 1)
        self.washout = nn.Linear(self.cfg.hidden, len(WASHOUT_CLASSES))
        self.capsule = nn.Linear(self.cfg.hidden, 1)
        self.meta: dict[str, Any] = {}

    def forward(self, x: torch.Tensor, times: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x``: (N, S, M) raw measurements (mlp) or (N, S, 2, P, P) crops (cnn); ``times``:
        (N, S, 2). Returns logits ``aphe`` (N,), ``washout`` (N, 3), ``capsule`` (N,)."""
        n, s = times.shape[:2]
        if self.encoder is None:
            z = (x - self.mean) / self.std
        else:
            z = self.encoder(x.reshape(n * s, *x.shape[2:])).reshape(n, s, -1)
        h = self.trunk(torch.cat([z, times], dim=2).reshape(n, -1))
        return {"aphe": self.aphe(h)[:, 0], "washout": self.washout(h), "capsule": self.capsule(h)[:, 0]}

    def set_normalisation(self, measurements: np.ndarray) -> None:
        """Per-measurement mean/std from training samples ``(N, S, M)``."""
        m = measurements.reshape(-1, measurements.shape[-1])
        self.mean.copy_(torch.from_numpy(m.mean(axis=0)))
        self.std.copy_(torch.from_numpy(m.std(axis=0) + 1e-3))


def model_inputs(samples: Sequence[PhaseSample], kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack phase samples into the ``(x, times)`` tensors of :meth:`CeusModel.forward`."""
    if kind == "cnn":
        if any(s.crops is None for s in samples):
            raise ValueError("the cnn model needs phase samples built with crops")
        x = np.stack([s.crops for s in samples])
    else:
        x = np.stack([s.measurements for s in samples])
    return torch.from_numpy(x), torch.from_numpy(np.stack([s.times for s in samples]))


@torch.no_grad()
def predict(model: CeusModel, samples: Sequence[PhaseSample]) -> dict[str, np.ndarray]:
    """Probabilities per lesion: ``aphe`` (N,), ``washout`` (N, 3) softmax, ``capsule`` (N,)."""
    if not samples:
        return {"aphe": np.zeros(0), "washout": np.zeros((0, len(WASHOUT_CLASSES))), "capsule": np.zeros(0)}
    was_training = model.training
    model.eval()
    out = model(*model_inputs(samples, model.cfg.kind))
    model.train(was_training)
    return {"aphe": torch.sigmoid(out["aphe"]).numpy(), "washout": torch.softmax(out["washout"], dim=1).numpy(),
            "capsule": torch.sigmoid(out["capsule"]).numpy()}


def ceus_features_for_lesion(frames: Sequence[np.ndarray], times_s: Sequence[float],
                             lesion_boxes_px: Sequence[Box | None], model: CeusModel,
                             lesion_polygons_px: Sequence[Polygon | None] | None = None) -> dict[str, float]:
    """CEUS feature probabilities of one lesion of a contrast clip.

    ``frames``: contrast-mode frames (uint8 grey, original pixels); ``times_s``: seconds after
    injection of each frame; ``lesion_boxes_px``: the lesion's ``[x0, y0, x1, y1]`` in each
    frame (original pixels; ``None`` where not found); ``lesion_polygons_px``: optional outline
    ``[[x, y], ...]`` per frame (e.g. ``Lesion.polygon_px``), used instead of the ellipse
    inscribed in the box where given. Returns
    ``{"arterial_phase_hyperenhancement", "washout_none", "washout_late", "washout_early",
    "capsule_enhancement"}`` → probability (the three washout values sum to 1).
    """
    p = predict(model, [phase_samples(frames, times_s, lesion_boxes_px, model.cfg, polygons_px=lesion_polygons_px)])
    out = {"arterial_phase_hyperenhancement": float(p["aphe"][0])}
    out.update({f"washout_{c}": float(p["washout"][0, k]) for k, c in enumerate(WASHOUT_CLASSES)})
    out["capsule_enhancement"] = float(p["capsule"][0])
    return out


def ceus_features_for_track(frames: Sequence[Frame], track: LesionTrack, model: CeusModel,
                            seconds_after_injection: Sequence[float]) -> dict[str, float]:
    """:func:`ceus_features_for_lesion` for a tracked lesion of the analysis pipeline.

    ``frames``: the clip's frames (``livus.types.Frame``, any subset, matched to the track by
    ``frame_index``); ``track``: its ``observations`` give the lesion per frame (box from
    ``livus.models.classifier.lesion_box_xyxy``, outline from ``Lesion.polygon_px``);
    ``seconds_after_injection``: per entry of ``frames`` (``Frame.time_s`` is the time in the
    clip, not since the injection: add the injection offset).
    """
    from livus.models.classifier import lesion_box_xyxy

    pos = {f.frame_index: i for i, f in enumerate(frames)}
    boxes: list[Box | None] = [None] * len(frames)
    polys: list[Polygon | None] = [None] * len(frames)
    for fi, les in track.observations:
        if fi in pos:
            boxes[pos[fi]] = lesion_box_xyxy(les)
            polys[pos[fi]] = les.polygon_px if len(les.polygon_px) >= 3 else None
    return ceus_features_for_lesion([f.pixels for f in frames], seconds_after_injection, boxes, model, polys)


# ----------------------------------------------------------------------------- checkpoints


def save_ceus_model(model: CeusModel, path: str | Path, meta: dict[str, Any] | None = None) -> None:
    """Write float16 weights, config, normalisation and ``meta`` to ``path``."""
    state = {k: (v.half() if v.is_floating_point() and v.ndim > 0 and k not in ("mean", "std") else v)
             for k, v in model.state_dict().items()}
    torch.save({"kind": CHECKPOINT_KIND, "config": to_dict(model.cfg), "state_dict": state,
                "meta": dict(meta or model.meta or {})}, Path(path))


def load_ceus_model(path: str | Path) -> CeusModel:
    """Read a checkpoint of :func:`save_ceus_model` (eval mode, ``.meta`` attached)."""
    from livus.models.checkpoint import load_kind_checkpoint

    return load_kind_checkpoint(path, CHECKPOINT_KIND, "CEUS", CeusConfig, CeusModel)


__all__ = ["CeusConfig", "CeusModel", "PhaseSample", "WASHOUT_CLASSES", "MEASUREMENT_NAMES", "frame_measurements",
           "phase_crop", "phase_samples", "model_inputs", "predict", "ceus_features_for_lesion", "ceus_features_for_track",
           "save_ceus_model",
           "load_ceus_model"]
