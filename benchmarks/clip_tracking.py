"""Lesion tracking and lesion-score aggregation on simulated B-mode clips (issue #6).

Simulates ``--clips`` clips (scanner profiles round robin, burned-in overlays, a moving probe:
elevation sweep, breathing, drift, rotation, so lesions enter and leave the image plane; a rib
shadow sweeping in and the probe sliding off the liver at the end), half benign and half
malignant scenes (``livus.simulate``), and prints:

1. **Tracker alone** (``livus.infer.tracking.LesionTracker``) on the TRUE per-frame lesions,
   perturbed like a detector would: ``--drop`` share of detections dropped, centre noise of
   ``--jitter`` × the lesion's long axis, axes ±10%, ``--fp`` false detections per frame;
2. **Shipped models through the real pipeline**: every frame gated by the clip quality gate and
   analysed by ``FrameAnalyzer`` (bundled ``models/``), lesions linked by ``track_clip``;
   both on every frame and on keyframes (every 5th frame, and the pipeline's quality keyframes);
3. **Lesion malignancy from a clip**: per true lesion, the per-frame classifier outputs
   aggregated by attention-weighted mean (weights = detection confidence × frame-quality
   weight), plain mean and max: ROC AUC and Brier score against the simulated diagnosis
   (benign / malignant lesion types), with paired bootstrap 95% intervals of the AUC
   differences. Two sources of per-frame outputs: (a) the pipeline's tracks (detector boxes;
   the true lesion's majority track), (b) the classifier on the TRUE lesion outline in every
   frame where it is visible (isolates aggregation from detection; the weight's confidence is
   the score of the detection matched to it in that frame, 0 when missed; a further row uses
   the frame-quality weight alone). The malignancy head was trained on AUL lesions only, so on
   simulated lesions the B-mode feature heads (trained on simulated feature labels) are
   compared the same way against the simulator's per-lesion feature labels.

Metrics (``livus.evaluate.tracking``): a prediction matches a true lesion when its centre is
inside the true outline or box IoU ≥ 0.3; ID switches, fragmentations, track recall (one track
on ≥ 50% of the lesion's visible frames), frame recall, tracks per lesion, false tracks.

Usage: ``python benchmarks/clip_tracking.py [--clips 36] [--frames 20] [--scale 0.5] [--seed 0]``
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from livus.evaluate.classification import roc_auc  # noqa: E402
from livus.evaluate.tracking import PredictedLesion, TrackingMetrics, TrueLesion, evaluate_clip  # noqa: E402
from livus.infer.tracking import AGGREGATIONS, LesionTracker, aggregate_values, observation_weight  # noqa: E402
from livus.types import Frame, FrameResult, Lesion  # noqa: E402

PROFILE_NAMES = ("sonora_c5", "meditone_c3", "vistara_c6", "echowave_c4m", "sonora_l9", "vistara_l6")


@dataclass
class SimClip:
    """One simulated clip: frames, per-frame true lesions and simulator quality labels, and the
    malignancy of each lesion id."""

    name: str
    profile: str
    frames: list[Frame]
    truth: list[list[TrueLesion]]
    ellipses: list[dict[int, list[float]]]  # per frame: lesion_id → [cx, cy, long, short, angle]
    quality: list[str]
    malignant: dict[int, bool]
    diagnosis: dict[int, str]
    features: dict[int, dict[str, int | None]] = field(default_factory=dict)  # lesion_id → simulator feature labels
    verdicts: list[str] = field(default_factory=list)  # clip quality gate, filled by the pipeline run
    single_verdicts: list[str] = field(default_factory=list)  # single-frame gate on the same frames, for comparison
    results: list[FrameResult] = field(default_factory=list)  # pipeline result of every frame
    tracked: list[FrameResult] = field(default_factory=list)  # the same, lesions tracked over every frame


def simulate_clips(n: int, n_frames: int, scale: float, seed: int) -> list[SimClip]:
    from livus.simulate.clips import simulate_bmode_clip
    from livus.simulate.profiles import get_profile
    from livus.simulate.scenes import sample_scene
    from livus.simulate.still import GeometryCache, overlay_info_for

    cache = GeometryCache()
    clips = []
    for k in range(n):
        rng = np.random.default_rng([seed, k])
        profile = get_profile(PROFILE_NAMES[k % len(PROFILE_NAMES)])
        w, h = profile.image_size
        geom = cache.get(profile, (int(round(w * scale / 8) * 8), int(round(h * scale / 8) * 8)))
        scene = sample_scene(rng, geom, "malignant" if k % 2 else "benign")
        info = overlay_info_for(profile, "SIM^PATIENT", f"SIM{k:04d}", datetime(2026, 1, 1, 9, 0))
        sims = simulate_bmode_clip(rng, geom, scene, n_frames, 10.0, info)
        c = SimClip(f"clip_{k:03d}", profile.name, [], [], [], [], {}, {})
        for i, sim in enumerate(sims):
            c.frames.append(Frame(pixels=sim.image, source=c.name, frame_index=i, time_s=i / 10.0,
                                  pixel_spacing_mm=sim.pixel_spacing_mm))
            c.truth.append([TrueLesion(int(lab.annotation.lesion_id), lab.annotation.polygon_px) for lab in sim.lesions])
            c.ellipses.append({int(lab.annotation.lesion_id): list(lab.annotation.ellipse) for lab in sim.lesions})
            c.quality.append(str(sim.extra["quality"]))
            for lab in sim.lesions:
                c.malignant[int(lab.annotation.lesion_id)] = bool(lab.spec.malignant)
                c.diagnosis[int(lab.annotation.lesion_id)] = lab.spec.diagnosis
                c.features[int(lab.annotation.lesion_id)] = dict(lab.annotation.features)
        clips.append(c)
    return clips


def lesion_from_ellipse(ell: list[float], score: float = 1.0, polygon: list[list[float]] | None = None) -> Lesion:
    cx, cy, long_px, short_px, angle = ell
    return Lesion(id=0, score=score, center_px=(float(cx), float(cy)), long_axis_px=float(long_px),
                  short_axis_px=float(short_px), angle_deg=float(angle), polygon_px=polygon or [])


def perturbed_detections(clip: SimClip, i: int, rng: np.random.Generator, drop: float, jitter: float,
                         fp_rate: float) -> list[Lesion]:
    """The true lesions of frame ``i`` as a noisy detector would report them."""
    out = []
    for ell in clip.ellipses[i].values():
        if rng.random() < drop:
            continue
        cx, cy, lo, sh, ang = ell
        d = rng.normal(0.0, jitter * lo, 2)
        k = float(np.clip(1 + rng.normal(0, 0.1), 0.5, 1.5))
        out.append(lesion_from_ellipse([cx + d[0], cy + d[1], lo * k, sh * k, ang + rng.normal(0, 10)],
                                       float(rng.uniform(0.4, 1.0))))
    h, w = clip.frames[i].pixels.shape
    for _ in range(int(rng.poisson(fp_rate))):
        size = float(rng.uniform(0.04, 0.15) * w)
        out.append(lesion_from_ellipse([rng.uniform(0.2, 0.8) * w, rng.uniform(0.25, 0.85) * h, size, 0.8 * size, 0.0],
                                       float(rng.uniform(0.3, 0.8))))
    return out


def evaluate_tracked(clip: SimClip, frame_ids: list[int], lesions: list[list[Lesion]]):  # noqa: ANN201
    """Tracking metrics of one clip for the frames ``frame_ids`` whose tracked lesions are given."""
    preds = [[PredictedLesion(int(les.track_id), les.center_px, les.bbox_px) for les in ls] for ls in lesions]
    return evaluate_clip([clip.truth[i] for i in frame_ids], preds)


def regimes(clip: SimClip) -> dict[str, list[int]]:
    from livus.preprocess.keyframes import select_keyframes

    n = len(clip.frames)
    return {"every frame": list(range(n)), "every 5th frame": list(range(0, n, 5)),
            "quality keyframes (pipeline)": select_keyframes(clip.frames, mode="quality", interval=5)}


def tracker_alone(clips: list[SimClip], args: argparse.Namespace, tracker_kwargs: dict) -> dict[str, TrackingMetrics]:
    out: dict[str, TrackingMetrics] = {}
    for c in clips:
        rng = np.random.default_rng([args.seed, 7, int(c.name[-3:])])
        dets = [perturbed_detections(c, i, rng, args.drop, args.jitter, args.fp) for i in range(len(c.frames))]
        for name, ids in regimes(c).items():
            tr = LesionTracker(**tracker_kwargs)
            ls = [[replace(les) for les in dets[i]] for i in ids]
            for i, frame_lesions in zip(ids, ls):
                tr.update(i, frame_lesions)
            tr.finish()
            out[name] = out.get(name, TrackingMetrics()) + evaluate_tracked(c, ids, ls).metrics
    return out


def run_pipeline(clips: list[SimClip], model_dir: str | None) -> float:
    """Gate and analyse every frame of every clip with the shipped models (also the single-frame
    gate's verdicts, for comparison); seconds per frame of the pipeline alone."""
    from livus.infer.clip import analyze_clip_frames
    from livus.infer.frame import FrameAnalyzer
    from livus.preprocess.fan import FanCache
    from livus.preprocess.pipeline import cache_key
    from livus.preprocess.quality import assess_quality

    analyzer = FrameAnalyzer(model_dir=model_dir)
    print(f"models: {analyzer.model_info}")
    seconds = 0.0
    for c in clips:
        t0 = time.perf_counter()
        fas, verdicts = analyze_clip_frames(c.frames, analyzer)
        seconds += time.perf_counter() - t0
        c.verdicts = [v.verdict for v in verdicts]
        c.results = [fa.result for fa in fas]
        fan = FanCache()
        c.single_verdicts = [assess_quality(f, fan.get(f.pixels, cache_key(f)).mask).verdict for f in c.frames]
    return seconds / max(sum(len(c.frames) for c in clips), 1)


def pipeline_tracking(clips: list[SimClip], tracker_kwargs: dict) -> tuple[dict[str, TrackingMetrics], dict[str, list]]:
    """Tracking metrics of the pipeline per regime and, per regime, the matched tracks."""
    from livus.infer.clip import track_clip

    out: dict[str, TrackingMetrics] = {}
    matched: dict[str, list] = {}
    for c in clips:
        for name, ids in regimes(c).items():
            results = [replace(c.results[i], lesions=[replace(les) for les in c.results[i].lesions]) for i in ids]
            tracks = track_clip(results, c.name, LesionTracker(**tracker_kwargs))
            if name == "every frame":
                c.tracked = results
            res = evaluate_tracked(c, ids, [r.lesions for r in results])
            out[name] = out.get(name, TrackingMetrics()) + res.metrics
            by_id = {t.track_id: t for t in tracks}
            for lid in sorted({t.lesion_id for i in ids for t in c.truth[i]}):
                tid = res.majority_track(lid)
                matched.setdefault(name, []).append((c, lid, by_id.get(tid) if tid is not None else None, res))
    return out, matched


def quality_weight(c: SimClip, i: int) -> float:
    """Frame-quality weight of frame ``i`` as the pipeline gives it."""
    from livus.infer.clip import frame_quality_weight

    return frame_quality_weight(c.results[i])


def track_series(c: SimClip, lesion_id: int, track) -> LesionSeries:  # noqa: ANN001
    """The malignancy outputs of a pipeline track matched to true lesion ``lesion_id``."""
    obs = [(fi, les) for fi, les in track.observations if les.malignancy is not None]
    return LesionSeries({"malignancy": int(c.malignant[lesion_id])}, {"malignancy": [les.malignancy for _, les in obs]},
                        [observation_weight(les.score, quality_weight(c, fi)) for fi, les in obs])


QUALITY_ONLY = "attention, frame-quality weights only"


@dataclass
class LesionSeries:
    """Per-frame classifier outputs of one true lesion, their attention weights and its labels."""

    labels: dict[str, int]  # "malignancy" and the simulator's feature labels, 0/1
    outputs: dict[str, list[float]]  # same keys: one value per frame
    weights: list[float]  # detection confidence × frame-quality weight
    quality_weights: list[float] = field(default_factory=list)  # frame-quality weight alone


def true_box_series(clips: list[SimClip], model_dir: str | None, every_frame_matches: dict) -> list[LesionSeries]:
    """Per true lesion: the classifier (malignancy and feature heads) on its true outline in every
    frame where it is visible; weight = (score of the detection matched to it in that frame, 0
    when missed) × frame-quality weight."""
    from livus.infer.frame import FrameAnalyzer
    from livus.models.classifier import classify_lesions

    analyzer = FrameAnalyzer(model_dir=model_dir)
    out = []
    for c in clips:
        per_lesion: dict[int, LesionSeries] = {}
        res = every_frame_matches.get(c.name)
        for i, fr in enumerate(c.frames):
            lids = list(c.ellipses[i])
            if not lids:
                continue
            truths = {t.lesion_id: t for t in c.truth[i]}
            lesions = [lesion_from_ellipse(c.ellipses[i][lid], polygon=truths[lid].polygon_px) for lid in lids]
            outs = classify_lesions(analyzer.classifier, fr.pixels, lesions)
            scores = {les.track_id: les.score for les in c.tracked[i].lesions}
            for lid, o in zip(lids, outs):
                tid = res.matches[i].get(lid) if res is not None else None
                ser = per_lesion.setdefault(lid, LesionSeries(
                    {"malignancy": int(c.malignant[lid]), **{k: int(v) for k, v in c.features[lid].items() if v is not None}},
                    {}, []))
                for k, v in [("malignancy", o["malignancy"]), *o["features"].items()]:
                    ser.outputs.setdefault(k, []).append(v)
                ser.weights.append(observation_weight(scores.get(tid, 0.0) if tid is not None else 0.0, quality_weight(c, i)))
                ser.quality_weights.append(quality_weight(c, i))
        out += [per_lesion[k] for k in sorted(per_lesion)]
    return out


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def _aggregated(series: list[LesionSeries], key: str) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Labels, aggregated values per method, and the per-frame (label, value) pairs of ``key``."""
    use = [s for s in series if key in s.labels and key in s.outputs]
    y = np.array([s.labels[key] for s in use], float)
    preds = {m: np.array([aggregate_values(s.outputs[key], s.weights, m) for s in use]) for m in AGGREGATIONS}
    if all(s.quality_weights for s in use):
        preds[QUALITY_ONLY] = np.array([aggregate_values(s.outputs[key], s.quality_weights) for s in use])
    fy = np.concatenate([[s.labels[key]] * len(s.outputs[key]) for s in use]) if use else np.zeros(0)
    fp = np.concatenate([s.outputs[key] for s in use]) if use else np.zeros(0)
    return y, preds, fy, fp


def _bootstrap_diffs(keys: list[str], data: dict, n_boot: int, seed: int) -> dict[str, list[float]]:
    """Paired bootstrap over lesions of the AUC difference attention − mean / − max, averaged
    over ``keys`` (each resample draws lesions with replacement)."""
    rng = np.random.default_rng(seed)
    n = len(next(iter(data.values()))[0])
    diffs: dict[str, list[float]] = {"attention - mean": [], "attention - max": []}
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        dm, dx = [], []
        for k in keys:
            y, preds = data[k]
            if y[idx].min() == y[idx].max():
                break
            a = roc_auc(y[idx], preds["attention"][idx])
            dm.append(a - roc_auc(y[idx], preds["mean"][idx]))
            dx.append(a - roc_auc(y[idx], preds["max"][idx]))
        else:
            diffs["attention - mean"].append(float(np.mean(dm)))
            diffs["attention - max"].append(float(np.mean(dx)))
    return diffs


def _print_diffs(diffs: dict[str, list[float]], what: str) -> None:
    for k, d in diffs.items():
        if d:
            lo, hi = np.percentile(d, [2.5, 97.5])
            print(f"{what} {k}: {np.mean(d):+.3f} (95% paired bootstrap interval {lo:+.3f} to {hi:+.3f}, {len(d)} resamples)")


def aggregation_table(title: str, series: list[LesionSeries], n_boot: int, seed: int) -> None:
    """Malignancy AUC and Brier score of each aggregation over lesions (and of single frames)."""
    y, preds, fy, fp = _aggregated(series, "malignancy")
    print(f"\n### {title}: {len(y)} lesions ({int(y.sum())} malignant), {len(fp)} lesion-frames\n")
    print("| aggregation | malignancy AUC | Brier |\n|---|---|---|")
    print(f"| single frames (each lesion-frame alone) | {roc_auc(fy, fp):.3f} | {brier(fy, fp):.3f} |")
    for m in preds:
        print(f"| {m} | {roc_auc(y, preds[m]):.3f} | {brier(y, preds[m]):.3f} |")
    _print_diffs(_bootstrap_diffs(["malignancy"], {"malignancy": (y, preds)}, n_boot, seed), "AUC difference")


def feature_table(title: str, series: list[LesionSeries], n_boot: int, seed: int, min_class: int = 5) -> None:
    """The same comparison on the B-mode feature heads (trained on simulated lesions, so their
    per-frame outputs carry signal here): AUC per feature with ≥ ``min_class`` lesions per class."""
    names = sorted({k for s in series for k in s.outputs} - {"malignancy"})
    methods = [*AGGREGATIONS, QUALITY_ONLY]
    print(f"\n### {title}\n")
    print("| feature | lesions (positive) | single frames | " + " | ".join(methods) + " |")
    print("|---|---|---|" + "---|" * len(methods))
    data, rows = {}, []
    for k in names:
        y, preds, fy, fp = _aggregated(series, k)
        if y.sum() < min_class or (1 - y).sum() < min_class:
            continue
        data[k] = (y, preds)
        rows.append([roc_auc(fy, fp)] + [roc_auc(y, preds[m]) for m in methods])
        print(f"| {k} | {len(y)} ({int(y.sum())}) | " + " | ".join(f"{v:.3f}" for v in rows[-1]) + " |")
    if rows:
        mean = np.mean(rows, axis=0)
        print(f"| mean over {len(rows)} features | | " + " | ".join(f"{v:.3f}" for v in mean) + " |")
        _print_diffs(_bootstrap_diffs(list(data), data, n_boot, seed), "mean feature AUC difference")


def metrics_table(title: str, rows: dict[str, TrackingMetrics]) -> None:
    print(f"\n### {title}\n")
    print("| frames tracked | clips | true lesions | ID switches | switches/lesion | fragmentations | track recall | "
          "frame recall | tracks/lesion | predicted tracks | false tracks |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, m in rows.items():
        print(f"| {name} | {m.n_clips} | {m.n_true_lesions} | {m.id_switches} | {m.id_switches_per_lesion:.2f} | "
              f"{m.fragmentations} | {m.track_recall:.3f} | {m.frame_recall:.3f} | {m.tracks_per_lesion:.2f} | "
              f"{m.n_predicted_tracks} | {m.false_tracks} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=36)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--scale", type=float, default=0.5, help="image size as a share of each profile's export size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--drop", type=float, default=0.1, help="tracker-alone: share of true detections dropped")
    ap.add_argument("--jitter", type=float, default=0.1, help="tracker-alone: centre noise SD / long axis")
    ap.add_argument("--fp", type=float, default=0.05, help="tracker-alone: false detections per frame (Poisson mean)")
    ap.add_argument("--max-missed", type=int, default=None, help="LesionTracker.max_missed_updates (default: the class default)")
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--skip-models", action="store_true", help="only the tracker-alone part")
    ap.add_argument("--cache", type=Path, default=None, help="pickle of the simulated clips (reused when the settings match)")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    import torch

    torch.set_num_threads(1)
    tracker_kwargs = {} if args.max_missed is None else {"max_missed_updates": args.max_missed}

    t0 = time.perf_counter()
    key = (args.clips, args.frames, args.scale, args.seed)
    how = "simulated"
    if args.cache and args.cache.is_file() and pickle.loads(args.cache.read_bytes())[0] == key:
        clips, how = pickle.loads(args.cache.read_bytes())[1], f"loaded from {args.cache}"
    else:
        clips = simulate_clips(*key)
        if args.cache:
            args.cache.write_bytes(pickle.dumps((key, clips)))
    n_frames = sum(len(c.frames) for c in clips)
    q = [x for c in clips for x in c.quality]
    print(f"## {len(clips)} simulated clips x {args.frames} frames ({n_frames} frames; profiles {', '.join(PROFILE_NAMES)}; "
          f"scale {args.scale}; seed {args.seed}); simulator labels: " +
          ", ".join(f"{k} {q.count(k)}" for k in ("good", "shadowed", "out_of_liver")) +
          f"; {how} in {time.perf_counter() - t0:.0f} s")
    print(f"tracker: {LesionTracker(**tracker_kwargs)}")

    metrics_table(f"Tracker alone on true lesions (drop {args.drop:.0%}, centre noise {args.jitter} x long axis, "
                  f"{args.fp} false detections/frame)", tracker_alone(clips, args, tracker_kwargs))
    if args.skip_models:
        return
    spf = run_pipeline(clips, args.model_dir)
    verdicts = [v for c in clips for v in c.verdicts]
    print(f"\npipeline: {spf * 1e3:.0f} ms/frame (gate + preprocessing + detector + classifier, one thread); "
          f"clip gate low-quality frames: {sum(v != 'ok' for v in verdicts)} of {len(verdicts)}; frames with >= 1 detection: "
          f"{sum(bool(r.lesions) for c in clips for r in c.results)}")
    for label in ("good", "shadowed", "out_of_liver"):
        for gate, attr in (("clip gate", "verdicts"), ("single-frame gate", "single_verdicts")):
            vs = [v for c in clips for v, q in zip(getattr(c, attr), c.quality) if q == label]
            if vs:
                print(f"  simulator label {label}: {sum(v != 'ok' for v in vs)} of {len(vs)} frames low quality by the {gate} ("
                      + ", ".join(f"{k} {vs.count(k)}" for k in sorted(set(vs))) + ")")
    rows, matched = pipeline_tracking(clips, tracker_kwargs)
    metrics_table("Shipped detector through the pipeline (FrameAnalyzer + clip gate + LesionTracker)", rows)

    series = [track_series(c, lid, t) for c, lid, t, _ in matched["every frame"] if t is not None]
    aggregation_table("Lesion malignancy from the pipeline's tracks (every frame; true lesions with a majority track)",
                      [s for s in series if s.weights], args.boot, args.seed)
    every = {c.name: res for c, _, _, res in matched["every frame"]}
    true_series = true_box_series(clips, args.model_dir, every)
    aggregation_table("Lesion malignancy from the classifier on the true outlines (every visible frame)",
                      true_series, args.boot, args.seed)
    feature_table("B-mode feature heads on the true outlines (simulator feature labels per lesion; AUC)",
                  true_series, args.boot, args.seed)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; load average {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores")


if __name__ == "__main__":
    sys.exit(main())
