"""Input quality gate (``livus.preprocess.quality``): confusion matrix on a test set of bad and
good frames, ok-rate on the real AUL images, and milliseconds per frame.

Test set (all generated here, nothing downloaded):

* simulated B-mode clips over every convex/linear scanner profile (frames labelled by the
  simulator good / shadowed / out_of_liver → expected ok / heavily_shadowed / liver_not_in_view);
* a frozen pair per clip (the first frame repeated) → frozen; a colour-Doppler box drawn into a
  good frame → doppler_colour;
* natural-photo-like, grey textured photo-like, screenshot-like and uniform-noise images →
  not_ultrasound; black, white and
  uniform-grey frames (with a little noise) → blank;
* the AUL images (``--aul``, default ``../shared/data/aul``): all show the liver, so the share
  called ``ok`` is the gate's specificity on real data (per class and per verdict).

Each part also prints the assessability (``livus.infer.assessability``) the verdicts give:
assessable / limited / not assessable per expected label (clips: ``clip_assessabilities``);
on AUL, every image not assessable is a real liver image that would get no lesions or advice.

Usage: ``python benchmarks/quality_gate.py [--clips N] [--aul DIR] [--aul-limit K]``
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "preprocess"))  # the frame generators shared with the tests

import quality_fakes as qf  # noqa: E402

from livus.infer.assessability import clip_assessabilities, frame_assessability  # noqa: E402
from livus.preprocess.fan import detect_fan  # noqa: E402
from livus.preprocess.quality import VERDICTS, ClipQualityGate, assess_quality  # noqa: E402

EXPECTED = {"good": "ok", "shadowed": "heavily_shadowed", "out_of_liver": "liver_not_in_view"}
PROFILES = ["sonora_c5", "meditone_c3", "vistara_c6", "echowave_c4m", "vistara_l6"]


def build_test_set(n_clips: int, frames_per_clip: int) -> tuple[list[tuple[str, object, object, object]], list[list]]:
    """``(expected verdict, frame, fan mask or None, previous pixels or None)`` items, and the
    simulated clips themselves (for the clip-level gate)."""
    items: list[tuple[str, object, object, object]] = []
    clips = []
    for k in range(n_clips):
        clip = qf.simulated_clip_frames(100 + k, frames_per_clip, PROFILES[k % len(PROFILES)])
        clips.append(clip)
        prev = None
        for frame, fan, label in clip:
            items.append((EXPECTED[label], frame, fan, prev))
            prev = frame.pixels
        f0, fan0, _ = clip[0]
        items.append(("frozen", f0, fan0, f0.pixels.copy()))
        items.append(("doppler_colour", qf.doppler_frame(f0.pixels, fan0, seed=k), fan0, None))
    for s in range(6):
        items.append(("not_ultrasound", qf.photo_like(s), None, None))
        items.append(("not_ultrasound", qf.screenshot_like(s), None, None))
        items.append(("not_ultrasound", qf.uniform_noise(s), None, None))
        items.append(("not_ultrasound", qf.grey_textured_photo(s), None, None))
    for v in (0, 128, 255):
        items.append(("blank", qf.blank_frame(v, noise_grey=1.0), None, None))
    return items, clips


def confusion(rows: list[tuple[str, str]]) -> str:
    labels = [v for v in VERDICTS if any(t == v or p == v for t, p in rows)]
    w = max(len(v) for v in labels) + 1
    head = "expected \\ got".ljust(w) + " ".join(v[:10].rjust(10) for v in labels) + "   recall"
    lines = [head]
    for t in labels:
        got = Counter(p for tt, p in rows if tt == t)
        n = sum(got.values())
        if n == 0:
            continue
        lines.append(t.ljust(w) + " ".join(str(got.get(v, 0)).rjust(10) for v in labels) + f"   {got.get(t, 0) / n:.2f} ({n})")
    return "\n".join(lines)


STATUSES = ("assessable", "limited", "not_assessable")


def assessability_table(rows: list[tuple[str, str]]) -> str:
    """Counts of each assessability status per expected label."""
    w = max(len(t) for t, _ in rows) + 1
    lines = ["expected".ljust(w) + " ".join(s.rjust(15) for s in STATUSES)]
    for t in dict.fromkeys(t for t, _ in rows):
        got = Counter(s for tt, s in rows if tt == t)
        lines.append(t.ljust(w) + " ".join(str(got.get(s, 0)).rjust(15) for s in STATUSES))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=10)
    ap.add_argument("--frames", type=int, default=14)
    ap.add_argument("--aul", type=Path, default=ROOT / ".." / "shared" / "data" / "aul")
    ap.add_argument("--aul-limit", type=int, default=0, help="use every k-th AUL image (0 = all)")
    args = ap.parse_args()

    items, clips = build_test_set(args.clips, args.frames)
    rows, assess_rows, times_ms, times_fan_ms = [], [], [], []
    for expected, frame, fan, prev in items:
        t0 = time.perf_counter()
        v = assess_quality(frame, fan, prev)  # type: ignore[arg-type]
        dt = (time.perf_counter() - t0) * 1e3
        (times_ms if fan is not None else times_fan_ms).append(dt)
        rows.append((expected, v.verdict))
        assess_rows.append((expected, frame_assessability(v).status))
    acc = sum(t == p for t, p in rows) / len(rows)
    print(f"## Test set: {len(rows)} frames ({args.clips} simulated clips x {args.frames} frames + generated images)\n")
    print(confusion(rows))
    print(f"\naccuracy {acc:.3f}")
    print("\nassessability of these frames (single-frame gate):\n")
    print(assessability_table(assess_rows))
    clip_rows, clip_assess_rows = [], []
    for clip in clips:
        gate = ClipQualityGate()
        verdicts = [gate.assess(frame, fan) for frame, fan, _ in clip]
        clip_rows += [(EXPECTED[label], v.verdict) for (_, _, label), v in zip(clip, verdicts)]
        clip_assess_rows += [(EXPECTED[label], a.status) for (_, _, label), a in zip(clip, clip_assessabilities(verdicts))]
    print(f"\n## Clip-level gate (ClipQualityGate: frame against its clip's own reference) on the {len(clips)} simulated clips\n")
    print(confusion(clip_rows))
    print("\nassessability of the clip frames (clip_assessabilities):\n")
    print(assessability_table(clip_assess_rows))

    from livus.io.readers import read_frame

    files = sorted(glob.glob(str(args.aul / "*" / "image" / "*.jpg")))
    if args.aul_limit:
        files = files[:: args.aul_limit]
    if files:
        per_class: dict[str, Counter] = {}
        aul_assess: Counter = Counter()
        aul_ms, aul_fan_ms = [], []
        for f in files:
            frame = read_frame(Path(f))
            t0 = time.perf_counter()
            fan = detect_fan(frame.pixels).mask
            t1 = time.perf_counter()
            v = assess_quality(frame, fan)
            t2 = time.perf_counter()
            aul_fan_ms.append((t1 - t0) * 1e3)
            aul_ms.append((t2 - t1) * 1e3)
            per_class.setdefault(Path(f).parts[-3], Counter())[v.verdict] += 1
            a = frame_assessability(v)
            aul_assess[(a.status, ",".join(a.reasons))] += 1
        total = Counter()
        for c in per_class.values():
            total.update(c)
        n = sum(total.values())
        print(f"\n## AUL: {n} real liver images: ok-rate {total['ok'] / n:.3f}")
        for cls, c in sorted(per_class.items()):
            print(f"  {cls:10s} ok {c['ok'] / sum(c.values()):.3f}  " + ", ".join(f"{k} {v}" for k, v in c.most_common()))
        print(f"  gate with the fan given: median {statistics.median(aul_ms):.2f} ms/frame, p95 {np.percentile(aul_ms, 95):.2f} ms, "
              f"fastest {min(aul_ms):.2f} ms (fan detection when not cached: median {statistics.median(aul_fan_ms):.1f} ms)")
        print("  assessability: " + ", ".join(f"{s}{' (' + r + ')' if r else ''} {k}" for (s, r), k in sorted(aul_assess.items()))
              + f"; not assessable (real livers rejected): {sum(k for (s, _), k in aul_assess.items() if s == 'not_assessable')}")
    else:
        print(f"\nAUL images not found under {args.aul}: no real-data ok-rate")
    print(f"\nsimulated frames (512x384, fan given): median {statistics.median(times_ms):.2f} ms/frame; "
          f"generated images (fan detected inside): median {statistics.median(times_fan_ms):.1f} ms/frame")
    print(f"load average during the run (1/5/15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
