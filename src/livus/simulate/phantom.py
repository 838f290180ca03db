"""Digital phantom: abdominal wall, liver (normal / steatosis / cirrhosis) with capsule,
diaphragm, vessels, gallbladder, kidney, ribs, bowel gas, ascites, and focal lesions.

Everything is an analytic description in the phantom frame ``(X, Z)`` in mm (see
``physics``) plus an elevation coordinate ``E`` (mm, across the image plane) so that a clip
can move the image plane through 3-D lesions (ellipsoids) and keep their identity. Random
textures are sums of cosines with fixed wave vectors, so a scene is evaluated identically at
any point and in any frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from livus.vocab import FEATURE_NAMES

if TYPE_CHECKING:
    from livus.simulate.diffuse import DiffusePattern

LIVER_STATES = ("normal", "steatosis", "cirrhosis")
MALIGNANT_DIAGNOSES = ("hcc", "metastasis")
BENIGN_DIAGNOSES = ("hemangioma", "cyst", "fnh", "focal_fat_sparing", "focal_fat_deposition",
                    "regenerative_nodule", "dysplastic_nodule")
DIAGNOSES = MALIGNANT_DIAGNOSES + BENIGN_DIAGNOSES
# diameter range (mm) per diagnosis: log-uniform draws put many lesions below 10 mm
DIAMETER_RANGE_MM = {
    "hcc": (4.0, 80.0), "metastasis": (4.0, 45.0), "hemangioma": (3.0, 50.0), "cyst": (3.0, 60.0),
    "fnh": (8.0, 50.0), "focal_fat_sparing": (10.0, 45.0), "focal_fat_deposition": (10.0, 45.0),
    "regenerative_nodule": (3.0, 12.0), "dysplastic_nodule": (5.0, 20.0),
}


@dataclass
class CosField:
    """Smooth random field: unit-variance sum of cosines (wave vectors in rad/mm)."""

    kx: np.ndarray
    kz: np.ndarray
    phase: np.ndarray

    @staticmethod
    def random(rng: np.random.Generator, n: int, wavelength_mm: tuple[float, float]) -> "CosField":
        lam = np.exp(rng.uniform(np.log(wavelength_mm[0]), np.log(wavelength_mm[1]), n))
        ang = rng.uniform(0, np.pi, n)
        k = 2 * np.pi / lam
        return CosField(k * np.cos(ang), k * np.sin(ang), rng.uniform(0, 2 * np.pi, n))

    def __call__(self, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
        out = np.zeros(np.shape(X), np.float32)
        for kx, kz, ph in zip(self.kx, self.kz, self.phase):
            out += np.cos(kx * X + kz * Z + ph).astype(np.float32)
        return out * np.float32(np.sqrt(2.0 / max(len(self.kx), 1)))


@dataclass
class Ellipse:
    """An ellipse (or ellipsoid section) in the phantom frame; semi-axes in mm."""

    cx: float
    cz: float
    a: float
    b: float
    angle_deg: float = 0.0

    def rho(self, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """Normalised radius (< 1 inside)."""
        c, s = np.cos(np.radians(self.angle_deg)), np.sin(np.radians(self.angle_deg))
        dx, dz = X - self.cx, Z - self.cz
        return np.sqrt(((c * dx + s * dz) / self.a) ** 2 + ((-s * dx + c * dz) / self.b) ** 2)


@dataclass
class Vessel:
    """A vessel as a tube along a polyline (mm); ``kind`` portal (bright wall) or hepatic."""

    points: np.ndarray  # (n, 2) X, Z
    radius_mm: float
    kind: str = "hepatic"

    def distance(self, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
        d = np.full(np.shape(X), np.inf, np.float32)
        for (x0, z0), (x1, z1) in zip(self.points[:-1], self.points[1:]):
            vx, vz = x1 - x0, z1 - z0
            L2 = max(vx * vx + vz * vz, 1e-9)
            t = np.clip(((X - x0) * vx + (Z - z0) * vz) / L2, 0, 1)
            d = np.minimum(d, np.hypot(X - x0 - t * vx, Z - z0 - t * vz))
        return d


@dataclass
class LesionSpec:
    """A focal lesion: a 3-D ellipsoid (in-plane semi-axes ``a``, ``b``; elevation semi-axis
    ``c``) with a lobulated outline and an appearance. Echo values are relative to the
    surrounding liver; ``atten`` is in dB/cm/MHz."""

    lesion_id: int
    diagnosis: str
    malignant: bool
    cx: float
    cz: float
    a: float
    b: float
    angle_deg: float
    ce: float = 0.0  # elevation centre (mm)
    c: float = 10.0  # elevation semi-axis (mm)
    harm_amp: np.ndarray = field(default_factory=lambda: np.zeros(0))
    harm_phase: np.ndarray = field(default_factory=lambda: np.zeros(0))
    echo: float = 0.6
    hetero: float = 0.0
    texture: CosField | None = None
    margin_blur: float = 0.04  # width of the edge transition in normalised radius
    halo: float = 0.0  # halo thickness (normalised radius), 0 = none
    halo_echo: float = 0.25
    target_core: float = 0.0  # radius of the bright/iso core of a target lesion (0 = none)
    core_echo: float = 1.2
    scar: bool = False
    wall_echo: float = 0.0  # bright thin wall (cyst), 0 = none
    atten: float = 0.5
    calcified: bool = False

    def section_scale(self, elev: float) -> float:
        """In-plane size factor of the ellipsoid's section at elevation ``elev`` (0 = absent)."""
        t = (elev - self.ce) / self.c
        return float(np.sqrt(1 - t * t)) if abs(t) < 1 else 0.0

    def rho_phi(self, X: np.ndarray, Z: np.ndarray, elev: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Normalised radius (< 1 inside the outline) and polar angle in lesion coordinates."""
        s = max(self.section_scale(elev), 1e-3)
        c, sn = np.cos(np.radians(self.angle_deg)), np.sin(np.radians(self.angle_deg))
        dx, dz = X - self.cx, Z - self.cz
        u = (c * dx + sn * dz) / (self.a * s)
        v = (-sn * dx + c * dz) / (self.b * s)
        rho0 = np.sqrt(u * u + v * v)
        phi = np.arctan2(v, u)
        r = np.ones_like(rho0)
        for k, (amp, ph) in enumerate(zip(self.harm_amp, self.harm_phase), start=2):
            r = r + amp * np.cos(k * phi + ph)
        return (rho0 / r).astype(np.float32), phi.astype(np.float32)

    @property
    def diameter_mm(self) -> float:
        return 2 * max(self.a, self.b)


def lesion_features(spec: LesionSpec) -> dict[str, int]:
    """B-mode feature labels (``FEATURE_NAMES``) that follow from how the lesion is drawn."""
    if spec.target_core > 0:
        frac = spec.target_core ** 2
        mean_echo = frac * spec.core_echo + (1 - frac) * spec.echo
    else:
        mean_echo = spec.echo
    f = dict.fromkeys(FEATURE_NAMES, 0)
    if mean_echo < 0.12:
        f["echo_anechoic"] = 1
    elif mean_echo < 0.75:
        f["echo_hypo"] = 1
    elif mean_echo > 1.35:
        f["echo_hyper"] = 1
    else:
        f["echo_iso"] = 1
    f["margin_ill_defined"] = int(spec.margin_blur > 0.12)
    f["halo"] = int(spec.halo > 0)
    big_enough = spec.diameter_mm >= 6
    f["posterior_enhancement"] = int(big_enough and spec.atten <= 0.3)
    f["posterior_shadowing"] = int(spec.atten >= 1.5 or spec.calcified)
    f["heterogeneous"] = int(spec.hetero >= 0.25 or spec.scar or spec.calcified)
    f["target_sign"] = int(spec.target_core > 0)
    return f


@dataclass
class Scene:
    """Everything in one phantom (B-mode and CEUS are rendered from it)."""

    liver_state: str
    wall_mm: float  # skin → liver capsule (without ascites)
    fat_mm: float
    ascites_mm: float
    capsule_tilt: float  # capsule depth change per mm of X
    capsule_nodularity: float  # mm amplitude of surface nodules (cirrhosis)
    capsule_field: CosField
    diaphragm: Ellipse  # liver lies inside
    liver_echo: float
    liver_atten: float
    texture: CosField
    texture_amp: float
    coarse: CosField
    coarse_amp: float
    vessels: list[Vessel]
    gallbladder: Ellipse | None
    kidney: Ellipse | None
    ribs: list[Ellipse]
    gas: list[Ellipse]
    lesions: list[LesionSpec]
    radius_mm: float  # convex radius (0 for linear): skin depth uses the beam geometry
    out_of_liver: bool = False
    portal_wall_amp: float = 2.6  # echo of the bright portal-vein wall
    portal_wall_mm: float = 0.7  # half width of that wall (wider: periportal bands / blurred)
    vessel_edge_mm: float = 0.0  # blur of the vessel border (steatosis); 0 = sharp
    diffuse: DiffusePattern | None = None  # diffuse liver disease (livus.simulate.diffuse); None = none drawn

    def skin_depth(self, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """Depth below the skin along the beam (mm)."""
        if self.radius_mm > 0:
            return np.hypot(X, Z + self.radius_mm) - self.radius_mm
        return Z

    def capsule_depth(self, X: np.ndarray) -> np.ndarray:
        bumps = self.capsule_nodularity * np.abs(self.capsule_field(X, np.zeros_like(X)))
        return self.wall_mm + self.ascites_mm + self.capsule_tilt * X + bumps

    def in_liver(self, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """Liver parenchyma including vessels and lesions (not gallbladder/kidney)."""
        if self.out_of_liver:
            return np.zeros(np.shape(X), bool)
        d = self.skin_depth(X, Z)
        inside = (d > self.capsule_depth(X)) & (self.diaphragm.rho(X, Z) < 1)
        for organ in (self.gallbladder, self.kidney):
            if organ is not None:
                inside &= organ.rho(X, Z) > 1.08
        return inside


@dataclass(frozen=True)
class PlaneMotion:
    """Pose of the image plane relative to the body (clips): the internal organs seen at probe
    point ``(X, Z)`` are those at ``R(rot) · (X, Z) + (dx, dz)`` on the plane at elevation
    ``elev_mm``. The abdominal wall and ribs move with the probe (not transformed)."""

    dx_mm: float = 0.0
    dz_mm: float = 0.0
    rot_deg: float = 0.0
    elev_mm: float = 0.0

    def apply(self, X: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.rot_deg == 0.0:
            return X + np.float32(self.dx_mm), Z + np.float32(self.dz_mm)
        c, s = np.float32(np.cos(np.radians(self.rot_deg))), np.float32(np.sin(np.radians(self.rot_deg)))
        return c * X - s * Z + np.float32(self.dx_mm), s * X + c * Z + np.float32(self.dz_mm)


def _band(dist: np.ndarray, half_width: float) -> np.ndarray:
    """Soft bright line profile (1 on the line, 0 beyond ``half_width``)."""
    return np.clip(1 - np.abs(dist) / half_width, 0, 1).astype(np.float32)


@dataclass
class SceneMaps:
    """Scene evaluated at points: B-mode properties plus the parts CEUS needs."""

    echo: np.ndarray
    atten: np.ndarray
    extra: np.ndarray | None
    liver: np.ndarray  # float 0/1 parenchyma (excluding vessels and lesions)
    vessel_portal: np.ndarray
    vessel_hepatic: np.ndarray
    lesion_weight: list[np.ndarray]
    lesion_rho: list[np.ndarray]
    lesion_phi: list[np.ndarray]


def coarse_echo_factor(field: CosField, amp: float, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """Coarse heterogeneous echotexture of a diseased parenchyma: a log-normal echo factor of
    mean 1 from the random field at ``(X, Z)`` (mm); 1 where ``amp`` is 0."""
    if amp <= 0:
        return np.ones(np.shape(X), np.float32)
    return np.exp(amp * field(X, Z) - amp ** 2 / 2)


def evaluate_scene(scene: Scene, X: np.ndarray, Z: np.ndarray, motion: PlaneMotion | None = None) -> SceneMaps:
    """Tissue properties at probe-frame points ``(X, Z)`` (mm) for the plane pose ``motion``."""
    Xw = np.asarray(X, np.float32)
    Zw = np.asarray(Z, np.float32)
    motion = motion or PlaneMotion()
    elev = motion.elev_mm
    X, Z = motion.apply(Xw, Zw)
    shp = X.shape
    dw = scene.skin_depth(Xw, Zw)  # wall layers: probe frame
    d = scene.skin_depth(X, Z)  # organs: body frame
    echo = np.zeros(shp, np.float32)
    atten = np.full(shp, 0.6, np.float32)

    # abdominal wall: skin, fat with septa, muscle with striations, fascia lines
    cap = scene.capsule_depth(X)
    wall = scene.wall_mm
    fat = dw < scene.fat_mm
    echo[:] = np.where(fat, 0.45 + 0.35 * np.clip(scene.texture(Xw * 0.3, Zw * 3.0), 0, None),
                       0.75 * (1 + 0.45 * np.cos(2 * np.pi * dw / 1.3)))
    echo += 2.2 * _band(dw - 0.8, 1.0) + 1.6 * _band(dw - scene.fat_mm, 0.7) + 1.8 * _band(dw - wall, 0.8)
    # ascites: anechoic fluid between wall and capsule
    if scene.ascites_mm > 0:
        fluid = (dw > wall + 0.8) & (d < cap)
        echo[fluid] = 0.015
        atten[fluid] = 0.02

    # liver or, when the probe is off the liver, bowel loops
    liver_region = (d > cap) & (dw > wall + 0.8) & (scene.diaphragm.rho(X, Z) < 1) & (not scene.out_of_liver)
    tex = 1 + scene.texture_amp * scene.texture(X, Z)
    if scene.coarse_amp > 0:
        tex *= coarse_echo_factor(scene.coarse, scene.coarse_amp, X, Z)
    if scene.diffuse is not None:
        tex *= scene.diffuse.echo_factor(X, Z)
    liver_echo = (scene.liver_echo * tex).astype(np.float32)
    deep = (d > cap) & (dw > wall + 0.8)
    echo = np.where(liver_region, liver_echo, echo)
    atten = np.where(liver_region, scene.liver_atten, atten)
    # below the diaphragm: lung / mirror image region (attenuating, heterogeneous)
    beyond = deep & ~liver_region & (scene.diaphragm.rho(X, Z) >= 1)
    echo = np.where(beyond, 0.55 * liver_echo * (1 + 0.3 * scene.coarse(X * 0.5, Z * 0.5)), echo)
    atten = np.where(beyond, 1.4, atten)
    # capsule and diaphragm as bright specular lines
    if not scene.out_of_liver:
        capsule_line = _band(d - cap, 0.7) * (scene.diaphragm.rho(X, Z) < 1)
        echo += 3.0 * capsule_line
        rd = (scene.diaphragm.rho(X, Z) - 1) * min(scene.diaphragm.a, scene.diaphragm.b)
        echo += 4.0 * _band(rd - 1.2, 1.6) * deep

    # vessels
    portal = np.zeros(shp, np.float32)
    hepatic = np.zeros(shp, np.float32)
    for v in scene.vessels:
        dist = v.distance(X, Z)
        inside = (dist < v.radius_mm) & liver_region
        if v.kind == "portal":
            echo += scene.portal_wall_amp * _band(dist - v.radius_mm - 0.6, scene.portal_wall_mm) * liver_region
            portal = np.maximum(portal, inside)
        else:
            hepatic = np.maximum(hepatic, inside)
        if scene.vessel_edge_mm > 0:  # blurred border: lumen blends into the parenchyma
            w = np.clip((v.radius_mm - dist) / scene.vessel_edge_mm + 0.5, 0, 1) * liver_region
            echo = (echo * (1 - w) + 0.04 * w).astype(np.float32)
            atten = (atten * (1 - w) + 0.18 * w).astype(np.float32)
        else:
            echo = np.where(inside, 0.04, echo)
            atten = np.where(inside, 0.18, atten)

    # organs next to the liver
    if scene.gallbladder is not None and not scene.out_of_liver:
        r = scene.gallbladder.rho(X, Z)
        echo = np.where(r < 1, 0.02, echo) + 2.2 * _band(r - 1.04, 0.05)
        atten = np.where(r < 1, 0.02, atten)
    if scene.kidney is not None and not scene.out_of_liver:
        r = scene.kidney.rho(X, Z)
        kid = np.where(r < 0.45, 1.9 * (1 + 0.4 * scene.coarse(X * 2, Z * 2)), 0.55)
        echo = np.where(r < 1, kid, echo) + 2.0 * _band(r - 1.02, 0.04)
        atten = np.where(r < 1, 0.8, atten)

    liver_only = liver_region & (portal == 0) & (hepatic == 0)
    if scene.gallbladder is not None:
        liver_only &= scene.gallbladder.rho(X, Z) > 1.08
    if scene.kidney is not None:
        liver_only &= scene.kidney.rho(X, Z) > 1.08

    # focal lesions (drawn over parenchyma)
    weights, rhos, phis = [], [], []
    for les in scene.lesions:
        s = les.section_scale(elev)
        if s <= 0:
            z = np.zeros(shp, np.float32)
            weights.append(z)
            rhos.append(z + 9)
            phis.append(z)
            continue
        rho, phi = les.rho_phi(X, Z, elev)
        w = np.clip((1 - rho) / max(les.margin_blur, 1e-3) + 0.5, 0, 1).astype(np.float32)
        rel = np.full(shp, les.echo, np.float32)
        if les.target_core > 0:
            rel = np.where(rho < les.target_core, les.core_echo, rel)
        if les.hetero > 0 and les.texture is not None:
            u = (X - les.cx) / (les.a * s)
            v = (Z - les.cz) / (les.b * s)
            rel = rel * np.exp(les.hetero * les.texture(u, v) - les.hetero ** 2 / 2)
        if les.scar:
            spokes = np.abs(np.sin(2.5 * phi)) < 0.18
            rel = np.where((rho < 0.15) | (spokes & (rho < 0.6)), rel * 2.3, rel)
        if les.halo > 0:
            rel = np.where(rho > 1 - les.halo, les.halo_echo, rel)
        if les.calcified:
            rel = np.where(rho < 0.18, 6.0, rel)
        # lesion echo relative to the local parenchyma (texture kept for iso lesions)
        base = np.where(liver_region, scene.liver_echo, echo)
        echo = echo * (1 - w) + (base * rel).astype(np.float32) * w
        if les.wall_echo > 0:
            echo += les.wall_echo * _band(rho - 1.02, 0.05)
        lat = les.atten if not les.calcified else 2.5
        atten = atten * (1 - w) + lat * w
        weights.append(w)
        rhos.append(rho)
        phis.append(phi)
        liver_only &= rho >= 1

    # ribs (bright surface, full shadow) and bowel gas (bright, dirty shadow, reverberation)
    extra = None
    for rib in scene.ribs:
        r = rib.rho(Xw, Zw)
        echo += 3.5 * _band(r - 0.9, 0.25) * (Zw < rib.cz)
        atten = np.where(r < 1, 30.0, atten)
    for g in scene.gas:
        r = g.rho(X, Z)
        echo += 5.0 * _band(r - 0.95, 0.15)
        atten = np.where(r < 1, 45.0, atten)
        # reverberation: equally spaced bright echoes below the gas surface, decaying
        behind = (np.abs(X - g.cx) < g.a * 0.8) & (Z > g.cz)
        step = max(g.b * 0.6, 2.0)
        k = (Z - (g.cz - g.b)) / step
        rev = np.clip(1 - np.abs(k - np.round(k)) * 5, 0, 1) * np.exp(-k / 4.0) * 1.2
        add = np.where(behind, rev, 0).astype(np.float32)
        extra = add if extra is None else extra + add

    return SceneMaps(echo.astype(np.float32), atten.astype(np.float32), extra, liver_only.astype(np.float32),
                     portal, hepatic, weights, rhos, phis)
