"""One labelled simulated B-mode still (image + lesion mask + overlay mask + labels)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from livus.simulate.overlays import OverlayInfo, OverlayOptions, draw_overlays
from livus.simulate.phantom import PlaneMotion, Scene
from livus.simulate.physics import ScanGeometry, build_geometry
from livus.simulate.profiles import ScannerProfile
from livus.simulate.render import LabelledLesion, lesion_labels, liver_polygon, render_bmode
from livus.simulate.scenes import sample_scene

DEFAULT_LIVER_GREY = 80.0


@dataclass
class SimulatedImage:
    """A simulated frame with all its labels (image pixels)."""

    image: np.ndarray  # uint8 (H, W), overlays burned in
    clean: np.ndarray  # uint8 (H, W), the same without overlays
    lesion_mask: np.ndarray  # uint8 instance mask
    overlay_mask: np.ndarray  # uint8 0/1
    lesions: list[LabelledLesion]
    geom: ScanGeometry
    scene: Scene
    liver_polygon: list[list[float]] | None
    envelope: np.ndarray | None = None  # polar envelope before log compression
    extra: dict = field(default_factory=dict)

    @property
    def image_class(self) -> str:
        if not self.lesions:
            return "normal"
        return "malignant" if any(lab.spec.malignant for lab in self.lesions) else "benign"

    @property
    def pixel_spacing_mm(self) -> tuple[float, float]:
        return (float(self.geom.spacing_mm), float(self.geom.spacing_mm))


class GeometryCache:
    """Scan geometries keyed by profile, image size and fan offset (building one costs a few
    ms per megapixel, so a dataset run reuses them)."""

    def __init__(self) -> None:
        self._items: dict[tuple, ScanGeometry] = {}

    def get(self, profile: ScannerProfile, size: tuple[int, int] | None = None, u_offset_frac: float = 0.0) -> ScanGeometry:
        key = (profile, size, round(u_offset_frac, 3))
        if key not in self._items:
            self._items[key] = build_geometry(profile, size, u_offset_frac)
        return self._items[key]


def overlay_info_for(profile: ScannerProfile, patient_name: str, patient_id: str, when: datetime) -> OverlayInfo:
    probe = {"convex": "C", "linear": "L"}[profile.probe] + f"{profile.freq_mhz + 2:.0f}-{max(profile.freq_mhz - 2, 1):.0f}"
    return OverlayInfo(profile.vendor, patient_name, patient_id, when, probe, profile.freq_mhz, profile.gain_db,
                       profile.dynamic_range_db, profile.depth_mm, profile.focus_mm)


def finish_frame(img: np.ndarray, scene: Scene, geom: ScanGeometry, rng: np.random.Generator,
                 info: OverlayInfo | None, options: OverlayOptions | None, motion: PlaneMotion | None = None,
                 envelope: np.ndarray | None = None) -> SimulatedImage:
    """Labels + overlays for an already rendered frame."""
    mask, lesions = lesion_labels(scene, geom, motion)
    liver = liver_polygon(scene, geom, motion)
    if info is not None:
        options = options or OverlayOptions.random(rng, bool(lesions))
        shown, ov = draw_overlays(img, geom, info, options, rng, [lab.annotation for lab in lesions])
    else:
        shown, ov = img, np.zeros_like(img)
    return SimulatedImage(shown, img, mask, ov, lesions, geom, scene, liver, envelope)


def simulate_still(rng: np.random.Generator, geom: ScanGeometry, image_class: str | None = None,
                   info: OverlayInfo | None = None, options: OverlayOptions | None = None,
                   liver_grey: float = DEFAULT_LIVER_GREY, keep_envelope: bool = False,
                   scene: Scene | None = None) -> SimulatedImage:
    """Sample a scene (unless given) and render one labelled still; overlays when ``info``."""
    scene = scene or sample_scene(rng, geom, image_class)
    img, env = render_bmode(scene, geom, rng, liver_grey=liver_grey)
    return finish_frame(img, scene, geom, rng, info, options, envelope=env if keep_envelope else None)
