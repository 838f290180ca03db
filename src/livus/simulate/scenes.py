"""Random scene sampling: liver background, anatomy and lesions that fit the field of view.

Appearance distributions per diagnosis follow the usual textbook descriptions and are made to
overlap between benign and malignant lesions, as in real life (e.g. some HCCs are
hyperechoic, some haemangiomas hypoechoic, metastases may lack a target sign).
"""

from __future__ import annotations

import numpy as np

from livus.simulate.diffuse import DiffuseSpec, apply_diffuse
from livus.simulate.phantom import (
    DIAMETER_RANGE_MM,
    MALIGNANT_DIAGNOSES,
    CosField,
    Ellipse,
    LesionSpec,
    Scene,
    Vessel,
)
from livus.simulate.physics import ScanGeometry

CLASS_PROBS = {"normal": 0.2, "benign": 0.35, "malignant": 0.45}
BENIGN_MIX = {"hemangioma": 0.3, "cyst": 0.25, "fnh": 0.12, "focal_fat_sparing": 0.1,
              "focal_fat_deposition": 0.08, "regenerative_nodule": 0.08, "dysplastic_nodule": 0.07}
MALIGNANT_MIX = {"hcc": 0.6, "metastasis": 0.4}


def _choice(rng: np.random.Generator, probs: dict[str, float]) -> str:
    keys = list(probs)
    p = np.asarray([probs[k] for k in keys], float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def sample_liver_state(rng: np.random.Generator, diagnosis_hint: str | None) -> str:
    if diagnosis_hint in ("hcc", "regenerative_nodule", "dysplastic_nodule"):
        return _choice(rng, {"cirrhosis": 0.7, "normal": 0.15, "steatosis": 0.15})
    if diagnosis_hint in ("focal_fat_sparing",):
        return "steatosis"
    return _choice(rng, {"normal": 0.55, "steatosis": 0.3, "cirrhosis": 0.15})


def field_half_width_mm(geom: ScanGeometry) -> float:
    """Half the width of the field of view at its full depth (mm): the linear array's half width,
    or the convex sector's half chord at the deepest radius."""
    p = geom.profile
    if p.probe == "linear":
        return p.width_mm / 2
    return (p.radius_mm + p.depth_mm) * np.sin(np.radians(p.fan_angle_deg) / 2)


def sample_anatomy(rng: np.random.Generator, geom: ScanGeometry, liver_state: str) -> Scene:
    """Background scene (no lesions yet) fitted to the probe's field of view."""
    p = geom.profile
    depth = p.depth_mm
    linear = p.probe == "linear"
    wall = rng.uniform(0.1, 0.18) * depth if not linear else rng.uniform(0.12, 0.25) * depth
    wall = float(np.clip(wall, 6, 28))
    fat = wall * rng.uniform(0.35, 0.6)
    ascites = 0.0
    if liver_state == "cirrhosis" and rng.random() < 0.35:
        ascites = float(rng.uniform(3, 0.12 * depth))
    elif rng.random() < 0.04:
        ascites = float(rng.uniform(2, 8))
    half_w = field_half_width_mm(geom)
    # diaphragm: a large ellipse whose lower boundary crosses the deep part of the field
    if linear:
        dia = Ellipse(0.0, depth * 0.3, depth * 6, depth * rng.uniform(1.1, 2.0), float(rng.uniform(-5, 5)))
    else:
        bottom = depth * rng.uniform(0.75, 1.15)
        a = half_w * rng.uniform(1.0, 1.8)
        b = bottom * rng.uniform(0.55, 0.85)
        dia = Ellipse(float(rng.uniform(-0.35, 0.35) * half_w), float(bottom - b), float(a), float(b),
                      float(rng.uniform(-20, 20)))
    states = {
        "normal": (1.0, 0.5, 0.18, 0.05),
        "steatosis": (rng.uniform(1.3, 1.8), rng.uniform(0.58, 0.75), 0.15, 0.05),
        "cirrhosis": (rng.uniform(0.9, 1.25), rng.uniform(0.55, 0.75), 0.15, rng.uniform(0.15, 0.3)),
    }
    liver_echo, liver_att, tex_amp, coarse_amp = states[liver_state]
    scene = Scene(
        liver_state=liver_state,
        wall_mm=wall,
        fat_mm=float(fat),
        ascites_mm=ascites,
        capsule_tilt=float(rng.uniform(-0.12, 0.12)),
        capsule_nodularity=float(rng.uniform(1.0, 2.5)) if liver_state == "cirrhosis" else float(rng.uniform(0, 0.3)),
        capsule_field=CosField.random(rng, 3, (6.0, 14.0)),
        diaphragm=dia,
        liver_echo=float(liver_echo),
        liver_atten=float(liver_att),
        texture=CosField.random(rng, 6, (8.0, 40.0)),
        texture_amp=float(tex_amp),
        coarse=CosField.random(rng, 10, (3.0, 8.0)),
        coarse_amp=float(coarse_amp),
        vessels=[],
        gallbladder=None,
        kidney=None,
        ribs=[],
        gas=[],
        lesions=[],
        radius_mm=p.radius_mm if not linear else 0.0,
    )
    _add_vessels(rng, scene, geom, half_w)
    if not linear and rng.random() < 0.25:
        scene.gallbladder = place_gallbladder(rng, scene, geom)
    if not linear and rng.random() < 0.2:
        scene.kidney = place_kidney(rng, scene, geom)
    if rng.random() < 0.12:
        add_rib(rng, scene, half_w)
    return scene


def add_rib(rng: np.random.Generator, scene: Scene, half_w: float, x_frac: float | None = None) -> None:
    """A rib in the abdominal wall near the side of the field (casts a full acoustic shadow)."""
    side = rng.choice([-1, 1])
    x = x_frac * half_w if x_frac is not None else float(side * rng.uniform(0.75, 0.95) * half_w * 0.8)
    r = float(rng.uniform(4, 7))
    scene.ribs.append(Ellipse(float(x), float(scene.wall_mm * rng.uniform(0.4, 0.7)), r, r * 0.6))


def _add_vessels(rng: np.random.Generator, scene: Scene, geom: ScanGeometry, half_w: float) -> None:
    depth = geom.profile.depth_mm
    n = int(rng.integers(1, 5)) if depth > 80 else int(rng.integers(0, 3))
    for _ in range(n):
        kind = "portal" if rng.random() < 0.5 else "hepatic"
        r = float(rng.uniform(1.2, 4.5) if depth > 80 else rng.uniform(0.8, 2.5))
        z0 = scene.wall_mm + scene.ascites_mm + rng.uniform(0.25, 0.8) * (depth - scene.wall_mm)
        x0 = rng.uniform(-0.8, 0.8) * half_w
        if rng.random() < 0.4:  # cross-section: a circle
            pts = np.array([[x0, z0], [x0 + 0.01, z0]])
        else:
            ang = rng.uniform(-0.6, 0.6) + (0 if rng.random() < 0.5 else np.pi)
            L = rng.uniform(0.15, 0.45) * depth
            n_seg = 3
            pts = [[x0, z0]]
            for _ in range(n_seg):
                ang += rng.uniform(-0.3, 0.3)
                pts.append([pts[-1][0] + L / n_seg * np.cos(ang), pts[-1][1] + L / n_seg * np.sin(ang)])
            pts = np.asarray(pts)
        scene.vessels.append(Vessel(np.asarray(pts, np.float32), r, kind))


def deep_border_depth(scene: Scene, x_mm: float, max_depth_mm: float) -> float | None:
    """Depth (mm) of the liver's deep border (the lower edge of the diaphragm ellipse) at lateral
    position ``x_mm``; ``None`` when the liver reaches beyond ``max_depth_mm`` there."""
    z = np.linspace(scene.diaphragm.cz, max_depth_mm, 400, dtype=np.float64)
    outside = np.nonzero(scene.diaphragm.rho(np.full_like(z, x_mm), z) >= 1)[0]
    return float(z[outside[0]]) if len(outside) else None


def _place_at_border(rng: np.random.Generator, scene: Scene, geom: ScanGeometry, a_rng: tuple[float, float],
                     b_rng: tuple[float, float], below: tuple[float, float], max_tilt_deg: float) -> Ellipse | None:
    """An organ ellipse against the liver's deep border, where anatomy puts the kidney (behind the
    liver) and the gallbladder (in its fossa on the visceral surface), never enclosed by liver
    tissue like a focal lesion. Its centre lies ``below`` × its short semi-axis beyond the border
    (negative: inside the liver). Where the border lies too deep to show the organ, the liver's
    deep border (diaphragm ellipse) is raised to 65-90 % of the field depth. Millimetres."""
    p = geom.profile
    half_w = field_half_width_mm(geom)
    for _ in range(20):
        a, b = float(rng.uniform(*a_rng)), float(rng.uniform(*b_rng))
        x0 = float(rng.uniform(-0.5, 0.5) * half_w)
        target = float(rng.uniform(0.65, 0.9) * p.depth_mm)
        border = deep_border_depth(scene, x0, 3 * p.depth_mm)
        if border is None:
            continue
        if border > target:  # lift the liver's deep border so that the organ is in view
            d = scene.diaphragm
            scene.diaphragm = Ellipse(d.cx, d.cz - (border - target), d.a, d.b, d.angle_deg)
            border = target
        e = Ellipse(x0, border + float(rng.uniform(*below)) * b, a, b, float(rng.uniform(-max_tilt_deg, max_tilt_deg)))
        t = np.linspace(0, 2 * np.pi, 16)
        if geom.in_fan_mm(np.asarray([e.cx]), np.asarray([e.cz]), margin_mm=2.0).all() and \
                scene.in_liver(e.cx + e.a * np.cos(t), e.cz + e.b * np.sin(t)).mean() < 0.75:
            return e
    return None


def place_kidney(rng: np.random.Generator, scene: Scene, geom: ScanGeometry) -> Ellipse | None:
    """Right kidney behind the liver (hepatorenal view): centre beyond the liver's deep border,
    long axis roughly along it (semi-axes 35-55 × 20-28 mm: an adult kidney is about 10-12 cm long
    and 5-6 cm wide)."""
    return _place_at_border(rng, scene, geom, (35, 55), (20, 28), (0.3, 0.8), 20.0)


def place_gallbladder(rng: np.random.Generator, scene: Scene, geom: ScanGeometry) -> Ellipse | None:
    """Gallbladder in its fossa: against the liver's deep (visceral) border, partly wrapped by
    liver (semi-axes 12-22 × 6-12 mm)."""
    return _place_at_border(rng, scene, geom, (12, 22), (6, 12), (-0.6, 0.4), 40.0)


def sample_lesion_appearance(rng: np.random.Generator, diagnosis: str, diameter_mm: float, liver_state: str) -> dict:
    """Appearance parameters of ``LesionSpec`` for one diagnosis and size."""
    u = rng.random
    app: dict = dict(echo=1.0, hetero=0.0, margin_blur=float(rng.uniform(0.02, 0.06)), halo=0.0, halo_echo=0.25,
                     target_core=0.0, core_echo=1.2, scar=False, wall_echo=0.0, atten=0.5, calcified=False,
                     harm=float(rng.uniform(0.0, 0.06)))
    if diagnosis == "hcc":
        if diameter_mm < 20:
            app.update(echo=float(rng.uniform(0.35, 0.75)) if u() < 0.75 else float(rng.uniform(1.3, 1.9)),
                       hetero=float(rng.uniform(0.0, 0.2)), atten=float(rng.uniform(0.35, 0.55)))
        else:
            app.update(echo=float(rng.uniform(0.6, 1.4)), hetero=float(rng.uniform(0.35, 0.7)),
                       halo=float(rng.uniform(0.05, 0.1)) if u() < 0.65 else 0.0, atten=float(rng.uniform(0.3, 0.5)),
                       harm=float(rng.uniform(0.03, 0.1)))
        if u() < 0.3:
            app["margin_blur"] = float(rng.uniform(0.13, 0.3))
    elif diagnosis == "metastasis":
        if u() < 0.6:
            app.update(echo=float(rng.uniform(0.25, 0.6)), target_core=float(rng.uniform(0.4, 0.7)),
                       core_echo=float(rng.uniform(1.0, 2.0)))
        else:
            app.update(echo=float(rng.uniform(0.35, 0.8)) if u() < 0.7 else float(rng.uniform(1.4, 2.0)))
        app.update(hetero=float(rng.uniform(0.0, 0.35)), atten=float(rng.uniform(0.45, 0.8)),
                   margin_blur=float(rng.uniform(0.03, 0.25)), harm=float(rng.uniform(0.02, 0.12)))
        if u() < 0.08:
            app["calcified"] = True
    elif diagnosis == "hemangioma":
        if u() < 0.8:
            app.update(echo=float(rng.uniform(1.5, 2.6)), hetero=float(rng.uniform(0.0, 0.15)))
        else:  # atypical: hypoechoic centre
            app.update(echo=float(rng.uniform(0.6, 1.0)), hetero=float(rng.uniform(0.2, 0.45)))
        app.update(atten=float(rng.uniform(0.2, 0.35)), margin_blur=float(rng.uniform(0.02, 0.06)))
    elif diagnosis == "cyst":
        app.update(echo=float(rng.uniform(0.01, 0.05)), wall_echo=float(rng.uniform(1.5, 3.0)), atten=0.03,
                   margin_blur=0.02, harm=float(rng.uniform(0.0, 0.03)))
    elif diagnosis == "fnh":
        app.update(echo=float(rng.uniform(0.8, 1.25)), scar=u() < 0.6, hetero=float(rng.uniform(0.05, 0.2)),
                   atten=float(rng.uniform(0.4, 0.55)), halo=float(rng.uniform(0.04, 0.08)) if u() < 0.2 else 0.0)
    elif diagnosis == "focal_fat_sparing":
        app.update(echo=float(rng.uniform(0.45, 0.7)), margin_blur=float(rng.uniform(0.15, 0.35)),
                   atten=0.5, harm=float(rng.uniform(0.12, 0.22)))
    elif diagnosis == "focal_fat_deposition":
        app.update(echo=float(rng.uniform(1.4, 1.9)), margin_blur=float(rng.uniform(0.15, 0.35)),
                   atten=0.7, harm=float(rng.uniform(0.12, 0.22)))
    elif diagnosis == "regenerative_nodule":
        app.update(echo=float(rng.uniform(0.75, 1.15)), margin_blur=float(rng.uniform(0.05, 0.2)))
    elif diagnosis == "dysplastic_nodule":
        app.update(echo=float(rng.uniform(0.5, 0.8)) if u() < 0.6 else float(rng.uniform(1.3, 1.7)),
                   margin_blur=float(rng.uniform(0.04, 0.15)))
    else:
        raise ValueError(f"unknown diagnosis {diagnosis!r}")
    return app


def sample_diameter_mm(rng: np.random.Generator, diagnosis: str, max_mm: float) -> float:
    lo, hi = DIAMETER_RANGE_MM[diagnosis]
    hi = max(min(hi, max_mm), lo * 1.01)
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def make_lesion(rng: np.random.Generator, lesion_id: int, diagnosis: str, diameter_mm: float, cx: float, cz: float,
                liver_state: str) -> LesionSpec:
    app = sample_lesion_appearance(rng, diagnosis, diameter_mm, liver_state)
    harm = app.pop("harm")
    ratio = float(rng.uniform(0.65, 1.0)) if diagnosis not in ("focal_fat_sparing", "focal_fat_deposition") else float(rng.uniform(0.4, 0.8))
    a = diameter_mm / 2
    n_h = 4
    return LesionSpec(
        lesion_id=lesion_id, diagnosis=diagnosis, malignant=diagnosis in MALIGNANT_DIAGNOSES,
        cx=cx, cz=cz, a=a, b=a * ratio, angle_deg=float(rng.uniform(0, 180)),
        ce=float(rng.uniform(-2, 2)), c=float(a * rng.uniform(0.7, 1.1)),
        harm_amp=rng.uniform(0, harm, n_h) * (1 / np.arange(1, n_h + 1)), harm_phase=rng.uniform(0, 2 * np.pi, n_h),
        texture=CosField.random(rng, 8, (0.35, 0.9)), **app,
    )


def place_lesions(rng: np.random.Generator, scene: Scene, geom: ScanGeometry, diagnoses: list[str]) -> None:
    """Add lesions of the given diagnoses where they fit (inside liver and fan, not
    overlapping each other or the organs); lesions that do not fit anywhere are dropped."""
    p = geom.profile
    liver_depth = p.depth_mm - scene.wall_mm - scene.ascites_mm
    max_d = max(0.55 * liver_depth, 4.0)
    t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    for diag in diagnoses:
        for attempt in range(40):
            diam = sample_diameter_mm(rng, diag, max_d * (0.97 ** attempt))
            # candidate centre from a random point of the polar grid (uniform over the fan)
            i = int(rng.integers(geom.X.size))
            cx, cz = float(geom.X.flat[i]), float(geom.Z.flat[i])
            les = make_lesion(rng, len(scene.lesions) + 1, diag, diam, cx, cz, scene.liver_state)
            r = 1.2 * (1 + les.halo) + (0.3 if les.margin_blur > 0.12 else 0.0)
            ca, sa = np.cos(np.radians(les.angle_deg)), np.sin(np.radians(les.angle_deg))
            bx = cx + r * (les.a * np.cos(t) * ca - les.b * np.sin(t) * sa)
            bz = cz + r * (les.a * np.cos(t) * sa + les.b * np.sin(t) * ca)
            bx = np.append(bx, cx)
            bz = np.append(bz, cz)
            ok = scene.in_liver(bx, bz).all() and geom.in_fan_mm(bx, bz, margin_mm=2.0).all()
            for other in scene.lesions:
                ok = ok and (other.rho_phi(bx, bz)[0] > 1.15).all() and np.hypot(other.cx - cx, other.cz - cz) > (other.a + les.a) * 1.1
            if ok:
                scene.lesions.append(les)
                break


def sample_scene(rng: np.random.Generator, geom: ScanGeometry, image_class: str | None = None,
                 diffuse: DiffuseSpec | None = None) -> Scene:
    """A full random scene: class → diagnoses → liver state → anatomy → lesions. With
    ``diffuse`` the liver has that diffuse disease (:mod:`livus.simulate.diffuse`) instead of a
    state drawn from the diagnoses; without it the draws are exactly those of earlier versions."""
    image_class = image_class or _choice(rng, CLASS_PROBS)
    diagnoses: list[str] = []
    if image_class == "malignant":
        d = _choice(rng, MALIGNANT_MIX)
        k = int(rng.integers(1, 5)) if d == "metastasis" else (1 if rng.random() < 0.8 else 2)
        diagnoses = [d] * k
        if rng.random() < 0.15:
            diagnoses.append(_choice(rng, BENIGN_MIX))
    elif image_class == "benign":
        d = _choice(rng, BENIGN_MIX)
        diagnoses = [d] * (1 if rng.random() < 0.8 else 2)
    if diffuse is None:
        state = sample_liver_state(rng, diagnoses[0] if diagnoses else None)
        scene = sample_anatomy(rng, geom, state)
    else:
        scene = sample_anatomy(rng, geom, diffuse.liver_state)
        apply_diffuse(rng, scene, diffuse)
        if diffuse.steatosis_grade > 0 and scene.kidney is None and geom.convex and rng.random() < 0.4:
            scene.kidney = place_kidney(rng, scene, geom)  # liver vs kidney
    place_lesions(rng, scene, geom, diagnoses)
    return scene
