"""LI-RADS category agreement on simulated data, where the simulator knows the truth.

Usage: .venv/bin/python benchmarks/lirads_agreement.py [--stills 30] [--clips 12] [--cysts 0] [--seed 4242]
       [--ceus-seed 1000] [--models models] [--threads 1]

**US LI-RADS v2017** (surveillance B-mode): ``--stills`` simulated stills (every scanner
profile, a third each normal / benign / malignant, overlays burned in, pixel spacing known), each
one examination of an at-risk patient. Truth: the simulator's visible lesions: a simple cyst or
focal fat is definitely benign (does not count), any other lesion counts with its annotated long
axis in mm (US-2 below 10 mm, US-3 at or above). livus:

* *pipeline*: the shipped detector and classifier (``FrameAnalyzer``), lesions as tracks,
  ``assess_us`` (sizes from the detector, benign evidence from the classifier);
* *truth boxes*: the annotated lesions with the classifier's features on them (what the category
  rule does given perfect detection and sizes).

Printed: confusion matrices (rows truth, columns livus), agreement, Cohen's kappa (unweighted
and linear-weighted on US-1 < US-2 < US-3), the visualization scores by liver state. ``--cysts``
more stills with one simulated cyst each: how often the classifier's evidence makes it
"definitely benign" (simple cyst) on its annotated outline, with the two probabilities.

**CEUS LI-RADS v2017** (contrast clips): ``--clips`` simulated CEUS clips
(``livus.train.ceus.simulate_ceus_lesions``, seed ``--ceus-seed``: not the CEUS model's
training seed 0), each lesion read by the shipped CEUS model through its annotated outline.
Truth: the CEUS LI-RADS table on the simulator's own features: APHE and washout timing of its
time-intensity curves, rim APHE and marked washout for metastases, the lesion's diameter in mm
(also given to livus, so the comparison is about the features). livus: ``ceus_category`` from
the model's probabilities and rim APHE / marked washout measured on the lesion's time-intensity
curves (``livus.infer.ceus_tic``, thresholds of the shipped ``lirads.yaml``; where not measurable
the rule's assumption, non-rim / mild). Printed: confusion matrix, agreement, kappa (unweighted
and linear-weighted on LR-3 < LR-4 < LR-5 < LR-M), the LR-M row and column, low-confidence share;
the same with rim / marked assumed (the rule before the measures); rim APHE and marked washout
measured vs the simulator's truth (present / absent / not measured, by diagnosis). Simulated data
only; no statement about real patients.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from datetime import datetime

import numpy as np
import torch
from sklearn.metrics import cohen_kappa_score

from livus.infer.lirads import CeusFindings, ceus_category, ceus_table_category
from livus.infer.lirads_case import assess_us
from livus.infer.lirads_table import load_lirads_table
from livus.types import Frame, Lesion, PatientBackground

AT_RISK = PatientBackground(cirrhosis=True)
BENIGN_DIAGNOSES = ("cyst", "focal_fat_sparing", "focal_fat_deposition")  # definitely benign on US (truth)
US_LABELS = ["US-1", "US-2", "US-3"]
CEUS_LABELS = ["LR-1", "LR-2", "LR-3", "LR-4", "LR-5", "LR-M", "LR-TIV"]


def confusion(truth: list[str], pred: list[str], labels: list[str]) -> str:
    """Rows truth, columns livus (``n/g``: no category given)."""
    cols = labels + (["n/g"] if any(p not in labels for p in pred) else [])
    used = [lab for lab in labels if lab in truth or lab in pred]
    cols = [c for c in cols if c in used or c == "n/g"]
    counts = Counter(zip(truth, [p if p in labels else "n/g" for p in pred]))
    head = "truth \\ livus | " + " | ".join(cols)
    lines = [head, "|".join(["---"] * (len(cols) + 1))]
    for t in used:
        lines.append(f"{t} | " + " | ".join(str(counts[t, c]) for c in cols))
    return "\n".join(lines)


def agreement(truth: list[str], pred: list[str], labels: list[str]) -> str:
    n = len(truth)
    agree = sum(t == p for t, p in zip(truth, pred))
    given = [(t, p) for t, p in zip(truth, pred) if p in labels]
    ks = ""
    if given and len({x for pair in given for x in pair}) > 1:
        t, p = zip(*given)
        k0 = cohen_kappa_score(t, p, labels=labels)
        k1 = cohen_kappa_score(t, p, labels=labels, weights="linear")
        ks = f", kappa {k0:.3f}, linear-weighted kappa {k1:.3f} (on {len(given)} with a category)"
    return f"agreement {agree}/{n} = {agree / max(n, 1):.3f}{ks}"


def us_truth(sim) -> str:  # noqa: ANN001 - SimulatedImage
    sizes = []
    for lab in sim.lesions:
        if lab.spec.diagnosis in BENIGN_DIAGNOSES:
            continue
        sizes.append(lab.annotation.ellipse[2] * sim.geom.spacing_mm)
    if not sizes:
        return "US-1"
    return "US-3" if max(sizes) >= 10.0 else "US-2"


def run_us(args: argparse.Namespace) -> None:
    from livus.config import LivusConfig
    from livus.infer.frame import FrameAnalyzer
    from livus.infer.tracking import tracks_from_single_frames
    from livus.models.classifier import classify_lesions
    from livus.simulate.profiles import PROFILES
    from livus.simulate.still import GeometryCache, overlay_info_for, simulate_still

    cfg = LivusConfig()
    cfg.analyze.threads, cfg.analyze.gradcam = args.threads, False
    analyzer = FrameAnalyzer(cfg, args.models)
    table = load_lirads_table()
    rng = np.random.default_rng(args.seed)
    cache = GeometryCache()
    names = sorted(PROFILES)
    truth, pred, oracle = [], [], []
    vis_by_state: Counter[tuple[str, str]] = Counter()
    n_lesions = Counter()
    t_sim = t_an = 0.0
    for i in range(args.stills):
        prof = PROFILES[names[i % len(names)]]
        t0 = time.perf_counter()
        sim = simulate_still(rng, cache.get(prof), ("normal", "benign", "malignant")[i % 3],
                             info=overlay_info_for(prof, "SIM^PATIENT", f"SIM{i:05d}", datetime(2024, 1, 1, 9)))
        t1 = time.perf_counter()
        frame = Frame(sim.image, f"sim{i}", pixel_spacing_mm=sim.pixel_spacing_mm)
        fa = analyzer.analyze(frame)
        tracks = tracks_from_single_frames([(frame.source, fa.result.lesions)])
        res = assess_us(AT_RISK, [fa.result], tracks, table)
        t_sim, t_an = t_sim + t1 - t0, t_an + time.perf_counter() - t1
        truth.append(us_truth(sim))
        pred.append(res.category or f"n/g:{res.reason}")
        vis_by_state[sim.scene.liver_state, res.visualization or "-"] += 1
        n_lesions["truth"] += len(sim.lesions)
        n_lesions["detected"] += len(fa.result.lesions)
        # truth boxes: the annotated lesions, sizes from the annotation, features from the classifier
        lesions = []
        for k, lab in enumerate(sim.lesions, start=1):
            cx, cy, long_px, short_px, ang = lab.annotation.ellipse
            les = Lesion(k, 1.0, (cx, cy), long_px, short_px, ang, polygon_px=lab.annotation.polygon_px)
            les.fill_mm(sim.pixel_spacing_mm)
            lesions.append(les)
        if lesions and analyzer.classifier is not None:
            for les, out in zip(lesions, classify_lesions(analyzer.classifier, sim.image, lesions)):
                les.malignancy, les.features = out["malignancy"], out["features"]
        o = assess_us(AT_RISK, [fa.result], tracks_from_single_frames([(frame.source, lesions)]), table)
        oracle.append(o.category or f"n/g:{o.reason}")
        print(f"still {i}: {sim.image_class}, {len(sim.lesions)} lesion(s) "
              f"[{', '.join(f'{lab.spec.diagnosis} {lab.annotation.ellipse[2] * sim.geom.spacing_mm:.0f} mm' for lab in sim.lesions)}]"
              f" truth {truth[-1]}, livus {pred[-1]} vis {res.visualization}, truth boxes {oracle[-1]}", flush=True)
    print(f"\n## US LI-RADS v2017: {args.stills} simulated stills (seed {args.seed}), models {args.models} "
          f"({analyzer.model_info.get('version')}, classifier {analyzer.model_info.get('classifier_version')})")
    print(f"lesions: {n_lesions['truth']} simulated, {n_lesions['detected']} detections")
    print("\n### pipeline (detector sizes, classifier benign evidence)\n" + confusion(truth, pred, US_LABELS))
    print(agreement(truth, pred, US_LABELS))
    print("\n### truth boxes (annotated lesions and sizes, classifier benign evidence)\n" + confusion(truth, oracle, US_LABELS))
    print(agreement(truth, oracle, US_LABELS))
    print("\nvisualization score by simulated liver state: " + ", ".join(
        f"{state} {vis} {n}" for (state, vis), n in sorted(vis_by_state.items())))
    print(f"time: simulation {t_sim / args.stills:.2f} s/still, analysis {t_an / args.stills:.2f} s/still "
          f"({args.threads} thread(s))")


def run_cysts(args: argparse.Namespace) -> None:
    """Stills with one simulated cyst: is it definitely benign for livus (annotated outline)?"""
    from livus.config import LivusConfig
    from livus.infer.lirads import simple_cyst_evidence
    from livus.infer.frame import FrameAnalyzer
    from livus.models.classifier import classify_lesions
    from livus.simulate.profiles import PROFILES
    from livus.simulate.scenes import place_lesions, sample_anatomy, sample_liver_state
    from livus.simulate.still import GeometryCache, simulate_still

    cfg = LivusConfig()
    cfg.analyze.threads, cfg.analyze.gradcam = args.threads, False
    analyzer = FrameAnalyzer(cfg, args.models)
    params = load_lirads_table().params
    rng = np.random.default_rng(args.seed + 1)
    cache = GeometryCache()
    names = sorted(PROFILES)
    benign, n, probs = 0, 0, []
    for i in range(args.cysts):
        geom = cache.get(PROFILES[names[i % len(names)]])
        scene = sample_anatomy(rng, geom, sample_liver_state(rng, "cyst"))
        place_lesions(rng, scene, geom, ["cyst"])
        sim = simulate_still(rng, geom, scene=scene)
        for lab in sim.lesions:
            cx, cy, long_px, short_px, ang = lab.annotation.ellipse
            les = Lesion(1, 1.0, (cx, cy), long_px, short_px, ang, polygon_px=lab.annotation.polygon_px)
            out = classify_lesions(analyzer.classifier, sim.image, [les])[0]
            feats = out["features"]
            ev = simple_cyst_evidence(feats, params, out["malignancy"])
            n += 1
            benign += int(ev.definitely_benign)
            probs.append((feats.get("echo_anechoic"), feats.get("posterior_enhancement")))
            print(f"cyst {long_px * sim.geom.spacing_mm:4.0f} mm: anechoic {feats.get('echo_anechoic', float('nan')):.2f}, "
                  f"posterior enhancement {feats.get('posterior_enhancement', float('nan')):.2f} -> "
                  f"{'definitely benign' if ev.definitely_benign else 'counts'}", flush=True)
    an = [a for a, _ in probs if a is not None]
    pe = [b for _, b in probs if b is not None]
    print(f"\n### simulated cysts ({args.cysts} stills, seed {args.seed + 1}): {benign}/{n} definitely benign at "
          f"{params.benign_min_probability}; median anechoic {np.median(an) if an else float('nan'):.2f}, "
          f"median posterior enhancement {np.median(pe) if pe else float('nan'):.2f}")


def ceus_truth(diagnosis: str, aphe: int, washout: str, size_mm: float) -> str:
    mets = diagnosis == "metastasis"  # rim APHE and early marked washout in the simulator
    return ceus_table_category(CeusFindings(bool(aphe), washout, rim_aphe=mets, marked_washout=mets), size_mm)


def measured_agreement(name: str, truth: list[bool], calls: list[bool | None], diagnoses: list[str]) -> None:
    """A measured feature (rim APHE / marked washout) against the simulator's truth: rows truth,
    columns measured present / absent / not measured; and by diagnosis."""
    counts = Counter(zip(truth, calls))
    print(f"\n### {name} measured on the time-intensity curves vs simulator truth")
    print("truth \\ measured | present | absent | not measured\n---|---|---|---")
    for t in (True, False):
        print(f"{'present' if t else 'absent'} | {counts[t, True]} | {counts[t, False]} | {counts[t, None]}")
    done = [(t, c) for t, c in zip(truth, calls) if c is not None]
    agree = sum(t == c for t, c in done)
    print(f"agreement where measured {agree}/{len(done)}; not measured {len(truth) - len(done)}/{len(truth)}")
    by: Counter[tuple[str, str]] = Counter()
    for d, c in zip(diagnoses, calls):
        by[d, "not measured" if c is None else ("present" if c else "absent")] += 1
    print("by diagnosis: " + "; ".join(
        f"{d} " + ", ".join(f"{k} {by[d, k]}" for k in ("present", "absent", "not measured") if by[d, k])
        for d in sorted({d for d, _ in by})))


def lrm_rows(truth: list[str], pred: list[str], label: str) -> None:
    """The LR-M row (truth LR-M: what livus said) and column (livus LR-M: what the truth was)."""
    row = Counter(p for t, p in zip(truth, pred) if t == "LR-M")
    col = Counter(t for t, p in zip(truth, pred) if p == "LR-M")
    print(f"{label}: truth LR-M → livus {dict(sorted(row.items()))}; livus LR-M ← truth {dict(sorted(col.items()))}")


def run_ceus(args: argparse.Namespace) -> None:
    from livus.infer.ceus_tic import measure_rim_and_washout, measured_probabilities
    from livus.infer.lirads import MARKED_WASHOUT, RIM_APHE
    from livus.models.ceus import WASHOUT_CLASSES, ceus_features_for_lesion, load_ceus_model
    from livus.train.ceus import simulate_ceus_lesions

    model = load_ceus_model(f"{args.models}/ceus.pt")
    params = load_lirads_table().params
    t0 = time.perf_counter()
    lesions = simulate_ceus_lesions(args.clips, args.ceus_seed)
    t_sim = time.perf_counter() - t0
    truth, pred, assumed = [], [], []
    alone: list[str | None] = []
    rim_calls: list[bool | None] = []
    marked_calls: list[bool | None] = []
    low = n_assumptions = 0
    diag: Counter[str] = Counter()
    for les in lesions:
        p = ceus_features_for_lesion(les.windows, les.times_s, les.boxes, model, les.polygons)
        measured = measure_rim_and_washout(les.windows, les.times_s, les.boxes, les.polygons, params)
        res = ceus_category({**p, **measured_probabilities(measured)}, les.diameter_mm, params)
        old = ceus_category(p, les.diameter_mm, params)  # before: rim and marked assumed (non-rim, mild)
        # the measures alone: washout timing not used for LR-M (early read as late)
        p_late = {**p, "washout_late": p["washout_late"] + p["washout_early"], "washout_early": 0.0}
        alone.append(ceus_category({**p_late, **measured_probabilities(measured)}, les.diameter_mm, params).category)
        truth.append(ceus_truth(les.diagnosis, les.aphe, WASHOUT_CLASSES[les.washout], les.diameter_mm))
        pred.append(res.category or f"n/g:{res.reason}")
        assumed.append(old.category or f"n/g:{old.reason}")
        low += int(res.low_confidence)
        n_assumptions += int(bool(res.assumptions))
        diag[les.diagnosis, truth[-1] == pred[-1]] += 1
        calls = {k: (None if m.probability is None else m.probability >= params.present_probability)
                 for k, m in measured.items()}
        rim_calls.append(calls[RIM_APHE])
        marked_calls.append(calls[MARKED_WASHOUT])

        def fmt(k: str) -> str:
            m = measured[k]
            return f"n/m ({m.reason})" if m.probability is None else f"{m.value:.2f} p {m.probability:.2f}"

        print(f"{les.diagnosis:20s} {les.diameter_mm:5.1f} mm truth {truth[-1]:5s} livus {pred[-1]:5s}"
              f"{' (low confidence)' if res.low_confidence else ''} (assumed: {assumed[-1]})  "
              f"APHE {p['arterial_phase_hyperenhancement']:.2f} "
              f"washout none/late/early {p['washout_none']:.2f}/{p['washout_late']:.2f}/{p['washout_early']:.2f}  "
              f"rim {fmt(RIM_APHE)}  marked {fmt(MARKED_WASHOUT)}", flush=True)
    print(f"\n## CEUS LI-RADS v2017: {args.clips} simulated CEUS clips (seed {args.ceus_seed}), {len(lesions)} lesions "
          f"(visible in >= 3 frames), model {args.models}/ceus.pt, annotated outlines")
    print("\n### rim APHE and marked washout measured (livus.infer.ceus_tic)\n" + confusion(truth, pred, CEUS_LABELS))
    print(agreement(truth, pred, CEUS_LABELS))
    ordinal = ["LR-3", "LR-4", "LR-5", "LR-M"]
    given = [(t, p) for t, p in zip(truth, pred) if p in ordinal and t in ordinal]
    if given:
        t, p = zip(*given)
        print(f"linear-weighted kappa on LR-3 < LR-4 < LR-5 < LR-M: "
              f"{cohen_kappa_score(t, p, labels=ordinal, weights='linear'):.3f}")
    lrm_rows(truth, pred, "LR-M, measured")
    print(f"low confidence: {low}/{len(lesions)}; with an assumption left (not measured): {n_assumptions}/{len(lesions)}")
    print("correct by diagnosis: " + ", ".join(
        f"{d} {diag[d, True]}/{diag[d, True] + diag[d, False]}" for d in sorted({d for d, _ in diag})))
    print("\n### rim and marked assumed (non-rim, mild: the rule before the measures)\n"
          + confusion(truth, assumed, CEUS_LABELS))
    print(agreement(truth, assumed, CEUS_LABELS))
    lrm_rows(truth, assumed, "LR-M, assumed")
    lrm = [t == "LR-M" for t in truth]
    print(f"LR-M from the rim / marked measures alone (early washout read as late): "
          f"{sum(a == 'LR-M' and t for a, t in zip(alone, lrm))}/{sum(lrm)} truth LR-M, "
          f"{sum(a == 'LR-M' and not t for a, t in zip(alone, lrm))}/{len(lrm) - sum(lrm)} other observations")
    mets = [les.diagnosis == "metastasis" for les in lesions]  # the simulator's rim APHE and marked washout
    diagnoses = [les.diagnosis for les in lesions]
    measured_agreement("rim APHE", mets, rim_calls, diagnoses)
    measured_agreement("marked washout", mets, marked_calls, diagnoses)
    print(f"time: simulation {t_sim:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stills", type=int, default=30)
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--cysts", type=int, default=0)
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--ceus-seed", type=int, default=1000)
    ap.add_argument("--models", default="models")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.stills:
        run_us(args)
    if args.cysts:
        run_cysts(args)
    if args.clips:
        run_ceus(args)


if __name__ == "__main__":
    main()
