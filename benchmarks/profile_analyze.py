"""Where `livus analyze` spends its time on stills: a cProfile of ``analyze_paths`` (HTML + PDF
reports, overlays, Grad-CAM, one process), split into stages by the functions the pipeline
calls, as shares of the total (issue 17: the next bottleneck after the report fonts).

Two profiles in one process:

* **cold**: the imports of the pipeline and the first ``analyze_paths`` on the images, what a
  fresh ``livus analyze`` does (process start = imports + model loading);
* **warm**: ``analyze_paths`` again on the same images in the same process (models, fonts and
  templates already loaded): the per-image work alone.

The profiler's clock is the process's CPU time (``time.process_time``: all its threads), so other
jobs on a shared machine change the figures less than a wall clock would. cProfile slows
pure-Python code (fpdf2 layout, drawing) more than NumPy/OpenCV/ONNX code, so the shares are a
guide to where the time goes, not a speed; state the machine's load (printed) with them. Run it
under ``nice`` on a shared machine.

    nice .venv/bin/python benchmarks/profile_analyze.py --inputs DIR [--n 12] [--language zh]
        [--model-dir DIR] [--config threads1.yaml] [--save PREFIX]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

# (stage, (file suffix, function name) ...): the stage's entry functions (cumulative time; the
# functions of different stages do not call each other)
STAGES = (
    ("read", (("livus/io/readers.py", "read_frames"),)),
    ("preprocess", (("livus/preprocess/pipeline.py", "preprocess_frame"), ("livus/preprocess/quality.py", "assess_quality"))),
    ("liver background", (("livus/infer/liver_background.py", "result_background"),)),
    ("detect", (("livus/infer/frame.py", "_detect"),)),
    ("classify", (("livus/infer/frame.py", "_classify"),)),
    ("explain (Grad-CAM)", (("livus/infer/frame.py", "explain"),)),
    ("overlay (draw + PNG)", (("livus/report/overlay.py", "draw_overlay"), ("livus/report/overlay.py", "write_overlay_png"))),
    ("case assessment", (("livus/infer/pipeline.py", "assess_input_case"),)),
    ("report HTML", (("livus/report/html.py", "write_html"),)),
    ("report PDF", (("livus/report/pdf.py", "write_pdf"),)),
    ("DICOM SR", (("livus/report/dicom_sr.py", "write_series_results"),)),
    ("model loading", (("livus/infer/frame.py", "__init__"),)),
)
IMPORTS = ("<frozen importlib._bootstrap>", "_find_and_load")


def _cumulative(stats: pstats.Stats, file_suffix: str, name: str) -> float:
    return sum(v[3] for (f, _, fn), v in stats.stats.items() if fn == name and f.endswith(file_suffix))  # type: ignore[attr-defined]


def stage_seconds(stats: pstats.Stats, total: float) -> dict[str, float]:
    """Cumulative seconds per stage, ``imports`` (may overlap the stages that import lazily) and
    ``other`` (the total less the stages)."""
    out = {stage: sum(_cumulative(stats, f, n) for f, n in funcs) for stage, funcs in STAGES}
    out["other"] = max(0.0, total - sum(out.values()))
    out["imports (overlaps)"] = _cumulative(stats, *IMPORTS)
    return out


def _table(title: str, seconds: dict[str, float], total: float, n: int) -> str:
    lines = [f"{title}: {total:.1f} s CPU profiled for {n} image(s)",
             f"  {'stage':24s} {'share':>6s} {'CPU s/image':>11s}"]
    for stage, s in seconds.items():
        lines.append(f"  {stage:24s} {100 * s / total:5.1f}% {s / n:11.3f}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inputs", type=Path, required=True, help="folder of still images (the first --n, by name)")
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--language", default="zh", choices=("zh", "en"))
    ap.add_argument("--model-dir", type=Path, default=None, help="models folder (default: the bundled one)")
    ap.add_argument("--config", type=Path, default=None, help="livus config YAML")
    ap.add_argument("--save", default=None, help="write PREFIX_cold.prof / PREFIX_warm.prof (pstats files)")
    args = ap.parse_args()

    images = sorted(p for p in args.inputs.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[:args.n]
    print(f"{len(images)} image(s) from {args.inputs}; load average %.2f %.2f %.2f; {os.cpu_count()} CPUs"
          % os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for run in ("cold", "warm"):
            prof = cProfile.Profile(time.process_time)
            t0 = time.perf_counter()
            with redirect_stdout(io.StringIO()):
                prof.enable()
                from livus.infer.pipeline import analyze_paths

                analyze_paths(images, Path(tmp) / run, config_path=args.config, language=args.language,
                              model_dir=args.model_dir, progress=False)
                prof.disable()
            wall = time.perf_counter() - t0
            stats = pstats.Stats(prof, stream=sys.stdout)
            total = stats.total_tt  # type: ignore[attr-defined]
            if args.save:
                stats.dump_stats(f"{args.save}_{run}.prof")
            results[run] = stage_seconds(stats, total)
            print(_table(f"{run} ({wall:.1f} s wall)", results[run], total, len(images)))


if __name__ == "__main__":
    main()
