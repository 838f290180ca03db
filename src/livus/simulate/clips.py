"""B-mode and CEUS clips: the image plane moves through a 3-D phantom (elevation sweep,
breathing, drift, slight rotation), so each lesion keeps its ``lesion_id`` across frames.

Frames of varying quality are included on purpose: a rib shadow sweeping in ("shadowed") and
the probe sliding off the liver ("out_of_liver"); ``SimulatedImage.extra["quality"]`` says
which ("good" otherwise).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from livus.simulate.ceus import DEFAULT_TIMES_S, ceus_labels, render_ceus
from livus.simulate.overlays import OverlayInfo, OverlayOptions
from livus.simulate.phantom import Ellipse, PlaneMotion, Scene
from livus.simulate.physics import ScanGeometry, scatterers
from livus.simulate.render import render_bmode
from livus.simulate.scenes import add_rib
from livus.simulate.still import DEFAULT_LIVER_GREY, SimulatedImage, finish_frame


@dataclass(frozen=True)
class ClipMotion:
    """Probe motion parameters (mm, degrees, seconds)."""

    elev_sweep_mm: float = 8.0
    breath_amp_mm: float = 4.0
    breath_period_s: float = 4.0
    drift_mm: float = 3.0
    rot_amp_deg: float = 3.0

    def pose(self, t: float, duration: float) -> PlaneMotion:
        f = t / max(duration, 1e-6) - 0.5
        return PlaneMotion(dx_mm=self.drift_mm * f,
                           dz_mm=self.breath_amp_mm * np.sin(2 * np.pi * t / self.breath_period_s),
                           rot_deg=self.rot_amp_deg * np.sin(np.pi * f),
                           elev_mm=self.elev_sweep_mm * f)


def frame_qualities(rng: np.random.Generator, n: int, bad_events: bool) -> list[str]:
    """Per-frame quality labels: a few shadowed frames and out-of-liver frames at one end."""
    q = ["good"] * n
    if not bad_events or n < 8:
        return q
    k = int(rng.integers(2, max(n // 4, 3)))
    s = int(rng.integers(1, n - k - 3))
    for i in range(s, s + k):
        q[i] = "shadowed"
    m = int(rng.integers(1, 3))
    for i in range(n - m, n):
        q[i] = "out_of_liver"
    return q


def _scene_for_quality(scene: Scene, quality: str, rng: np.random.Generator, geom: ScanGeometry) -> Scene:
    if quality == "good":
        return scene
    s = copy.copy(scene)
    half_w = geom.X.max()
    if quality == "shadowed":
        s.ribs = list(scene.ribs)
        add_rib(rng, s, float(half_w), x_frac=float(rng.uniform(-0.15, 0.15)))
    else:
        s.out_of_liver = True
        s.gas = [Ellipse(float(rng.uniform(-0.3, 0.3) * half_w), float(scene.wall_mm + rng.uniform(8, 20)),
                         float(rng.uniform(10, 20)), float(rng.uniform(3, 6)))]
    return s


def simulate_bmode_clip(rng: np.random.Generator, geom: ScanGeometry, scene: Scene, n_frames: int = 20,
                        fps: float = 10.0, info: OverlayInfo | None = None, motion: ClipMotion | None = None,
                        bad_events: bool = True, speckle_corr: float = 0.8) -> list[SimulatedImage]:
    """Frames of a B-mode sweep; overlays (same options for the whole clip) when ``info``."""
    motion = motion or ClipMotion(elev_sweep_mm=float(rng.uniform(4, 12)))
    options = OverlayOptions.random(rng, False)
    duration = n_frames / fps
    quality = frame_qualities(rng, n_frames, bad_events)
    scat = scatterers(rng, geom.shape_polar)
    frames = []
    for i in range(n_frames):
        t = i / fps
        pose = motion.pose(t, duration)
        sc = _scene_for_quality(scene, quality[i], rng, geom)
        scat = np.sqrt(speckle_corr) * scat + np.sqrt(1 - speckle_corr) * scatterers(rng, geom.shape_polar)
        img, _ = render_bmode(sc, geom, rng, pose, DEFAULT_LIVER_GREY, scat=scat)
        fr = finish_frame(img, sc, geom, rng, info, options, pose)
        fr.extra.update(quality=quality[i], time_s=round(t, 3), pose=[round(pose.dx_mm, 3), round(pose.dz_mm, 3),
                                                                      round(pose.rot_deg, 3), round(pose.elev_mm, 3)])
        frames.append(fr)
    return frames


def simulate_ceus_clip(rng: np.random.Generator, geom: ScanGeometry, scene: Scene,
                       times_s: tuple[float, ...] = DEFAULT_TIMES_S, info: OverlayInfo | None = None,
                       breath_amp_mm: float = 2.0) -> list[SimulatedImage]:
    """Contrast-mode frames at ``times_s`` seconds after injection (slight breathing motion)."""
    options = OverlayOptions.random(rng, False)
    options.calipers = False
    frames = []
    for t in times_s:
        pose = PlaneMotion(dz_mm=breath_amp_mm * np.sin(2 * np.pi * t / 4.0))
        img = render_ceus(scene, geom, rng, float(t), pose)
        fr = finish_frame(img, scene, geom, rng, info, options, pose)
        for lab in fr.lesions:
            lab.annotation.ceus = ceus_labels(lab.spec)
        fr.extra.update(quality="good", seconds_after_injection=float(t), mode="ceus")
        frames.append(fr)
    return frames
