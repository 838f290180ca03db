"""Diffuse liver disease as scene settings with labels: steatosis, fibrosis/cirrhosis and the
schistosomal network pattern, each at several grades, with or without focal lesions.

A :class:`DiffuseSpec` is the label (what the liver has); :func:`apply_diffuse` turns it into
the scene's rendering parameters (:class:`DiffusePattern` plus the liver's echo and
attenuation), following the usual textbook B-mode descriptions:

* steatosis (grades 1-3, mild/moderate/severe): raised parenchymal echogenicity (brighter than
  the renal cortex where the kidney is shown), depth attenuation above what the TGC undoes,
  blurred portal-vein walls and vessel borders;
* fibrosis F1-F3 and cirrhosis F4 (METAVIR-like): coarse heterogeneous echotexture, periportal
  and septal bright bands (the zero-level lines of a random field give a network of septa),
  regenerative nodules without a capsule (F4: cells of that network slightly darker than the
  septa around them), an irregular-to-nodular surface, a blunted (rounder) liver edge;
* schistosomal liver (grades 1-3): a network of thick bright septa outlining polygonal areas of
  about 1.5-3 cm ("fish-scale" / network pattern) and periportal thickening. The network is
  the edges of a Voronoi tessellation (:class:`PolygonalNetwork`: straight-sided cells meeting
  at angular junctions, septa of uneven thickness), not the zero lines of a smooth random
  field: those close into near-round rings that read like a lesion with a halo.

Not drawn: atrophy of the right lobe and caudate enlargement (the simulated views have no
lobes), splenomegaly. Fields are smooth analytic functions of the phantom frame ``(X, Z)`` in
mm, as the rest of the phantom, so clips move through the same diseased liver.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import KDTree

from livus.simulate.phantom import CosField, Scene, coarse_echo_factor

STEATOSIS_GRADES = ("none", "mild", "moderate", "severe")
FIBROSIS_GRADES = ("F0", "F1", "F2", "F3", "F4")
SCHISTOSOMAL_GRADES = ("none", "grade_1", "grade_2", "grade_3")
DIFFUSE_KINDS = ("none", "steatosis", "fibrosis", "schistosomal", "mixed")
MAX_GRADE = {"steatosis": 3, "fibrosis": 4, "schistosomal": 3}
DEFAULT_MIX = {"none": 0.1, "steatosis": 0.3, "fibrosis": 0.35, "schistosomal": 0.1, "mixed": 0.15}


@dataclass(frozen=True)
class DiffuseSpec:
    """Diffuse disease of one liver (the label): 0 = none for each."""

    steatosis_grade: int = 0  # 0-3: none / mild / moderate / severe
    fibrosis_grade: int = 0  # 0-4: METAVIR-like F0-F4, F4 = cirrhosis
    schistosomal_grade: int = 0  # 0-3

    def __post_init__(self) -> None:
        for name, hi in (("steatosis_grade", 3), ("fibrosis_grade", 4), ("schistosomal_grade", 3)):
            if not 0 <= int(getattr(self, name)) <= hi:
                raise ValueError(f"{name} must be 0-{hi}, got {getattr(self, name)}")

    @property
    def liver_state(self) -> str:
        """The coarse state the rest of the simulator knows (normal / steatosis / cirrhosis)."""
        if self.fibrosis_grade >= 4:
            return "cirrhosis"
        if self.steatosis_grade > 0:
            return "steatosis"
        return "normal"

    def to_labels(self) -> dict:
        """Image-level annotation fields (``extra["diffuse"]`` of the dataset)."""
        return {
            "steatosis_grade": int(self.steatosis_grade),
            "steatosis": STEATOSIS_GRADES[self.steatosis_grade],
            "fibrosis_grade": int(self.fibrosis_grade),
            "fibrosis": FIBROSIS_GRADES[self.fibrosis_grade],
            "cirrhosis": self.fibrosis_grade >= 4,
            "schistosomal_grade": int(self.schistosomal_grade),
            "schistosomal": SCHISTOSOMAL_GRADES[self.schistosomal_grade],
        }


@dataclass
class PolygonalNetwork:
    """Septa along the edges of a Voronoi tessellation of the phantom plane (mm).

    Cells are the Voronoi regions of jittered grid seeds ``seeds`` (``(n, 2)`` X, Z in mm, the
    spacing sets the cell size); the edges wander by ``warp_mm`` (a smooth displacement field)
    and their half width varies by ``± width_var`` along them. Written by hand because the
    distance to a Voronoi edge is two nearest-seed lookups (scipy's ``KDTree``), which no
    imaging library offers as a field."""

    seeds: np.ndarray
    warp_x: CosField
    warp_z: CosField
    warp_mm: float
    width: CosField
    width_var: float

    @staticmethod
    def random(rng: np.random.Generator, cell_mm: float, extent_mm: tuple[float, float, float, float] = (-220.0, 220.0, -60.0, 320.0)) -> "PolygonalNetwork":
        """Seeds on a grid of spacing ``cell_mm`` over ``extent_mm`` = (x0, x1, z0, z1),
        jittered by up to 0.45 of the spacing, so cells are irregular convex polygons."""
        x0, x1, z0, z1 = extent_mm
        gx, gz = np.meshgrid(np.arange(x0, x1, cell_mm), np.arange(z0, z1, cell_mm))
        seeds = np.stack([gx.ravel(), gz.ravel()], 1)
        seeds = seeds + rng.uniform(-0.45, 0.45, seeds.shape) * cell_mm
        return PolygonalNetwork(seeds.astype(np.float64), CosField.random(rng, 8, (8.0, 20.0)), CosField.random(rng, 8, (8.0, 20.0)),
                                float(rng.uniform(0.6, 1.4)), CosField.random(rng, 8, (6.0, 18.0)), float(rng.uniform(0.25, 0.45)))

    def edge_distance(self, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """Distance (mm) from ``(X, Z)`` (mm) to the nearest septum's centre line, float32."""
        X = np.asarray(X, np.float32)
        Z = np.asarray(Z, np.float32)
        xw = X + np.float32(self.warp_mm) * self.warp_x(X, Z)
        zw = Z + np.float32(self.warp_mm) * self.warp_z(X, Z)
        pts = np.stack([xw.ravel(), zw.ravel()], 1).astype(np.float64)
        d, idx = KDTree(self.seeds).query(pts, k=2)
        gap = np.linalg.norm(self.seeds[idx[:, 1]] - self.seeds[idx[:, 0]], axis=1)
        # distance to the bisector of the two nearest seeds: (d2^2 - d1^2) / (2 |s2 - s1|)
        dist = (d[:, 1] ** 2 - d[:, 0] ** 2) / (2 * np.maximum(gap, 1e-6))
        return dist.reshape(np.shape(X)).astype(np.float32)

    def half_width_factor(self, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """Local septum half width relative to the mean (``1 ± width_var``), float32."""
        return np.clip(1 + np.float32(self.width_var) * self.width(X, Z), 0.3, None).astype(np.float32)


@dataclass
class DiffusePattern:
    """Rendering parameters of diffuse disease (read by ``phantom.evaluate_scene``).

    Echo factors are relative to the liver's own echo; widths in mm."""

    spec: DiffuseSpec
    septa: CosField | None = None  # zero-level lines = septa (fibrosis)
    network: PolygonalNetwork | None = None  # polygonal network (schistosomal); overrides ``septa``
    septa_amp: float = 0.0  # echo added on a septum (× liver echo)
    septa_mm: float = 0.5  # half width of a septum
    septa_wavelength_mm: float = 10.0  # mean wavelength of ``septa`` (sets the cell size)
    septa_gate: CosField | None = None  # > 0 where septa are drawn (incomplete septa, F1-F3)
    cell_amp: float = 0.0  # regenerative nodules: cell centres this much darker than the septa

    def echo_factor(self, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """Multiplicative echo change of the parenchyma at ``(X, Z)`` (mm), float32."""
        out = np.ones(np.shape(X), np.float32)
        if (self.septa is None and self.network is None) or (self.septa_amp <= 0 and self.cell_amp <= 0):
            return out
        if self.network is not None:  # band of ±septa_mm (uneven along the septum) around an edge
            w = np.float32(self.septa_mm) * self.network.half_width_factor(X, Z)
            f = self.network.edge_distance(X, Z)
        else:  # |∇f| ≈ 2π/λ for a unit-variance cosine sum: a band of ±septa_mm around f = 0
            w = np.float32(self.septa_mm * 2 * np.pi / self.septa_wavelength_mm)
            f = self.septa(X, Z)
        band = np.clip(1 - np.abs(f) / w, 0, 1)
        if self.septa_gate is not None:
            band = band * np.clip(self.septa_gate(X * 0.5, Z * 0.5) + 0.3, 0, 1)
        out += np.float32(self.septa_amp) * band
        if self.cell_amp > 0:  # cell interiors (far from a septum) darker: nodules without capsule
            out *= 1 - np.float32(self.cell_amp) * np.clip(np.abs(f) / 1.2, 0, 1)
        return out.astype(np.float32)


def parse_mix(text: str) -> dict[str, float]:
    """``"steatosis=0.3,fibrosis:4=0.2,none=0.1"`` → weights; ``"default"`` → ``DEFAULT_MIX``.

    Keys are a kind (``DIFFUSE_KINDS``; grade drawn uniformly from 1 to the kind's highest) or
    ``kind:grade`` (that grade only). ``ValueError`` on anything else."""
    text = text.strip()
    if text in ("", "default", "all"):
        return dict(DEFAULT_MIX)
    out: dict[str, float] = {}
    for part in text.split(","):
        key, sep, val = part.partition("=")
        key = key.strip()
        try:
            weight = float(val) if sep else 1.0
        except ValueError:
            raise ValueError(f"diffuse mix: weight of {key!r} is not a number: {val!r}") from None
        kind, _, grade = key.partition(":")
        if kind not in DIFFUSE_KINDS:
            raise ValueError(f"diffuse mix: unknown kind {kind!r} (known: {', '.join(DIFFUSE_KINDS)})")
        if grade:
            hi = MAX_GRADE.get(kind, 0)
            if not grade.isdigit() or not 1 <= int(grade) <= hi:
                raise ValueError(f"diffuse mix: {key!r}: grade must be 1-{hi}" if hi else f"diffuse mix: {kind} has no grades")
        if weight < 0:
            raise ValueError(f"diffuse mix: negative weight for {key!r}")
        out[key] = weight
    if sum(out.values()) <= 0:
        raise ValueError("diffuse mix: weights sum to 0")
    return out


def sample_diffuse_spec(rng: np.random.Generator, mix: dict[str, float]) -> DiffuseSpec:
    """One liver's diffuse disease drawn from a mix (see :func:`parse_mix`)."""
    keys = list(mix)
    p = np.asarray([mix[k] for k in keys], float)
    key = keys[int(rng.choice(len(keys), p=p / p.sum()))]
    kind, _, grade = key.partition(":")

    def g(k: str) -> int:
        return int(grade) if grade else int(rng.integers(1, MAX_GRADE[k] + 1))

    if kind == "steatosis":
        return DiffuseSpec(steatosis_grade=g("steatosis"))
    if kind == "fibrosis":
        return DiffuseSpec(fibrosis_grade=g("fibrosis"))
    if kind == "schistosomal":
        return DiffuseSpec(schistosomal_grade=g("schistosomal"), fibrosis_grade=int(rng.integers(0, 3)))
    if kind == "mixed":  # fatty liver with fibrosis (e.g. NASH, alcohol, HBV with steatosis)
        return DiffuseSpec(steatosis_grade=int(rng.integers(1, 4)), fibrosis_grade=int(rng.integers(1, 5)))
    return DiffuseSpec()


@dataclass
class DiffuseDraw:
    """One liver's random draw of the diffuse-disease settings of ``spec`` (what
    :func:`apply_diffuse` sets on a scene): echo and attenuation of the parenchyma, portal and
    vessel walls, coarse texture, surface, and the septa / network :class:`DiffusePattern`."""

    spec: DiffuseSpec
    liver_echo: float  # × the normal liver's echo
    liver_atten: float  # dB/cm/MHz
    portal_wall_amp: float
    portal_wall_mm: float
    vessel_edge_mm: float
    texture_amp: float
    coarse_amp: float
    coarse: CosField
    capsule_nodularity: float
    capsule_field: CosField
    pattern: DiffusePattern

    def parenchyma_echo_factor(self, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """Multiplicative echo change of the parenchyma at ``(X, Z)`` (mm) from the coarse
        texture and the septa (as ``phantom.evaluate_scene`` draws them), float32."""
        return coarse_echo_factor(self.coarse, self.coarse_amp, X, Z) * self.pattern.echo_factor(X, Z)


def draw_diffuse(rng: np.random.Generator, spec: DiffuseSpec) -> DiffuseDraw:
    """Draw the settings of one liver with diffuse disease ``spec`` (see the module docstring)."""
    u = rng.uniform
    s, f, sch = spec.steatosis_grade, spec.fibrosis_grade, spec.schistosomal_grade
    # steatosis: brighter, more attenuating liver; vessel walls blur (all 1.0 / 0.5 when none)
    liver_echo = float((1.0, u(1.3, 1.5), u(1.6, 1.85), u(1.9, 2.3))[s] * u(0.95, 1.05))
    liver_atten = float((u(0.46, 0.54), u(0.57, 0.63), u(0.64, 0.71), u(0.72, 0.8))[s])
    portal_wall_amp = float((2.6, 1.7, 1.0, 0.45)[s])
    portal_wall_mm = float((0.7, 1.0, 1.4, 1.8)[s])
    vessel_edge_mm = float((0.0, 0.5, 1.0, 1.6)[s])
    # fibrosis: coarse echotexture, septa, surface; cirrhosis also nodules and a blunt edge
    texture_amp = float((0.18, 0.18, 0.2, 0.22, 0.24)[f])
    coarse_amp = float((u(0.03, 0.06), u(0.1, 0.14), u(0.17, 0.22), u(0.25, 0.31), u(0.33, 0.42))[f])
    coarse = CosField.random(rng, 16, (2.5, 7.0))
    capsule_nodularity = float((u(0, 0.3), u(0.2, 0.45), u(0.4, 0.8), u(0.8, 1.4), u(1.5, 2.8))[f])
    capsule_field = CosField.random(rng, 4, (4.0, 9.0) if f >= 3 else (6.0, 14.0))
    pattern = DiffusePattern(spec)
    if f > 0:
        lam = float(u(9.0, 16.0) if f >= 4 else u(12.0, 22.0))
        pattern.septa = CosField.random(rng, 14, (0.8 * lam, 1.25 * lam))
        pattern.septa_wavelength_mm = lam
        pattern.septa_amp = float((0.0, 0.25, 0.45, 0.7, 0.9)[f] * u(0.85, 1.15))
        pattern.septa_mm = float((0.5, 0.35, 0.45, 0.55, 0.6)[f])
        pattern.septa_gate = CosField.random(rng, 4, (15.0, 40.0)) if f < 4 else None
        pattern.cell_amp = float(u(0.12, 0.22)) if f >= 4 else 0.0
        portal_wall_amp += float((0.0, 0.3, 0.6, 0.9, 1.0)[f])  # periportal bright bands
        portal_wall_mm += float((0.0, 0.2, 0.4, 0.6, 0.7)[f])
    if sch > 0:  # network pattern: larger polygonal areas, thick bright bands (overrides septa)
        pattern.network = PolygonalNetwork.random(rng, float(u(15.0, 30.0)))
        pattern.septa = None
        pattern.septa_amp = float((0.0, 0.9, 1.4, 1.9)[sch] * u(0.85, 1.15))
        pattern.septa_mm = float((0.0, 0.9, 1.4, 2.0)[sch])
        pattern.septa_gate = CosField.random(rng, 4, (20.0, 50.0)) if sch == 1 else None
        pattern.cell_amp = 0.0
        portal_wall_amp += float((0.0, 0.8, 1.3, 1.8)[sch])
        portal_wall_mm += float((0.0, 0.6, 1.0, 1.5)[sch])
    return DiffuseDraw(spec, liver_echo, liver_atten, portal_wall_amp, portal_wall_mm, vessel_edge_mm, texture_amp, coarse_amp,
                       coarse, capsule_nodularity, capsule_field, pattern)


def apply_diffuse(rng: np.random.Generator, scene: Scene, spec: DiffuseSpec) -> None:
    """Set the scene's liver echo, attenuation, texture, surface and vessel walls for ``spec``
    (in place, one :func:`draw_diffuse`); the scene's ``liver_state`` becomes ``spec.liver_state``."""
    d = draw_diffuse(rng, spec)
    scene.liver_state = spec.liver_state
    scene.liver_echo, scene.liver_atten = d.liver_echo, d.liver_atten
    scene.portal_wall_amp, scene.portal_wall_mm, scene.vessel_edge_mm = d.portal_wall_amp, d.portal_wall_mm, d.vessel_edge_mm
    scene.texture_amp, scene.coarse_amp, scene.coarse = d.texture_amp, d.coarse_amp, d.coarse
    scene.capsule_nodularity, scene.capsule_field = d.capsule_nodularity, d.capsule_field
    if spec.fibrosis_grade >= 4:  # blunted edge: a rounder lower boundary of the liver
        dia = scene.diaphragm
        scene.diaphragm = type(dia)(dia.cx, dia.cz, dia.a * 0.85, dia.b * 1.1, dia.angle_deg)
    scene.diffuse = d.pattern
