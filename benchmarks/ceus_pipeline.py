"""CEUS features through the analysis pipeline (``livus analyze`` in CEUS mode) on simulated
contrast clips, with the shipped models: does the (B-mode) detector + tracker find the lesions
on contrast frames, and how do the CEUS features of the tracks compare with the same model fed
the annotated boxes?

Usage: .venv/bin/python benchmarks/ceus_pipeline.py [--clips 12] [--seed 1000] [--models models]

Per clip (``livus.train.ceus`` simulation: convex profiles, 512x384, random frame times after
injection; seed 1000+ so the clips differ from the CEUS model's training clips, seed 0): every
frame is analysed (``analyze_clip_frames(..., ceus=True)``, clip time 0 = injection), lesions
tracked (``track_clip``) and ``add_ceus_features`` fills the tracks, the code path of
``analyze_input``. A simulated lesion is *found* when a track has a box with IoU >= 0.3 with its
annotated box in some frame (best track: most such frames). Printed: quality verdicts, lesions
found, tracks matching no lesion, and for found lesions the APHE / washout calls (threshold 0.5,
argmax) of the pipeline's track (``hold_boxes``: every frame at the nearest tracked position, the
shipped default; and the detected frames only) against the same model on the annotated boxes.
Simulated data only; the detector was trained on B-mode images, never on contrast frames.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from livus.config import LivusConfig
from livus.infer.ceus import add_ceus_features
from livus.infer.clip import analyze_clip_frames, track_clip
from livus.infer.frame import FrameAnalyzer
from livus.models.ceus import WASHOUT_CLASSES, ceus_features_for_lesion
from livus.models.classifier import lesion_box_xyxy
from livus.types import Frame, box_iou

MIN_IOU = 0.3


def _calls(p: dict[str, float]) -> tuple[int, str]:
    return int(p["arterial_phase_hyperenhancement"] >= 0.5), max(WASHOUT_CLASSES, key=lambda c: p[f"washout_{c}"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--models", default="models")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from livus.simulate.ceus import ceus_labels
    from livus.simulate.clips import simulate_ceus_clip
    from livus.simulate.profiles import get_profile
    from livus.simulate.still import GeometryCache
    from livus.train.ceus import CONVEX_PROFILES, _scene, sample_times

    cfg = LivusConfig()
    cfg.analyze.threads, cfg.analyze.gradcam = 1, False
    analyzer = FrameAnalyzer(cfg, Path(args.models))
    model = analyzer.ceus_model()
    rng = np.random.default_rng(args.seed)
    cache = GeometryCache()
    verdicts: Counter[str] = Counter()
    notes: Counter[str] = Counter()
    n_lesions = n_found = n_tracks = n_unmatched = n_frames = 0
    agree = Counter()
    truth = Counter()
    t_analyse = t_ceus = 0.0
    for c in range(args.clips):
        geom = cache.get(get_profile(CONVEX_PROFILES[int(rng.integers(len(CONVEX_PROFILES)))]), (512, 384))
        scene = _scene(rng, geom)
        times = sample_times(rng)
        sims = simulate_ceus_clip(rng, geom, scene, times_s=tuple(times))
        frames = [Frame(np.asarray(s.image if s.image.ndim == 2 else s.image.mean(axis=2), np.uint8), f"clip{c}", i,
                        time_s=float(t)) for i, (s, t) in enumerate(zip(sims, times))]
        n_frames += len(frames)
        t0 = time.perf_counter()
        fas, vs = analyze_clip_frames(frames, analyzer, ceus=True)
        tracks = track_clip([fa.result for fa in fas], f"clip{c}")
        t1 = time.perf_counter()
        add_ceus_features(fas, tracks, analyzer, 0.0, hold_boxes=False)
        detected_only = [dict(t.ceus_features) for t in tracks]
        t2 = time.perf_counter()
        notes.update(k for k, _ in add_ceus_features(fas, tracks, analyzer, 0.0))
        t_analyse, t_ceus = t_analyse + t1 - t0, t_ceus + time.perf_counter() - t2
        verdicts.update(v.verdict for v in vs)
        n_tracks += len(tracks)
        matched_tracks = set()
        for spec in scene.lesions:
            gt = {i: lab.annotation.bbox_xyxy for i, s in enumerate(sims) for lab in s.lesions
                  if lab.annotation.lesion_id == spec.lesion_id and len(lab.annotation.polygon_px) >= 3}
            if len(gt) < 3:
                continue
            n_lesions += 1
            hits = [(sum(fi in gt and box_iou(lesion_box_xyxy(les), gt[fi]) >= MIN_IOU for fi, les in t.observations), k)
                    for k, t in enumerate(tracks)]
            best, k = max(hits, default=(0, -1))
            y = ceus_labels(spec)
            if best == 0:
                continue
            n_found += 1
            matched_tracks.add(k)
            oracle = ceus_features_for_lesion([frames[i].pixels for i in sorted(gt)], [times[i] for i in sorted(gt)],
                                              [gt[i] for i in sorted(gt)], model)
            for name, p in (("pipeline", tracks[k].ceus_features), ("detected", detected_only[k]), ("annotated", oracle)):
                if p:
                    aphe, wo = _calls(p)
                    agree[name, "aphe"] += int(aphe == int(y["arterial_phase_hyperenhancement"]))
                    agree[name, "washout"] += int(wo == y["washout"])
                    agree[name, "n"] += 1
            truth["aphe"] += int(y["arterial_phase_hyperenhancement"])
        n_unmatched += len(tracks) - len(matched_tracks)
        print(f"clip {c}: {len(frames)} frames, {len(scene.lesions)} lesions, {len(tracks)} tracks", flush=True)

    print(f"\n{args.clips} simulated CEUS clips (seed {args.seed}), {n_frames} frames, models {args.models}")
    print("quality verdicts (CEUS mode): " + ", ".join(f"{v} {n}" for v, n in verdicts.most_common()))
    print(f"lesions (visible in >= 3 frames) found by a track: {n_found}/{n_lesions}; tracks: {n_tracks}, "
          f"matching no lesion: {n_unmatched}")
    for name, what in (("pipeline", "track, held boxes (shipped)"), ("detected", "track, detected frames only"),
                       ("annotated", "annotated boxes")):
        n = agree[name, "n"]
        if n:
            print(f"  {what:28s}: APHE correct {agree[name, 'aphe']}/{n}, washout correct {agree[name, 'washout']}/{n}")
    print(f"  found lesions with APHE: {truth['aphe']}/{n_found}")
    print("CEUS notes: " + ", ".join(f"{k} {n}" for k, n in notes.most_common()))
    print(f"time: analysis {t_analyse / max(n_frames, 1) * 1000:.0f} ms/frame, CEUS features "
          f"{t_ceus / max(args.clips, 1) * 1000:.0f} ms/clip (1 thread)")


if __name__ == "__main__":
    main()
