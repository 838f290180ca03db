"""Image-derived liver background (livus.infer.liver_background): calibration and validation.

1. Simulated livers of known grade (steatosis 0-3 and fibrosis F0-F4 drawn independently, some
   schistosomal, half with focal lesions, all six scanner profiles): with ``--fit`` the
   calibration set (seed ``--seed``) sets the weights and writes
   ``src/livus/infer/liver_background.json``; the held-out set (another seed) gives confusion
   matrices of steatosis grade and fibrosis class (F0-1 / F2-3 / F4) and the surface label.
2. AUL (real, no diffuse-disease labels): a sanity check only — the predicted background of the
   normal, benign and malignant livers (liver outline from the dataset, lesions excluded).

Measures: with ``--outline detector`` (how the shipped weights are fitted) as ``livus analyze``
takes them, on the exported image inside the detector's own liver outline (models of
``--models``); with ``--outline true`` (default) on the clean image inside the simulator's true
outline. Prints the figures and writes them as JSON. Usage:
  python benchmarks/liver_background.py [--fit] [--outline true|detector] [--n-cal 360] [--n-test 180]
      [--aul /work/data/aul] [--json benchmarks/results/liver_background.json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from livus.infer.liver_background import (
    FEATURES,
    FIBROSIS_CLASSES,
    MODEL_FILE,
    STEATOSIS_CLASSES,
    BackgroundModel,
    GradeModel,
    grade,
    liver_measures,
    load_background_model,
    polygon_to_mask,
)

ROOT = Path(__file__).resolve().parents[1]


def fibrosis_class(f: int) -> str:
    return FIBROSIS_CLASSES[0 if f <= 1 else 1 if f <= 3 else 2]


def simulate_graded(n: int, seed: int, cache_dir: str | None = None, analyzer=None) -> list[dict]:
    """``n`` simulated livers with their measures and true grades (all profiles in turn).
    With ``cache_dir`` each liver is appended to ``graded_<seed>.jsonl`` as it is done, and a
    rerun continues from there (the draws are replayed, the measures not recomputed).
    ``analyzer`` (a ``FrameAnalyzer``): the measures as ``livus analyze`` takes them, on the
    exported image (overlays burned in) inside the detector's own liver outline, instead of on
    the clean image inside the simulator's true outline."""
    from livus.simulate.diffuse import DiffuseSpec
    from livus.simulate.profiles import PROFILES
    from livus.simulate.scenes import sample_scene
    from livus.simulate.still import GeometryCache, simulate_still

    cached: list[dict] = []
    path = Path(cache_dir) / f"graded_{'detector_' if analyzer else ''}{seed}.jsonl" if cache_dir else None
    if path is not None and path.is_file():
        cached = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rng = np.random.default_rng(seed)
    cache = GeometryCache()
    names = list(PROFILES)
    rows = []
    for i in range(n):
        prof = PROFILES[names[i % len(names)]]
        sch = int(rng.integers(1, 4)) if rng.random() < 0.1 else 0
        spec = DiffuseSpec(int(rng.integers(0, 4)), int(rng.integers(0, 5)) if not sch else int(rng.integers(0, 3)), sch)
        lesion_free = rng.random() < 0.5
        sim_seed = int(rng.integers(2**31))
        done = next((c for c in cached if c["index"] == i), None)
        if done is not None:
            if done.get("measures"):
                rows.append(done)
            continue
        srng = np.random.default_rng(sim_seed)
        geom = cache.get(prof)
        scene = sample_scene(srng, geom, "normal" if lesion_free else None, diffuse=spec)
        sim = simulate_still(srng, geom, scene=scene)
        liver = polygon_to_mask(sim.liver_polygon, sim.clean.shape)
        m = None
        if analyzer is not None:
            from livus.types import Frame

            bg = analyzer.analyze(Frame(sim.image, f"graded_{i:04d}.png")).result.liver_background
            m = dict(bg.measures) if bg is not None and bg.assessed and bg.measures else None
        elif liver is not None:
            try:
                m, _ = liver_measures(sim.clean, liver, geom.fan_mask > 0, geom.spacing_mm, sim.lesion_mask > 0)
            except ValueError:
                m = None
        row = {"index": i, "profile": prof.name, "steatosis": spec.steatosis_grade, "fibrosis": spec.fibrosis_grade,
               "schistosomal": spec.schistosomal_grade, "lesions": len(sim.lesions), "measures": m}
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as fh:
                fh.write(json.dumps(row) + "\n")
        if m is not None:
            rows.append(row)
    return rows


def fit(rows: list[dict]) -> BackgroundModel:
    """Multinomial logistic models on standardised measures + surface thresholds."""
    from sklearn.linear_model import LogisticRegression

    X = np.array([[r["measures"][k] for k in FEATURES] for r in rows], float)
    mean = np.nanmean(X, axis=0)
    X = np.where(np.isfinite(X), X, mean)
    scale = X.std(axis=0)
    scale = np.where(scale > 1e-6, scale, 1.0)  # a constant measure (e.g. surface always in view) drops out
    Z = (X - mean) / scale

    def model(labels: list[str], classes: tuple[str, ...]) -> GradeModel:
        lr = LogisticRegression(C=1.0, max_iter=2000).fit(Z, labels)
        order = [list(lr.classes_).index(c) for c in classes]
        return GradeModel(classes, lr.coef_[order], lr.intercept_[order])

    st = model([STEATOSIS_CLASSES[r["steatosis"]] for r in rows], STEATOSIS_CLASSES)
    fi = model([fibrosis_class(r["fibrosis"]) for r in rows], FIBROSIS_CLASSES)
    rough = {f: [r["measures"]["surface_roughness_mm"] for r in rows
                 if r["fibrosis"] == f and r["measures"]["surface_in_view"]] for f in range(5)}
    # thresholds halfway between the median roughness of F0-F1 and F3, and of F3 and F4
    m01 = float(np.median(rough[0] + rough[1]))
    m3, m4 = float(np.median(rough[3])), float(np.median(rough[4]))
    thresholds = (round((m01 + m3) / 2, 3), round((m3 + m4) / 2, 3))
    info = {"calibrated_on": f"{len(rows)} simulated livers (livus.simulate.diffuse), no real graded data",
            "fitted": time.strftime("%Y-%m-%d"), "model": "sklearn LogisticRegression(C=1), multinomial"}
    return BackgroundModel(FEATURES, mean, scale, st, fi, thresholds, info)


def confusion(true: list[str], pred: list[str], classes: tuple[str, ...]) -> list[list[int]]:
    idx = {c: i for i, c in enumerate(classes)}
    cm = np.zeros((len(classes), len(classes)), int)
    for t, p in zip(true, pred):
        cm[idx[t], idx[p]] += 1
    return cm.tolist()


def print_cm(name: str, cm: list[list[int]], classes: tuple[str, ...]) -> None:
    n = np.asarray(cm)
    print(f"\n{name}: accuracy {np.trace(n) / max(n.sum(), 1):.3f} (rows = truth, columns = predicted)")
    print(f"{'':>10s} " + " ".join(f"{c:>10s}" for c in classes))
    for c, row in zip(classes, cm):
        print(f"{c:>10s} " + " ".join(f"{v:10d}" for v in row))


def evaluate(rows: list[dict], model: BackgroundModel) -> dict:
    preds = [grade(r["measures"], model) for r in rows]
    st_true = [STEATOSIS_CLASSES[r["steatosis"]] for r in rows]
    fi_true = [fibrosis_class(r["fibrosis"]) for r in rows]
    out = {
        "n": len(rows),
        "steatosis_confusion": confusion(st_true, [p.steatosis for p in preds], STEATOSIS_CLASSES),
        "fibrosis_confusion": confusion(fi_true, [p.fibrosis for p in preds], FIBROSIS_CLASSES),
        "steatosis_within_one_grade": float(np.mean([abs(STEATOSIS_CLASSES.index(p.steatosis) - r["steatosis"]) <= 1
                                                     for p, r in zip(preds, rows)])),
        "surface_by_fibrosis_grade": {f"F{f}": dict(Counter(p.surface for p, r in zip(preds, rows) if r["fibrosis"] == f))
                                      for f in range(5)},
        "cirrhosis_prob_by_fibrosis_grade": {f"F{f}": round(float(np.mean([p.cirrhosis_probability for p, r in
                                                                           zip(preds, rows) if r["fibrosis"] == f])), 3)
                                             for f in range(5) if any(r["fibrosis"] == f for r in rows)},
        "accuracy_by_profile": {},
    }
    from livus.infer.case import load_case_rules

    p_min = load_case_rules().image_cirrhosis_probability_min
    out["image_cirrhosis_signal_min_probability"] = p_min
    out["image_cirrhosis_signal_by_fibrosis_grade"] = {
        f"F{f}": f"{sum(p.cirrhosis_probability >= p_min for p, r in zip(preds, rows) if r['fibrosis'] == f)}"
                 f"/{sum(r['fibrosis'] == f for r in rows)}" for f in range(5)}
    for prof in sorted({r["profile"] for r in rows}):
        sel = [(p, r) for p, r in zip(preds, rows) if r["profile"] == prof]
        out["accuracy_by_profile"][prof] = {
            "n": len(sel),
            "steatosis": round(float(np.mean([p.steatosis == STEATOSIS_CLASSES[r["steatosis"]] for p, r in sel])), 3),
            "fibrosis": round(float(np.mean([p.fibrosis == fibrosis_class(r["fibrosis"]) for p, r in sel])), 3),
        }
    for key, sel in (("with_lesions", [r["lesions"] > 0 for r in rows]), ("lesion_free", [r["lesions"] == 0 for r in rows])):
        s = [(p, r) for p, r, k in zip(preds, rows, sel) if k]
        out[f"accuracy_{key}"] = {
            "n": len(s),
            "steatosis": round(float(np.mean([p.steatosis == STEATOSIS_CLASSES[r["steatosis"]] for p, r in s])), 3) if s else None,
            "fibrosis": round(float(np.mean([p.fibrosis == fibrosis_class(r["fibrosis"]) for p, r in s])), 3) if s else None,
        }
    return out


def aul_sanity(root: Path, model: BackgroundModel) -> dict:
    """Predicted background of AUL's normal / benign / malignant livers (no spacing: assumed)."""
    from livus.io.dataset import load_dataset

    from livus.infer.case import load_case_rules

    p_min = load_case_rules().image_cirrhosis_probability_min
    ds = load_dataset(root)
    out: dict[str, dict] = {}
    for rec in ds:
        if rec.liver_polygon is None:
            continue
        img = ds.read_image(rec)
        liver = polygon_to_mask(rec.liver_polygon, img.shape)
        fan = polygon_to_mask(rec.fan_polygon, img.shape) if rec.fan_polygon else None
        lesion = ds.read_mask(rec) > 0
        try:
            m, assumed = liver_measures(img, liver, fan, None, lesion)
        except ValueError:
            continue
        b = grade(m, model, assumed)
        d = out.setdefault(rec.image_class, {"n": 0, "steatosis": Counter(), "fibrosis": Counter(), "surface": Counter(),
                                             "cirrhosis_prob": []})
        d["n"] += 1
        d["steatosis"][b.steatosis] += 1
        d["fibrosis"][b.fibrosis] += 1
        d["surface"][b.surface] += 1
        d["cirrhosis_prob"].append(b.cirrhosis_probability)
        d["signal"] = d.get("signal", 0) + int(b.cirrhosis_probability >= p_min)
    for d in out.values():
        p = d.pop("cirrhosis_prob")
        d["cirrhosis_prob_mean"] = round(float(np.mean(p)), 3)
        d["cirrhosis_prob_median"] = round(float(np.median(p)), 3)
        for k in ("steatosis", "fibrosis", "surface"):
            d[k] = dict(d[k])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fit", action="store_true", help=f"calibrate and write src/livus/infer/{MODEL_FILE}")
    ap.add_argument("--n-cal", type=int, default=360)
    ap.add_argument("--n-test", type=int, default=180)
    ap.add_argument("--seed", type=int, default=11, help="calibration seed (held-out: seed + 1000)")
    ap.add_argument("--aul", default="/work/data/aul", help="AUL in livus dataset format ('' to skip)")
    ap.add_argument("--cache", default=None, help="folder keeping the simulated measures between runs")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "liver_background.json"))
    ap.add_argument("--outline", choices=("true", "detector"), default="true",
                    help="measure inside the simulator's true liver outline on the clean image, or as livus analyze "
                         "does: the exported image inside the detector's outline (models of --models)")
    ap.add_argument("--models", default=str(ROOT / "models"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    result: dict = {"benchmark": "liver_background", "outline": args.outline}
    analyzer = None
    if args.outline == "detector":
        from livus.config import LivusConfig
        from livus.infer.frame import FrameAnalyzer

        analyzer = FrameAnalyzer(LivusConfig(), Path(args.models))
        result["detector"] = analyzer.model_info
    if args.fit:
        cal = simulate_graded(args.n_cal, args.seed, args.cache, analyzer)
        model = fit(cal)
        path = ROOT / "src" / "livus" / "infer" / MODEL_FILE
        path.write_text(json.dumps(model.to_json_dict(), indent=1) + "\n", encoding="utf-8")
        print(f"calibrated on {len(cal)} simulated livers → {path}")
        result["calibration"] = evaluate(cal, model)
    model = load_background_model()
    result["model_info"] = model.info
    result["surface_thresholds_mm"] = list(model.surface_thresholds_mm)
    test = simulate_graded(args.n_test, args.seed + 1000, args.cache, analyzer)
    ev = evaluate(test, model)
    result["held_out_simulated"] = ev
    print(f"\nheld-out simulated livers: {ev['n']} (seed {args.seed + 1000}, all six scanner profiles)")
    print_cm("steatosis grade", ev["steatosis_confusion"], STEATOSIS_CLASSES)
    print(f"steatosis within one grade: {ev['steatosis_within_one_grade']:.3f}")
    print_cm("fibrosis class (F0-1 / F2-3 / F4)", ev["fibrosis_confusion"], FIBROSIS_CLASSES)
    print("\nmean cirrhosis probability by true grade:", ev["cirrhosis_prob_by_fibrosis_grade"])
    print("surface label by true grade:", json.dumps(ev["surface_by_fibrosis_grade"]))
    print(f"case-rule signal 'image suggests cirrhosis' (p >= {ev['image_cirrhosis_signal_min_probability']}) by true grade:",
          ev["image_cirrhosis_signal_by_fibrosis_grade"])
    print("accuracy by profile:", json.dumps(ev["accuracy_by_profile"]))
    print("with lesions:", ev["accuracy_with_lesions"], " lesion-free:", ev["accuracy_lesion_free"])
    if args.aul and Path(args.aul).is_dir():
        aul = aul_sanity(Path(args.aul), model)
        result["aul_sanity"] = aul
        print("\nAUL (real, no diffuse-disease labels; spacing assumed):")
        for cls, d in sorted(aul.items()):
            print(f"  {cls:10s} n={d['n']:3d} steatosis {d['steatosis']} fibrosis {d['fibrosis']} "
                  f"cirrhosis p mean {d['cirrhosis_prob_mean']:.3f}, 'image suggests cirrhosis' {d['signal']}, "
                  f"surface {d['surface']}")
    result["seconds"] = round(time.perf_counter() - t0, 1)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"\nwritten {args.json} ({result['seconds']} s)")


if __name__ == "__main__":
    main()
