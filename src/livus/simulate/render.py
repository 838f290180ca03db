"""Scene → B-mode image and its pixel labels (lesion instance mask, polygons, ellipses,
liver outline), in the exported image's pixels."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from livus.io.dataset import LesionAnnotation
from livus.shapes import ellipse_from_polygon
from livus.simulate.phantom import LesionSpec, PlaneMotion, Scene, evaluate_scene, lesion_features
from livus.simulate.physics import EchoMaps, ScanGeometry, display, rf_envelope

MIN_LESION_AREA_PX = 6


@dataclass
class LabelledLesion:
    """A lesion as visible in one image: its spec and its annotation in image pixels."""

    spec: LesionSpec
    annotation: LesionAnnotation


def render_bmode(scene: Scene, geom: ScanGeometry, rng: np.random.Generator, motion: PlaneMotion | None = None,
                 liver_grey: float = 80.0, scat: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """B-mode image (uint8, fan only) and the polar envelope before log compression."""
    m = evaluate_scene(scene, geom.X, geom.Z, motion)
    env = rf_envelope(geom, EchoMaps(m.echo, m.atten, m.extra), rng, scat=scat)
    return display(geom, env, liver_grey), env


def _largest_contour(mask: np.ndarray) -> np.ndarray | None:
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    c = max(contours, key=cv2.contourArea)
    return c.reshape(-1, 2) if len(c) >= 3 else None


def lesion_labels(scene: Scene, geom: ScanGeometry, motion: PlaneMotion | None = None) -> tuple[np.ndarray, list[LabelledLesion]]:
    """Instance mask (value k = k-th visible lesion) and annotations of the visible lesions.

    The mask is the set of pixels whose lesion-normalised radius is < 1 (the same outline the
    renderer uses), clipped to the fan. The ellipse is measured from the mask's outline.
    """
    motion = motion or PlaneMotion()
    mask = np.zeros((geom.height, geom.width), np.uint8)
    out: list[LabelledLesion] = []
    for les in scene.lesions:
        s = les.section_scale(motion.elev_mm)
        if s <= 0:
            continue
        r_mm = 1.5 * max(les.a, les.b) * s + 2
        # lesion centre in the probe frame: invert the plane motion
        c, sn = np.cos(np.radians(motion.rot_deg)), np.sin(np.radians(motion.rot_deg))
        bx, bz = les.cx - motion.dx_mm, les.cz - motion.dz_mm
        px, pz = c * bx + sn * bz, -sn * bx + c * bz
        u, v = geom.mm_to_px(px, pz)
        r_px = r_mm / geom.spacing_mm
        x0, x1 = int(max(np.floor(u - r_px), 0)), int(min(np.ceil(u + r_px) + 1, geom.width))
        y0, y1 = int(max(np.floor(v - r_px), 0)), int(min(np.ceil(v + r_px) + 1, geom.height))
        if x1 <= x0 or y1 <= y0:
            continue
        uu, vv = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
        X, Z = geom.px_to_mm(uu, vv)
        Xb, Zb = motion.apply(X.astype(np.float32), Z.astype(np.float32))
        rho, _ = les.rho_phi(Xb, Zb, motion.elev_mm)
        m = ((rho < 1) & (geom.fan_mask[y0:y1, x0:x1] > 0)).astype(np.uint8)
        if int(m.sum()) < MIN_LESION_AREA_PX:
            continue
        contour = _largest_contour(m)
        if contour is None:
            continue
        k = len(out) + 1
        mask[y0:y1, x0:x1][m > 0] = k
        poly = (contour + np.array([x0, y0])).astype(float).tolist()
        ann = LesionAnnotation(
            polygon_px=poly,
            ellipse=ellipse_from_polygon(poly),
            malignant=les.malignant,
            diagnosis=les.diagnosis,
            features=lesion_features(les),
            lesion_id=les.lesion_id,
            mask_value=k,
        )
        out.append(LabelledLesion(les, ann))
    return mask, out


def liver_polygon(scene: Scene, geom: ScanGeometry, motion: PlaneMotion | None = None, step_px: int = 4) -> list[list[float]] | None:
    """Outline of the largest liver region inside the fan (image pixels), evaluated on a
    coarse grid (``step_px``) for speed."""
    motion = motion or PlaneMotion()
    us = np.arange(0, geom.width, step_px, dtype=np.float32)
    vs = np.arange(0, geom.height, step_px, dtype=np.float32)
    uu, vv = np.meshgrid(us, vs)
    X, Z = geom.px_to_mm(uu, vv)
    Xb, Zb = motion.apply(X.astype(np.float32), Z.astype(np.float32))
    wall_ok = scene.skin_depth(X, Z) > scene.wall_mm + 0.8
    m = scene.in_liver(Xb, Zb) & wall_ok & (geom.fan_mask[::step_px, ::step_px] > 0)
    contour = _largest_contour(m.astype(np.uint8))
    if contour is None or cv2.contourArea(contour.astype(np.float32)) < 4:
        return None
    return [[float(x * step_px), float(y * step_px)] for x, y in contour]
