"""US LI-RADS v2017 category distribution on AUL, per AUL class (benign / malignant / normal).

Usage: .venv/bin/python benchmarks/lirads_aul.py [--data /work/data/aul] [--per-class N] [--seed 0]
       [--models models] [--threads 1] [--workers 1] [--json OUT] [--work DIR]

Each AUL image (the imported livus dataset: ``annotations.json`` gives ``file_name`` and
``image_class``) is analysed by the normal ``livus analyze`` path
(:func:`livus.infer.pipeline.analyze_paths`: no overlays, no Grad-CAM, English reports) as its own
case (a PNG is its own case), for a patient at risk of HCC (``--patient`` JSON ``{"hbv": true}``:
chronic HBV, the background US LI-RADS needs). The table counts, per AUL class, the
``lirads.us`` block of each ``case.json``: US-1 / US-2 / US-3, not categorised with its reason
(``size_unknown``: an observation that counts has no size in mm; ``not_assessable``: no usable
frame; ...), not applicable, and the visualization score A / B / C; and the observations (lesion
tracks): how many, how many count, how many were discounted as definitely benign (simple cyst)
and how many of those the classifier still gave a malignancy probability ≥ 0.5, and the images
whose pixel spacing livus found (depth-ruler ticks; AUL carries none).

Variants:

* **as is**: the images as imported (no pixel spacing in the files; livus looks for a depth
  ruler as it always does). An image with an observation that counts and no size in mm reads
  "not categorised: size_unknown", unless another observation already makes it US-3.
* **assumed pixel spacing**: not run. For PNG/JPEG livus has no way to be told a pixel size: the
  spacing comes only from a DICOM header (Sequence of Ultrasound Regions / Pixel Spacing) or from
  depth-ruler ticks found in the image (``preprocess.ruler_spacing``); there is no config key or
  per-image setting for a plain image. Converting AUL to DICOM with an invented spacing would
  change the input, not use a livus setting, so this script does not do it.

AUL's class is the image's diagnosis (benign / malignant lesion, or normal liver), not a
LI-RADS truth; AUL patients' HBV / cirrhosis status is unknown (the at-risk background is
assumed). The figures describe what livus outputs on these images, not a validation.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

CLASSES = ("benign", "malignant", "normal")
CATEGORIES = ("US-1", "US-2", "US-3")
VIS_SCORES = ("A", "B", "C")
AT_RISK_PATIENT = {"hbv": True}  # chronic HBV: at risk of HCC (livus.infer.case.is_at_risk)
NO_SPACING_MECHANISM = (
    "not run: livus takes a pixel size for PNG/JPEG only from depth-ruler ticks in the image "
    "(preprocess.ruler_spacing); a given spacing reaches the analysis only through a DICOM header. "
    "There is no config key or per-image setting for plain images.")


def sample_images(annotations: dict[str, Any], per_class: int | None, seed: int) -> list[tuple[str, str]]:
    """``(file_name, image_class)`` of the dataset's images, ``per_class`` of each class drawn
    without replacement with ``numpy.random.default_rng(seed)`` (all of a class when it has fewer,
    or when ``per_class`` is None), in the dataset's order."""
    rng = np.random.default_rng(seed)
    out = []
    for cls in CLASSES:
        imgs = [im for im in annotations["images"] if im.get("image_class") == cls]
        if per_class is not None and per_class < len(imgs):
            keep = sorted(rng.choice(len(imgs), size=per_class, replace=False).tolist())
            imgs = [imgs[i] for i in keep]
        out += [(im["file_name"], cls) for im in imgs]
    return out


def case_outcome(us: dict[str, Any] | None) -> str:
    """One label for a case's ``lirads.us``: its category, ``not categorised: <reason>``,
    ``not applicable: <reason>``, or ``no US result`` (no B-mode frame)."""
    if us is None:
        return "no US result"
    if us.get("status") == "categorised":
        return str(us["category"])
    kind = "not applicable" if us.get("status") == "not_applicable" else "not categorised"
    return f"{kind}: {us.get('reason')}"


def tally(cases: Iterable[tuple[str, dict[str, Any] | None, bool]]) -> dict[str, dict[str, Any]]:
    """Per class, counts over its cases ``(image_class, lirads.us dict or None, pixel spacing
    known)``: ``n``, ``outcome`` (case_outcome → count), ``visualization`` (A / B / C / none →
    count), ``observations`` (all lesion tracks), ``counting`` (tracks that count),
    ``definitely_benign`` (kind → count), ``benign_malignancy_ge_half`` (of those, tracks whose
    malignancy probability is ≥ 0.5), ``counting_with_size`` (tracks that count with a long axis in
    mm) and ``spacing_known`` (cases)."""
    out: dict[str, dict[str, Any]] = {}
    for cls, us, spacing_known in cases:
        t = out.setdefault(cls, {"n": 0, "outcome": Counter(), "visualization": Counter(), "observations": 0,
                                 "counting": 0, "counting_with_size": 0, "definitely_benign": Counter(),
                                 "benign_malignancy_ge_half": 0, "spacing_known": 0})
        t["n"] += 1
        t["outcome"][case_outcome(us)] += 1
        t["visualization"][(us or {}).get("visualization_score") or "none"] += 1
        t["spacing_known"] += int(spacing_known)
        for obs in (us or {}).get("observations") or []:
            t["observations"] += 1
            if obs.get("counts"):
                t["counting"] += 1
                t["counting_with_size"] += int(obs.get("long_axis_mm") is not None)
            else:
                t["definitely_benign"][obs.get("definitely_benign") or "unknown"] += 1
                t["benign_malignancy_ge_half"] += int((obs.get("malignancy") or 0.0) >= 0.5)
    return {cls: {k: dict(v) if isinstance(v, Counter) else v for k, v in t.items()} for cls, t in out.items()}


def format_table(tallies: dict[str, dict[str, Any]]) -> str:
    """Markdown tables: outcome and visualization score per class, then the observations."""
    outcomes = list(CATEGORIES)
    outcomes += sorted({o for t in tallies.values() for o in t["outcome"] if o not in CATEGORIES})
    classes = [c for c in CLASSES if c in tallies] + sorted(c for c in tallies if c not in CLASSES)
    vis = list(VIS_SCORES) + sorted({v for t in tallies.values() for v in t["visualization"] if v not in VIS_SCORES})

    def row(cells: Iterable[object]) -> str:
        return "| " + " | ".join(str(c) for c in cells) + " |"

    head = ["AUL class", "n"] + outcomes + [f"vis {v}" for v in vis]
    lines = [row(head), row(["---"] * len(head))]
    for cls in classes:
        t = tallies[cls]
        lines.append(row([cls, t["n"]] + [t["outcome"].get(o, 0) for o in outcomes]
                         + [t["visualization"].get(v, 0) for v in vis]))
    lines += ["", row(["AUL class", "observations", "count", "count with size (mm)", "definitely benign",
                       "of which malignancy ≥ 0.5", "spacing found"]), row(["---"] * 7)]
    for cls in classes:
        t = tallies[cls]
        benign = ", ".join(f"{k} {n}" for k, n in sorted(t["definitely_benign"].items())) or "0"
        lines.append(row([cls, t["observations"], t["counting"], t["counting_with_size"], benign,
                          t["benign_malignancy_ge_half"], f"{t['spacing_known']}/{t['n']}"]))
    return "\n".join(lines)


def read_cases(out_dir: Path, classes_by_file: dict[str, str]) -> list[dict[str, Any]]:
    """One entry per ``case.json`` under ``out_dir/cases``: its source file, AUL class,
    ``lirads.us`` and whether a pixel spacing was found for its frame(s) (``results.jsonl``)."""
    spacing: dict[str, bool] = {}
    with open(out_dir / "results.jsonl", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            spacing[r["source"]] = spacing.get(r["source"], False) or r.get("pixel_spacing_mm") is not None
    cases = []
    for path in sorted((out_dir / "cases").glob("*/case.json")):
        case = json.loads(path.read_text(encoding="utf-8"))
        (source,) = case["sources"]  # one image per case
        us = (case.get("lirads") or {}).get("us")
        cases.append({"file": source, "image_class": classes_by_file[str(Path(source).resolve())],
                      "outcome": case_outcome(us), "visualization": (us or {}).get("visualization_score"),
                      "spacing_known": spacing.get(source, False), "us": us, "model": case.get("model")})
    return cases


def run_as_is(args: argparse.Namespace, images: list[tuple[str, str]], work: Path) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """``analyze_paths`` on the images (one process), the cases read back, and the time taken."""
    from livus.infer.pipeline import analyze_paths

    patient = work / "patient.json"
    patient.write_text(json.dumps(AT_RISK_PATIENT), encoding="utf-8")
    config = work / "config.yaml"
    config.write_text(f"analyze:\n  threads: {args.threads}\n  gradcam: false\n  write_overlays: false\n", encoding="utf-8")
    paths = [args.data / f for f, _ in images]
    classes_by_file = {str(p.resolve()): cls for p, (_, cls) in zip(paths, images)}
    out = work / "as_is"
    w0, c0 = time.perf_counter(), time.process_time()
    summary = analyze_paths(paths, out, config_path=config, patient_path=patient, workers=args.workers,
                            language="en", overlays=False, model_dir=args.models, progress=False)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    if summary.errors:
        print(f"{len(summary.errors)} image(s) not analysed: " + "; ".join(summary.errors))
    timing = {"images": len(paths), "wall_s": round(wall, 1), "cpu_s_main_process": round(cpu, 1),
              "wall_s_per_image": round(wall / max(len(paths), 1), 2),
              "cpu_s_per_image_main_process": round(cpu / max(len(paths), 1), 2)}
    return read_cases(out, classes_by_file), timing


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("/work/data/aul"), help="the imported AUL livus dataset")
    ap.add_argument("--per-class", type=int, default=None, help="images per class, drawn with --seed (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", type=Path, default=Path(__file__).resolve().parents[1] / "models")
    ap.add_argument("--threads", type=int, default=1, help="torch/ONNX threads (analyze.threads)")
    ap.add_argument("--workers", type=int, default=1, help="livus analyze worker processes")
    ap.add_argument("--json", type=Path, default=None, help="write the tallies, timings and per-case outcomes here")
    ap.add_argument("--work", type=Path, default=None,
                    help="keep livus analyze's outputs here (default: a temporary folder, removed)")
    args = ap.parse_args()

    annotations = json.loads((args.data / "annotations.json").read_text(encoding="utf-8"))
    images = sample_images(annotations, args.per_class, args.seed)
    work = args.work or Path(tempfile.mkdtemp(prefix="lirads_aul_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        cases, timing = run_as_is(args, images, work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    tallies = tally((c["image_class"], c["us"], c["spacing_known"]) for c in cases)
    models = sorted({json.dumps(c["model"], sort_keys=True) for c in cases})
    counts = Counter(cls for _, cls in images)
    print(f"## US LI-RADS v2017 on AUL ({args.data}), {', '.join(f'{cls} {counts[cls]}' for cls in CLASSES)} "
          f"image(s) (seed {args.seed}), patient {json.dumps(AT_RISK_PATIENT)}, models {args.models}: "
          + "; ".join(models))
    print("\n### as is (no pixel spacing in the files)\n" + format_table(tallies))
    print("\n### assumed pixel spacing\n" + NO_SPACING_MECHANISM)
    print(f"\ntime: {timing['wall_s']} s wall for {timing['images']} image(s), {timing['wall_s_per_image']} s/image "
          f"wall, {timing['cpu_s_per_image_main_process']} s/image CPU of the main process "
          f"({args.threads} thread(s), {args.workers} worker(s); includes model loading and reports)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "data": str(args.data), "per_class": args.per_class, "seed": args.seed, "models": str(args.models),
            "model_info": [json.loads(m) for m in models], "patient": AT_RISK_PATIENT,
            "variants": {"as_is": tallies, "assumed_spacing": {"run": False, "why": NO_SPACING_MECHANISM}},
            "timing": timing,
            "cases": [{**{k: c[k] for k in ("file", "image_class", "outcome", "visualization", "spacing_known")},
                       "observations": (c["us"] or {}).get("observations") or []} for c in cases],
        }, indent=1, ensure_ascii=False), encoding="utf-8")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
