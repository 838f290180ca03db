"""Contrast-enhanced ultrasound (CEUS): time-intensity curves per tissue and lesion type and
contrast-mode frames rendered from the same phantom.

Curve model (per region): zero before the arrival time, then a first-order wash-in with time
constant ``rise_s`` multiplied by an exponential wash-out ``exp(-washout_per_s · (t - arrival))``.
Lesion patterns: HCC arterial hyperenhancement then late mild washout (> 60 s); metastasis rim
enhancement and early marked washout (< 60 s); haemangioma peripheral nodular enhancement with
centripetal fill-in, no washout; FNH centrifugal (spoke-wheel) enhancement, no washout; cyst
none; fat sparing/deposition and regenerative nodules follow the liver.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from livus.simulate.phantom import LesionSpec, PlaneMotion, Scene, evaluate_scene
from livus.simulate.physics import EchoMaps, ScanGeometry, display, rf_envelope

DEFAULT_TIMES_S = (0, 6, 10, 13, 16, 19, 22, 26, 30, 40, 50, 60, 75, 90, 120, 150, 180)


@dataclass(frozen=True)
class Tic:
    """Time-intensity curve parameters (intensity in units of the liver's peak ≈ 1)."""

    arrival_s: float
    rise_s: float
    amplitude: float
    washout_per_s: float

    def __call__(self, t: float) -> float:
        if t <= self.arrival_s:
            return 0.0
        dt = t - self.arrival_s
        return float(self.amplitude * (1 - np.exp(-dt / self.rise_s)) * np.exp(-self.washout_per_s * dt))


LIVER_TIC = Tic(15.0, 14.0, 1.0, 0.004)
PORTAL_TIC = Tic(13.0, 3.0, 2.6, 0.008)
HEPATIC_TIC = Tic(20.0, 6.0, 2.2, 0.006)
LESION_TICS = {
    "hcc": Tic(10.0, 4.0, 2.0, 0.012),
    "metastasis": Tic(10.0, 3.5, 1.7, 0.05),
    "hemangioma": Tic(13.0, 6.0, 1.4, 0.002),
    "fnh": Tic(9.0, 3.0, 1.9, 0.004),
    "cyst": Tic(0.0, 1.0, 0.0, 0.0),
    "focal_fat_sparing": LIVER_TIC,
    "focal_fat_deposition": LIVER_TIC,
    "regenerative_nodule": LIVER_TIC,
    "dysplastic_nodule": Tic(15.0, 14.0, 0.85, 0.004),
}


def ceus_labels(spec: LesionSpec) -> dict:
    """CEUS labels (``CEUS_FEATURE_NAMES``) implied by the lesion's enhancement pattern."""
    d = spec.diagnosis
    return {
        "arterial_phase_hyperenhancement": int(d in ("hcc", "metastasis", "fnh")),
        "washout": {"hcc": "late", "metastasis": "early"}.get(d, "none"),
        "capsule_enhancement": int(d == "hcc" and spec.halo > 0),
    }


def lesion_enhancement(spec: LesionSpec, t: float, rho: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Contrast intensity inside one lesion at time ``t`` (s after injection)."""
    tic = LESION_TICS[spec.diagnosis]
    c = np.float32(tic(t))
    if spec.diagnosis == "metastasis":
        return np.where(rho > 0.6, c, 0.25 * c).astype(np.float32)
    if spec.diagnosis == "hemangioma":
        fill = np.clip((t - tic.arrival_s) / 60.0, 0, 1)
        nodular = 0.12 * (1 + np.cos(6 * phi))
        return np.where(rho > 1 - fill - nodular * (fill < 1), c, 0.05).astype(np.float32)
    if spec.diagnosis == "fnh":
        fill = np.clip((t - tic.arrival_s) / 6.0, 0, 1)
        return np.where(rho < fill, c, 0.0).astype(np.float32)
    out = np.full(rho.shape, c, np.float32)
    if spec.diagnosis == "hcc" and spec.halo > 0 and t > 60:
        out = np.where(rho > 1 - spec.halo, max(LIVER_TIC(t) * 1.3, float(c)), out)
    return out


def contrast_map(scene: Scene, X: np.ndarray, Z: np.ndarray, t: float, motion: PlaneMotion | None = None,
                 tissue_leak: float = 0.004) -> EchoMaps:
    """Contrast-mode backscatter amplitude at time ``t`` (tissue mostly suppressed)."""
    m = evaluate_scene(scene, X, Z, motion)
    amp = tissue_leak * m.echo
    amp = amp + m.liver * LIVER_TIC(t) + m.vessel_portal * PORTAL_TIC(t) + m.vessel_hepatic * HEPATIC_TIC(t)
    for spec, w, rho, phi in zip(scene.lesions, m.lesion_weight, m.lesion_rho, m.lesion_phi):
        if not w.any():
            continue
        amp = amp * (1 - w) + w * lesion_enhancement(spec, t, rho, phi)
    atten = np.full(amp.shape, 0.5, np.float32)
    return EchoMaps(np.sqrt(np.maximum(amp, 0)).astype(np.float32) * 1.0, atten, None)


def render_ceus(scene: Scene, geom: ScanGeometry, rng: np.random.Generator, t: float,
                motion: PlaneMotion | None = None, liver_grey: float = 95.0) -> np.ndarray:
    """One contrast-mode frame (uint8). Intensity is rendered as amplitude √C (power ∝ C)."""
    maps = contrast_map(scene, geom.X, geom.Z, t, motion)
    env = rf_envelope(geom, maps, rng)
    return display(geom, env, liver_grey)
