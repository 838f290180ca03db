"""Lesions reported on simulated lesion-free livers with diffuse disease, by kind and grade.

Inference only: held-out simulated livers (seed not used for training; steatosis 1-3, fibrosis
F1-F4, schistosomal network 1-3, fatty liver with fibrosis, and a few normal livers; all six
scanner profiles, overlays burned in as exported) go through ``FrameAnalyzer`` with the models
of ``--models`` exactly as ``livus analyze`` would (no pixel spacing given). Prints, per group,
the share of livers with at least one reported lesion (target of issue 21: <= 5 % at every
grade), the mean number of lesions, the image label's abnormal share and the image-derived
liver background found with the detector's own liver outline. Rerun it on new models with
``--models DIR``. Writes the figures as JSON, with every liver's candidate scores down to
``CANDIDATE_FLOOR`` (calibrated scale, also below the report threshold) for
``benchmarks/diffuse_operating_point.py``.

Usage: python benchmarks/diffuse_false_positives.py [--models models] [--per-grade 6] [--normals 6]
           [--json benchmarks/results/diffuse_false_positives.json]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SEED = 424242  # held out: not a seed any training set of this repository uses
CANDIDATE_FLOOR = 0.05  # candidate scores kept per liver (calibrated scale)


def groups(per_grade: int, normals: int, schistosomal_per_grade: int | None = None) -> list[tuple[str, "object"]]:
    """Benchmark groups in order; ``schistosomal_per_grade`` defaults to half of ``per_grade``."""
    from livus.simulate.diffuse import DiffuseSpec

    n_sch = max(per_grade // 2, 1) if schistosomal_per_grade is None else schistosomal_per_grade

    out = [("normal", DiffuseSpec())] * normals
    out += [(f"steatosis {g}", DiffuseSpec(steatosis_grade=g)) for g in (1, 2, 3) for _ in range(per_grade)]
    out += [(f"fibrosis F{g}", DiffuseSpec(fibrosis_grade=g)) for g in (1, 2, 3, 4) for _ in range(per_grade)]
    out += [(f"schistosomal {g}", DiffuseSpec(schistosomal_grade=g)) for g in (1, 2, 3) for _ in range(n_sch)]
    out += [("steatosis+fibrosis", None)] * per_grade  # grades drawn per liver
    return out


def lesion_free_liver(rng: np.random.Generator, i: int, spec: "object | None", geometries: "object") -> tuple["object", "object"]:
    """Held-out liver number ``i`` of the benchmark: a lesion-free simulated still (overlays
    burned in) with diffuse disease ``spec`` (``None``: steatosis with fibrosis, grades drawn),
    on the scanner profiles in turn. Returns ``(SimulatedImage, spec)``."""
    from livus.simulate.diffuse import sample_diffuse_spec
    from livus.simulate.profiles import PROFILES
    from livus.simulate.scenes import sample_scene
    from livus.simulate.still import overlay_info_for, simulate_still

    if spec is None:
        spec = sample_diffuse_spec(rng, {"mixed": 1.0})
    names = list(PROFILES)
    prof = PROFILES[names[i % len(names)]]
    geom = geometries.get(prof)
    info = overlay_info_for(prof, "SIM^PATIENT", f"FP{i:04d}", datetime(2024, 1, 1, 9, 0))
    scene = sample_scene(rng, geom, "normal", diffuse=spec)
    sim = simulate_still(rng, geom, info=info, scene=scene)
    assert not sim.lesions
    return sim, spec


def share_interval(k: int, n: int) -> tuple[float, float]:
    """Wilson 95 % interval of a share ``k / n`` (scipy), so that a group's share is read with
    its uncertainty: one liver in 12 is 8 %, but so is anything from 1.5 % to 35 %."""
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return round(float(ci.low), 3), round(float(ci.high), 3)


def sits_on(scene: "object", geom: "object", center_px: tuple[float, float]) -> str:
    """What a reported lesion's centre (image pixels) lies on in the simulated ``scene``:
    ``vessel`` (within the vessel's radius + 1 mm), ``gallbladder``, ``kidney`` or ``liver``."""
    x, z = geom.px_to_mm(np.asarray([center_px[0]]), np.asarray([center_px[1]]))
    if any(float(v.distance(x, z)[0]) <= v.radius_mm + 1.0 for v in scene.vessels):
        return "vessel"
    for name in ("gallbladder", "kidney"):
        organ = getattr(scene, name)
        if organ is not None and float(organ.rho(x, z)[0]) < 1.0:
            return name
    return "liver"


def _label_at(mask: np.ndarray, center_px: tuple[float, float]) -> int:
    """The instance label of ``mask`` at a point (image pixels, clamped to the image)."""
    row = min(max(int(round(center_px[1])), 0), mask.shape[0] - 1)
    col = min(max(int(round(center_px[0])), 0), mask.shape[1] - 1)
    return int(mask[row, col])


def lesions_found(analyzer: "object", rng: np.random.Generator, n: int, cache: "object", names: list[str]) -> dict:
    """Share of simulated lesions found in ``n`` diffuse-disease livers drawn WITH lesions
    (a lesion is found when a reported lesion's centre lies inside its mask), and per liver its
    lesion labels and every candidate down to ``CANDIDATE_FLOOR`` as ``[score, lesion label at
    its centre (0: none)]``."""
    from livus.simulate.diffuse import sample_diffuse_spec
    from livus.simulate.profiles import PROFILES
    from livus.simulate.scenes import sample_scene
    from livus.simulate.still import overlay_info_for, simulate_still
    from livus.types import Frame

    found = total = extra = 0
    livers: list[dict] = []
    by_size = {size_bin(d): [0, 0] for d in (0.0, SIZE_BINS_MM[0], SIZE_BINS_MM[1])}  # [found, total] per bin
    for i in range(n):
        prof = PROFILES[names[i % len(names)]]
        geom = cache.get(prof)
        spec = sample_diffuse_spec(rng, {"steatosis": 0.3, "fibrosis": 0.4, "schistosomal": 0.1, "mixed": 0.2})
        scene = sample_scene(rng, geom, "malignant" if i % 2 else "benign", diffuse=spec)
        info = overlay_info_for(prof, "SIM^PATIENT", f"FL{i:04d}", datetime(2024, 1, 1, 9, 0))
        sim = simulate_still(rng, geom, info=info, scene=scene)
        frame = Frame(sim.image, f"diffuse_lesion_{i:04d}.png")
        r = analyzer.analyze(frame).result
        hits = [_label_at(sim.lesion_mask, les.center_px) for les in r.lesions]
        truth = {int(v) for v in np.unique(sim.lesion_mask) if v}
        found += len(truth & set(hits))
        total += len(truth)
        extra += hits.count(0)
        # size as the equivalent-circle diameter of the visible outline (mm: the simulator knows its spacing)
        diameters = {v: round(2.0 * float(np.sqrt((sim.lesion_mask == v).sum() / np.pi)) * geom.spacing_mm, 1) for v in sorted(truth)}
        for v, d in diameters.items():
            by_size[size_bin(d)][0] += v in hits
            by_size[size_bin(d)][1] += 1
        livers.append({"lesions": sorted(truth), "diameters_mm": [diameters[v] for v in sorted(truth)],
                       "candidates": [[round(les.score, 4), _label_at(sim.lesion_mask, les.center_px)]
                                      for les in analyzer.lesion_candidates(frame, CANDIDATE_FLOOR)]})
    return {"livers": n, "lesions": total, "found": found, "sensitivity": round(found / total, 3) if total else None,
            "false_positives_per_image": round(extra / n, 2) if n else None,
            "found_by_diameter": {k: f"{v[0]}/{v[1]}" for k, v in by_size.items()},
            "livers_detail": livers}


SIZE_BINS_MM = (10.0, 20.0)  # equivalent diameter bins of the simulated lesions: < 10, 10-20, >= 20 mm


def size_bin(diameter_mm: float) -> str:
    """The bin label of a lesion's equivalent diameter (mm)."""
    lo, hi = SIZE_BINS_MM
    return f"<{lo:g} mm" if diameter_mm < lo else (f"{lo:g}-{hi:g} mm" if diameter_mm < hi else f">={hi:g} mm")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=str(ROOT / "models"), help="model folder (detector.pt, classifier.pt, ...)")
    ap.add_argument("--per-grade", type=int, default=6)
    ap.add_argument("--normals", type=int, default=6)
    ap.add_argument("--schistosomal-per-grade", type=int, default=None, help="livers per schistosomal grade (default: half of --per-grade)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--with-lesions", type=int, default=0, help="also analyse N held-out diffuse livers with simulated lesions")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "diffuse_false_positives.json"))
    args = ap.parse_args()

    from livus.config import LivusConfig
    from livus.infer.frame import FrameAnalyzer
    from livus.simulate.profiles import PROFILES
    from livus.simulate.still import GeometryCache
    from livus.types import Frame

    analyzer = FrameAnalyzer(LivusConfig(), Path(args.models))
    if analyzer.detector is None:
        raise SystemExit(f"no detector model in {args.models}")
    rng = np.random.default_rng(args.seed)
    cache = GeometryCache()
    names = list(PROFILES)
    rows = []
    t0 = time.perf_counter()
    for i, (group, spec) in enumerate(groups(args.per_grade, args.normals, args.schistosomal_per_grade)):
        sim, spec = lesion_free_liver(rng, i, spec, cache)
        prof, scene, geom = sim.geom.profile, sim.scene, sim.geom
        frame = Frame(sim.image, f"diffuse_{i:04d}.png")
        r = analyzer.analyze(frame).result
        candidate_scores = [round(les.score, 4) for les in analyzer.lesion_candidates(frame, CANDIDATE_FLOOR)]
        bg = r.liver_background  # computed by FrameAnalyzer with the detector's liver outline
        bg = bg if bg is not None and bg.assessed else None
        rows.append({"group": group, "profile": prof.name, "spec": spec.to_labels(), "lesions": len(r.lesions),
                     "max_score": max((les.score for les in r.lesions), default=0.0),
                     "candidate_scores": candidate_scores,
                     "sits_on": [sits_on(scene, geom, les.center_px) for les in r.lesions],
                     "image_label": r.image_label,
                     "background": None if bg is None else {"steatosis": bg.steatosis, "fibrosis": bg.fibrosis,
                                                            "surface": bg.surface,
                                                            "cirrhosis_probability": bg.cirrhosis_probability}})
    seconds = time.perf_counter() - t0

    by_group: dict[str, dict] = {}
    for g in dict.fromkeys(r["group"] for r in rows):
        sel = [r for r in rows if r["group"] == g]
        abnormal = [r for r in sel if r["image_label"] and max(r["image_label"], key=r["image_label"].get) != "normal"]
        bgs = [r["background"] for r in sel if r["background"]]
        by_group[g] = {
            "n": len(sel),
            "with_reported_lesion": sum(r["lesions"] > 0 for r in sel),
            "share_with_reported_lesion": round(sum(r["lesions"] > 0 for r in sel) / len(sel), 3),
            "share_95ci": share_interval(sum(r["lesions"] > 0 for r in sel), len(sel)),
            "mean_lesions": round(float(np.mean([r["lesions"] for r in sel])), 2),
            "image_label_abnormal_share": round(len(abnormal) / len(sel), 3) if any(r["image_label"] for r in sel) else None,
            "background_steatosis": dict(sorted({b["steatosis"]: sum(x["steatosis"] == b["steatosis"] for x in bgs) for b in bgs}.items())),
            "background_fibrosis": dict(sorted({b["fibrosis"]: sum(x["fibrosis"] == b["fibrosis"] for x in bgs) for b in bgs}.items())),
        }
    total = {"n": len(rows), "with_reported_lesion": sum(r["lesions"] > 0 for r in rows)}
    total["share_95ci"] = share_interval(total["with_reported_lesion"], total["n"])
    places = [p for r in rows for p in r["sits_on"]]
    total["reported_lesions_sit_on"] = {p: places.count(p) for p in ("vessel", "gallbladder", "kidney", "liver")}
    with_lesions = lesions_found(analyzer, rng, args.with_lesions, cache, names) if args.with_lesions else None
    print(f"models: {args.models} ({analyzer.model_info})  seed {args.seed}, {len(rows)} lesion-free livers, "
          f"{seconds:.0f} s")
    print(f"{'group':22s} {'n':>3s} {'with lesion':>12s} {'share':>6s} {'95% CI':>13s} {'mean':>5s} {'img abn':>8s}  background (detector outline)")
    for g, d in by_group.items():
        ia = "—" if d["image_label_abnormal_share"] is None else f"{d['image_label_abnormal_share']:.2f}"
        ci = f"{d['share_95ci'][0]:.2f}–{d['share_95ci'][1]:.2f}"
        print(f"{g:22s} {d['n']:3d} {d['with_reported_lesion']:12d} {d['share_with_reported_lesion']:6.2f} {ci:>13s} "
              f"{d['mean_lesions']:5.2f} {ia:>8s}  {d['background_steatosis']} {d['background_fibrosis']}")
    print(f"{'all':22s} {total['n']:3d} {total['with_reported_lesion']:12d} "
          f"{total['with_reported_lesion'] / total['n']:6.2f} {total['share_95ci'][0]:.2f}–{total['share_95ci'][1]:.2f}")
    print(f"reported lesions sit on: {total['reported_lesions_sit_on']}")
    if with_lesions:
        print("diffuse livers with simulated lesions:", {k: v for k, v in with_lesions.items() if k != "livers_detail"})
    out = {"benchmark": "diffuse_false_positives", "models": str(args.models), "model_info": analyzer.model_info,
           "seed": args.seed, "seconds": round(seconds, 1), "report_threshold": analyzer.detector.cfg.score_threshold,
           "by_group": by_group, "total": total,
           "with_lesions": with_lesions, "images": rows}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
