"""End-to-end throughput of `livus analyze` on stills, with HTML + PDF reports, overlays and
Grad-CAM (issue 17 target: >= 20 stills/s on the 2-core machine, process start included).

Two measurements on the same images:

1. in this process, ``analyze_paths(..., workers=1)`` with each stage timed by wrapping the
   functions the pipeline calls (nothing in the pipeline changes): read, preprocess (incl. the
   quality gate), liver background, detect, classify, explain (Grad-CAM), overlay (draw + PNG),
   report (HTML, PDF), and "other" (results.jsonl/summary.csv, case assessment, ...); model loading is "setup";
2. ``python -m livus.cli analyze --workers N`` as a fresh process for each N, wall clock from
   process start to exit: the figure a user sees.

Inputs: the first ``--n`` JPEGs of ``../shared/data/aul/*/image`` when that folder exists, else
the bundled ``examples/*.png`` stills copied ``--n`` times. State the machine's load (printed)
with any figure: the per-stage times are CPU-bound.

    .venv/bin/python benchmarks/analyze_throughput.py [--n 40] [--workers 1,2] [--language zh]
        [--model-dir DIR] [--inputs DIR] [--no-cli]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AUL = ROOT / ".." / "shared" / "data" / "aul"
STAGES = ("setup", "read", "preprocess", "liver_bg", "detect", "classify", "explain", "overlay", "report_html",
          "report_pdf")


def pick_inputs(n: int, tmp: Path, folder: Path | None = None) -> list[Path]:
    """``n`` still images copied into ``tmp/inputs`` (unique names, one folder for the CLI): from
    ``folder``, else the first AUL JPEGs, else the bundled examples repeated."""
    if folder is not None:
        found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:n]
    else:
        # AUL: Benign, Malignant and Normal in turn, each by image number (numbers repeat across classes)
        per_class = [sorted(d.glob("image/*.jpg"), key=lambda p: (int(p.stem) if p.stem.isdigit() else 0, p.name))
                     for d in sorted(AUL.glob("*")) if d.is_dir()]
        found = [p for group in zip(*per_class) for p in group][:n] if per_class else []
        if not found:
            examples = sorted((ROOT / "examples").glob("*.png"))
            found = [examples[i % len(examples)] for i in range(n)]
    out = tmp / "inputs"
    out.mkdir(parents=True, exist_ok=True)
    picked = []
    for i, src in enumerate(found):
        dst = out / f"{i:04d}_{src.parent.parent.name if folder is None else ''}_{src.name}"
        shutil.copyfile(src, dst)
        picked.append(dst)
    return picked


class StageClock:
    """Seconds spent in each wrapped function, by stage name (exclusive as long as the wrapped
    functions do not call each other)."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()  # wall clock
        self.cpu: Counter[str] = Counter()  # CPU time of the process (all its threads)
        self.calls: Counter[str] = Counter()
        self._undo: list[tuple[object, str, object]] = []

    def wrap(self, owner: object, name: str, stage: str) -> None:
        original = getattr(owner, name)
        clock = self

        def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                clock.seconds[stage] += time.perf_counter() - t0
                clock.cpu[stage] += time.process_time() - c0
                clock.calls[stage] += 1

        self._undo.append((owner, name, original))
        setattr(owner, name, timed)

    def wrap_generator(self, owner: object, name: str, stage: str) -> None:
        """For a function returning an iterator: time the call and every ``next``."""
        original = getattr(owner, name)
        clock = self

        def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            t0, c0 = time.perf_counter(), time.process_time()
            it = iter(original(*args, **kwargs))
            clock.seconds[stage] += time.perf_counter() - t0
            clock.cpu[stage] += time.process_time() - c0
            clock.calls[stage] += 1
            while True:
                t0, c0 = time.perf_counter(), time.process_time()
                try:
                    item = next(it)
                except StopIteration:
                    return
                finally:
                    clock.seconds[stage] += time.perf_counter() - t0
                    clock.cpu[stage] += time.process_time() - c0
                yield item

        self._undo.append((owner, name, original))
        setattr(owner, name, timed)

    def restore(self) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()


@contextmanager
def stage_clock():
    """Wrap the pipeline's stage functions (looked up at call time by the pipeline)."""
    import livus.infer.frame as frame
    import livus.io.readers as readers
    import livus.preprocess.pipeline as prep
    import livus.preprocess.quality as quality
    import livus.report as report
    import livus.report.html as html
    import livus.report.overlay as overlay
    import livus.report.pdf as pdf
    from livus.infer.frame import FrameAnalyzer

    clock = StageClock()
    clock.wrap(FrameAnalyzer, "__init__", "setup")
    clock.wrap_generator(readers, "read_frames", "read")
    clock.wrap(prep, "preprocess_frame", "preprocess")
    clock.wrap(quality, "assess_quality", "preprocess")
    clock.wrap(frame, "result_background", "liver_bg")  # imported by name into livus.infer.frame
    clock.wrap(FrameAnalyzer, "_detect", "detect")
    clock.wrap(FrameAnalyzer, "_classify", "classify")
    clock.wrap(FrameAnalyzer, "explain", "explain")
    clock.wrap(overlay, "draw_overlay", "overlay")
    clock.wrap(overlay, "write_overlay_png", "overlay")
    clock.wrap(html, "write_html", "report_html")
    clock.wrap(pdf, "write_pdf", "report_pdf")
    del report  # render_report imports write_html/write_pdf from their modules at call time
    try:
        yield clock
    finally:
        clock.restore()


def in_process(inputs: list[Path], out: Path, language: str, model_dir: Path | None,
               config: Path | None = None) -> tuple[float, StageClock, object]:
    from livus.infer.pipeline import analyze_paths

    with stage_clock() as clock, redirect_stdout(io.StringIO()):  # not the pipeline's summary print
        t0, c0 = time.perf_counter(), time.process_time()
        summary = analyze_paths(inputs, out, config_path=config, workers=1, language=language, overlays=True,
                                model_dir=model_dir, progress=False)
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
    clock.seconds["total"], clock.cpu["total"] = total, cpu
    return total, clock, summary


def cli_run(inputs_dir: Path, out: Path, workers: int, language: str, model_dir: Path | None,
            config: Path | None = None) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (the process and its workers) and frames of one CLI run."""
    import resource

    env = dict(os.environ)
    if model_dir is not None:
        env["LIVUS_MODEL_DIR"] = str(model_dir)
    cmd = [sys.executable, "-m", "livus.cli", "analyze", str(inputs_dir), "--out", str(out),
           "--workers", str(workers), "--language", language] + (["--config", str(config)] if config else [])
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
        raise SystemExit(f"livus analyze --workers {workers} failed ({proc.returncode})")
    return dt, cpu, len((out / "results.jsonl").read_text(encoding="utf-8").splitlines())


def _load() -> str:
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load average n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=40, help="number of still images")
    ap.add_argument("--workers", default="1,2", help="worker counts for the CLI runs, e.g. 1,2")
    ap.add_argument("--language", default="zh", choices=("zh", "en"))
    ap.add_argument("--model-dir", type=Path, default=None, help="models folder (default: the bundled one)")
    ap.add_argument("--inputs", type=Path, default=None, help="folder of images instead of AUL/examples")
    ap.add_argument("--config", type=Path, default=None, help="livus config YAML (e.g. analyze: {threads: 1})")
    ap.add_argument("--no-cli", action="store_true", help="only the in-process per-stage run")
    args = ap.parse_args()

    import livus

    print(f"livus {livus.__version__} from {Path(livus.__file__).parent}; {os.cpu_count()} CPUs; {_load()}; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}; config {args.config}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        inputs = pick_inputs(args.n, tmp, args.inputs)
        if not inputs:
            raise SystemExit("no input images found")
        print(f"{len(inputs)} images from {inputs[0].parent}, language {args.language}")

        total, clock, summary = in_process(inputs, tmp / "out_inproc", args.language, args.model_dir, args.config)
        n = summary.n_frames
        cpu = clock.cpu["total"]
        print(f"\nin-process analyze_paths (workers=1): {n} frames in {total:.1f} s = {n / total:.2f} images/s; "
              f"CPU {cpu:.1f} s = {1000 * cpu / max(n, 1):.0f} ms/image ({_load()})")
        print(f"{'stage':12s} {'wall s':>8s} {'ms/image':>9s} {'share':>6s} {'CPU ms/image':>13s}")
        acc_wall = acc_cpu = 0.0
        for stage in STAGES:
            w, c = clock.seconds.get(stage, 0.0), clock.cpu.get(stage, 0.0)
            acc_wall, acc_cpu = acc_wall + w, acc_cpu + c
            print(f"{stage:12s} {w:8.2f} {1000 * w / max(n, 1):9.1f} {100 * w / total:5.0f}% {1000 * c / max(n, 1):13.1f}")
        w, c = total - acc_wall, cpu - acc_cpu
        print(f"{'other':12s} {w:8.2f} {1000 * w / max(n, 1):9.1f} {100 * w / total:5.0f}% {1000 * c / max(n, 1):13.1f}"
              "   (results/summary files, case assessment, DICOM SR, ...)")

        if args.no_cli:
            return
        inputs_dir = inputs[0].parent
        print("\n`python -m livus.cli analyze` as a new process (process start, imports, model loading included):")
        for w in [int(x) for x in args.workers.split(",") if x.strip()]:
            dt, cpu, lines = cli_run(inputs_dir, tmp / f"out_cli_{w}", w, args.language, args.model_dir, args.config)
            print(f"  --workers {w}: {lines} frames in {dt:.1f} s = {lines / dt:.2f} images/s; CPU of all its "
                  f"processes {cpu:.1f} s = {1000 * cpu / max(lines, 1):.0f} ms/image ({_load()})")


if __name__ == "__main__":
    main()
