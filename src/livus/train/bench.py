"""``livus bench``: speed and memory of the per-frame analysis on this machine.

For each runtime (PyTorch eager, ONNX Runtime fp32, ONNX Runtime static int8; dynamic int8 at
the default size for comparison) and each detector input size (model pixels, default
256/384/512) it runs the bedside path on one frame (default: the bundled 1024×768 example
``examples/hcc_malignant.png``, a simulated B-mode image) and reports:

* per-stage latency (median, p95, ms): read (file → ``Frame``), preprocess (``preprocess_frame``
  with a per-stream fan cache, as for a clip), detector, decode (peaks, soft-NMS, outlines,
  mapping to original pixels), classifier (crop + net on every detected lesion; at least one —
  a fixed lesion in the middle of the fan when the detector finds none, so the stage is always
  measured), overlay (``draw_overlay``);
* end-to-end single-stream frames per second (read → overlay, one process);
* in fresh processes: model load time, peak resident memory (``ru_maxrss``) of the inference
  process, and throughput with N worker processes (frames/s over all workers).

Models: ``model_dir/detector.pt`` and ``classifier.pt`` (the committed weights) or, when absent,
randomly initialised networks of the default configs (latency does not depend on the weights,
except through the number of lesions decoded). ONNX files at other input sizes and int8 files
are generated in a work folder (calibrated on ``data_dir`` when given, else on the example
images). Timings taken while other processes load the CPU are pessimistic: the JSON records the
load average before and after.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import platform
import resource
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

RUNTIMES = ("torch", "onnx-fp32", "onnx-int8")
DYNAMIC_INT8 = "onnx-int8-dynamic"
STAGES = ("read", "preprocess", "detector", "decode", "classifier", "overlay")

def _default_runtime() -> str:
    from livus.infer.onnx import DEFAULT_PRECISION

    return f"onnx-{DEFAULT_PRECISION}"


DEFAULT_RUNTIME = _default_runtime()  # the pipeline's default (see livus.infer.onnx.DEFAULT_PRECISION)
TARGETS = {"inference_ms_median_max": 10.0, "end_to_end_fps_min": 30.0, "peak_rss_mb_max": 500.0, "model_files_mb_max": 10.0}


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


@dataclass
class BenchConfig:
    """What ``livus bench`` measures. Sizes are detector input sides in model pixels."""

    model_dir: Path | None = None  # default: the repository's models/
    frame_path: Path | None = None  # default: examples/hcc_malignant.png (1024×768)
    data_dir: Path | None = None  # livus dataset for int8 calibration (default: example images)
    sizes: tuple[int, ...] = (256, 384, 512)
    runtimes: tuple[str, ...] = RUNTIMES
    compare_dynamic_int8: bool = True  # also time dynamic int8 at the default size
    iterations: int = 20
    warmup: int = 3
    threads: int = 2  # CPU threads of the single-stream runs
    workers: tuple[int, ...] = (1, 2)
    worker_frames: int = 20  # frames per worker in the process runs
    process_all_runtimes: bool = True  # fresh-process runs (memory, load time) for every runtime, not only the default
    default_runtime: str = DEFAULT_RUNTIME
    default_size: int | None = None  # default: the detector checkpoint's input size
    work_dir: Path | None = None  # generated ONNX files (default: a temporary folder)
    n_calibration: int = 16

    @classmethod
    def quick(cls, **kw: Any) -> BenchConfig:
        """A fast run for tests and smoke checks (one size, few iterations, one worker)."""
        base = dict(sizes=(256,), iterations=3, warmup=1, workers=(1,), worker_frames=3, compare_dynamic_int8=False,
                    n_calibration=2, process_all_runtimes=False)
        base.update(kw)
        return cls(**base)


# ----------------------------------------------------------------------------- model preparation


@dataclass(frozen=True)
class ModelSpec:
    """How to load one runtime's models (picklable, for worker processes)."""

    runtime: str
    size: int
    detector_path: str  # .pt for torch, .onnx otherwise
    classifier_path: str


@dataclass
class PreparedModels:
    detector_pt: Path
    classifier_pt: Path
    detector_source: str  # checkpoint path or "random"
    classifier_source: str
    default_size: int
    specs: dict[tuple[str, int], ModelSpec] = field(default_factory=dict)


def _random_checkpoints(work: Path) -> tuple[Path, Path]:
    import torch

    from livus.models.classifier import LesionClassifier, save_classifier
    from livus.models.detector import LesionDetector, save_detector

    torch.manual_seed(0)
    det = save_detector(LesionDetector(), work / "detector_random.pt", meta={"version": "random"})
    cls_path = work / "classifier_random.pt"
    save_classifier(LesionClassifier(), cls_path, meta={"version": "random"})
    return det, cls_path


def _calibration_images(cfg: BenchConfig, frame_path: Path, size: int) -> list[np.ndarray]:
    """Preprocessed calibration inputs at ``size``: from ``cfg.data_dir`` (training side of the
    split) or, without a dataset, the bench frame and the bundled example images."""
    from livus.config import PreprocessConfig
    from livus.train.onnx_build import calibration_images
    from livus.io.readers import read_frame
    from livus.preprocess.pipeline import preprocess_frame

    if cfg.data_dir is not None:
        return calibration_images(cfg.data_dir, size, cfg.n_calibration)
    paths = [frame_path] + sorted((_repo_root() / "examples").glob("*.png"))
    pcfg = PreprocessConfig(input_size_px=size)
    return [preprocess_frame(read_frame(p), pcfg).image for p in paths[: max(1, cfg.n_calibration)]]


def _classifier_calibration(cfg: BenchConfig, ccfg: Any) -> tuple[list[np.ndarray], np.ndarray]:
    from livus.train.onnx_build import calibration_crops

    if cfg.data_dir is not None:
        return calibration_crops(cfg.data_dir, ccfg, 2 * cfg.n_calibration)
    rng = np.random.default_rng(0)  # no dataset: smooth random crops (timing only)
    crops = rng.uniform(0, 1, (max(2, cfg.n_calibration), 2, ccfg.crop_size_px, ccfg.crop_size_px)).astype(np.float32)
    return list(crops), rng.normal(size=len(crops)).astype(np.float32)


def _reuse(path: Path, pt: Path, size: int | None = None) -> bool:
    """A shipped ONNX file can be used when it comes from this checkpoint (and has this size)."""
    from livus.infer.onnx import onnx_matches_checkpoint, read_onnx_metadata

    if not onnx_matches_checkpoint(path, pt):
        return False
    if size is None:
        return True
    return json.loads(read_onnx_metadata(path)["livus.config"]).get("input_size_px") == size


def prepare_models(cfg: BenchConfig, frame_path: Path, work: Path) -> PreparedModels:
    """Checkpoints and the ONNX files every (runtime, size) needs; shipped ONNX files are used
    when they match the checkpoint, the rest are generated in ``work``."""
    from livus.infer.onnx import (export_classifier_onnx, export_detector_onnx, onnx_model_path, quantize_classifier_int8,
                                  quantize_detector_int8, quantize_dynamic_int8)
    from livus.models.classifier import load_classifier
    from livus.models.detector import load_detector

    model_dir = Path(cfg.model_dir) if cfg.model_dir else _repo_root() / "models"
    rnd = None
    det_pt, cls_pt = model_dir / "detector.pt", model_dir / "classifier.pt"
    det_src, cls_src = str(det_pt), str(cls_pt)
    if not det_pt.is_file() or not cls_pt.is_file():
        rnd = _random_checkpoints(work)
    if not det_pt.is_file():
        det_pt, det_src = rnd[0], "random"
    if not cls_pt.is_file():
        cls_pt, cls_src = rnd[1], "random"
    det = load_detector(det_pt)
    cls = load_classifier(cls_pt)
    default_size = cfg.default_size or det.cfg.input_size_px
    out = PreparedModels(det_pt, cls_pt, det_src, cls_src, default_size)

    cls_files = {}
    for prec in ("fp32", "int8"):
        shipped = onnx_model_path(model_dir, "classifier", prec)
        cls_files[prec] = shipped if _reuse(shipped, cls_pt) else None
    if cls_files["fp32"] is None:
        cls_files["fp32"] = export_classifier_onnx(cls, work / "classifier.onnx", source_checkpoint=cls_pt)
    if cls_files["int8"] is None and ("onnx-int8" in cfg.runtimes or cfg.compare_dynamic_int8):
        crops, sizes = _classifier_calibration(cfg, cls.cfg)  # the dynamic-int8 row uses this classifier too
        cls_files["int8"] = quantize_classifier_int8(cls_files["fp32"], work / "classifier.int8.onnx", crops, sizes)

    for size in cfg.sizes:
        runtimes = list(cfg.runtimes) + ([DYNAMIC_INT8] if cfg.compare_dynamic_int8 and size == default_size else [])
        det_fp32 = onnx_model_path(model_dir, "detector")
        if not _reuse(det_fp32, det_pt, size):
            det_fp32 = work / f"detector_{size}.onnx"
            if any(r.startswith("onnx") for r in runtimes):
                export_detector_onnx(det, det_fp32, source_checkpoint=det_pt, input_size_px=size)
        for rt in runtimes:
            if rt == "torch":
                path = det_pt
            elif rt == "onnx-fp32":
                path = det_fp32
            elif rt == "onnx-int8":
                path = onnx_model_path(model_dir, "detector", "int8")
                if not _reuse(path, det_pt, size):
                    path = quantize_detector_int8(det_fp32, work / f"detector_{size}.int8.onnx",
                                                  _calibration_images(cfg, frame_path, size))
            elif rt == DYNAMIC_INT8:
                path = quantize_dynamic_int8(det_fp32, work / f"detector_{size}.int8dyn.onnx")
            else:
                raise ValueError(f"unknown runtime {rt!r} (choose from {RUNTIMES + (DYNAMIC_INT8,)})")
            cls_path = cls_pt if rt == "torch" else cls_files["fp32" if rt == "onnx-fp32" else "int8"]
            out.specs[(rt, size)] = ModelSpec(rt, size, str(path), str(cls_path))
    return out


def load_models(spec: ModelSpec, threads: int) -> tuple[Any, Any]:
    """``(detector, classifier)`` callables for ``spec`` with ``threads`` CPU threads."""
    import torch

    torch.set_num_threads(max(1, threads))
    if spec.runtime == "torch":
        from livus.models.classifier import load_classifier
        from livus.models.detector import load_detector

        det = load_detector(spec.detector_path)
        det.cfg.input_size_px = spec.size  # fully convolutional: any multiple of 32 works
        return det, load_classifier(spec.classifier_path)
    from livus.infer.onnx import load_onnx_classifier, load_onnx_detector

    # with ONNX Runtime doing the networks, torch only runs the small decoding ops: one thread
    # (more only adds OpenMP hand-offs and spinning)
    torch.set_num_threads(1)
    return load_onnx_detector(Path(spec.detector_path), threads), load_onnx_classifier(Path(spec.classifier_path), threads)


# ----------------------------------------------------------------------------- one frame, stage by stage


def _fallback_lesion(pre: Any, frame: Any) -> Any:
    """A fixed lesion at the fan's centre (original pixels), used when nothing was detected so
    that the classifier stage is always timed on one crop."""
    from livus.types import Lesion

    h, w = frame.pixels.shape
    if pre.fan_polygon_px:
        c = np.asarray(pre.fan_polygon_px, float).mean(0)
        cx, cy = float(c[0]), float(c[1])
    else:
        cx, cy = w / 2.0, h / 2.0
    return Lesion(id=1, score=0.0, center_px=(cx, cy), long_axis_px=80.0, short_axis_px=60.0, angle_deg=0.0)


def decode_to_original(out: dict[str, Any], det_cfg: Any, pre: Any) -> tuple[list[Any], list[list[float]] | None]:
    """Detector outputs → lesions and liver outline in ORIGINAL pixels (what the pipeline does
    after the network: decode in model pixels, then map back through the letterbox)."""
    import torch

    from livus.models.decode import decode_detections, liver_polygon
    from livus.types import Lesion

    valid = torch.from_numpy(pre.valid_mask[None, None].astype(np.float32))
    dets = decode_detections(out, det_cfg, valid_mask=valid)[0]
    lb = pre.letterbox
    lesions = []
    for i, d in enumerate(dets, start=1):
        c = lb.points_to_original(np.asarray([d.center_px], float))[0]
        poly = lb.points_to_original(np.asarray(d.polygon_px, float)).tolist() if d.polygon_px else []
        lesions.append(Lesion(id=i, score=float(d.score), center_px=(float(c[0]), float(c[1])),
                              long_axis_px=float(d.long_axis_px) / lb.scale, short_axis_px=float(d.short_axis_px) / lb.scale,
                              angle_deg=float(d.angle_deg), polygon_px=poly))
    liver = liver_polygon(out, 0, det_cfg.mask_threshold)
    liver_orig = lb.points_to_original(np.asarray(liver, float)).tolist() if liver else None
    return lesions, liver_orig


class FrameRunner:
    """The bedside path for one stream: read → preprocess → detector → decode → classifier →
    overlay, with per-stage wall times (seconds) of the last frame in ``last_times``."""

    def __init__(self, detector: Any, classifier: Any, size: int) -> None:
        from livus.config import PreprocessConfig
        from livus.preprocess.fan import FanCache

        self.detector, self.classifier = detector, classifier
        self.pcfg = PreprocessConfig(input_size_px=size)
        self.fan_cache = FanCache()
        self.last_times: dict[str, float] = {}
        self.last_cpu: dict[str, float] = {}  # process CPU seconds per stage (all threads)
        self.last_n_detections = 0

    def run(self, path: Path) -> np.ndarray:
        import torch

        from livus.io.readers import read_frame
        from livus.models.classifier import classify_lesions
        from livus.preprocess.pipeline import preprocess_frame
        from livus.report.overlay import draw_overlay
        from livus.types import FrameResult

        t, c = [time.perf_counter()], [time.process_time()]

        def tick() -> None:
            t.append(time.perf_counter())
            c.append(time.process_time())

        frame = read_frame(path)
        tick()
        pre = preprocess_frame(frame, self.pcfg, self.fan_cache)
        tick()
        with torch.no_grad():
            out = self.detector(torch.from_numpy(pre.image[None, None].astype(np.float32)))
        tick()
        lesions, liver = decode_to_original(out, self.detector.cfg, pre)
        tick()
        self.last_n_detections = len(lesions)
        to_classify = lesions or [_fallback_lesion(pre, frame)]
        for les, p in zip(to_classify, classify_lesions(self.classifier, frame.pixels, to_classify)):
            les.malignancy = p["malignancy"]
        tick()
        result = FrameResult(source=frame.source, frame_index=frame.frame_index, image_size_px=frame.size_px,
                             fan_polygon_px=pre.fan_polygon_px, liver_polygon_px=liver, lesions=lesions)
        rgb = draw_overlay(frame.pixels, result, language="en")
        tick()
        self.last_times = {s: t[i + 1] - t[i] for i, s in enumerate(STAGES)}
        self.last_cpu = {s: c[i + 1] - c[i] for i, s in enumerate(STAGES)}
        return rgb


def _summary_ms(values_s: list[float]) -> dict[str, float]:
    ms = np.asarray(values_s) * 1000.0
    return {"median": round(float(np.median(ms)), 3), "p95": round(float(np.percentile(ms, 95)), 3),
            "mean": round(float(ms.mean()), 3)}


def time_stages(spec: ModelSpec, frame_path: Path, threads: int, iterations: int, warmup: int) -> dict[str, Any]:
    """Per-stage latency and single-stream fps of ``spec`` in this process."""
    t0 = time.perf_counter()
    det, cls = load_models(spec, threads)
    load_s = time.perf_counter() - t0
    runner = FrameRunner(det, cls, spec.size)
    per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
    cpu: dict[str, list[float]] = {s: [] for s in STAGES}
    totals, infer = [], []
    for i in range(warmup + iterations):
        runner.run(frame_path)
        if i < warmup:
            continue
        for s in STAGES:
            per_stage[s].append(runner.last_times[s])
            cpu[s].append(runner.last_cpu[s])
        totals.append(sum(runner.last_times.values()))
        infer.append(runner.last_times["detector"] + runner.last_times["classifier"])
    return {
        "runtime": spec.runtime,
        "input_size_px": spec.size,
        "threads": threads,
        "iterations": iterations,
        "stages_ms": {s: _summary_ms(v) for s, v in per_stage.items()},
        # CPU time (all threads of this process): less disturbed by other processes than wall
        # time; with 1 thread it approximates the wall time on an idle core
        "stages_cpu_ms_median": {s: round(float(np.median(v)) * 1000, 3) for s, v in cpu.items()},
        "end_to_end_cpu_ms_median": round(float(np.median([sum(x) for x in zip(*cpu.values())])) * 1000, 3),
        "inference_ms": _summary_ms(infer),  # detector + classifier (incl. crop)
        "end_to_end_ms": _summary_ms(totals),
        "end_to_end_fps": round(len(totals) / sum(totals), 2),
        "n_detections": runner.last_n_detections,
        "model_load_s_warm": round(load_s, 3),
    }


# ----------------------------------------------------------------------------- fresh processes


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB: ``VmHWM`` from ``/proc/self/status`` (it
    restarts at exec, unlike ``ru_maxrss``, which a spawned child inherits from the forking
    parent); ``ru_maxrss`` where ``/proc`` is absent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def _worker_main(spec: ModelSpec, frame_path: str, threads: int, n_frames: int, barrier: Any, queue: Any) -> None:
    """One inference process: load (timed), warm up, wait for the others, run ``n_frames``."""
    t0 = time.perf_counter()
    det, cls = load_models(spec, threads)
    load_s = time.perf_counter() - t0
    runner = FrameRunner(det, cls, spec.size)
    runner.run(Path(frame_path))
    barrier.wait()
    start = time.time()
    for _ in range(n_frames):
        runner.run(Path(frame_path))
    end = time.time()
    peak_mb = peak_rss_mb()
    queue.put({"start": start, "end": end, "frames": n_frames, "load_s": load_s, "peak_rss_mb": peak_mb})


def run_workers(spec: ModelSpec, frame_path: Path, n_workers: int, threads_total: int, n_frames: int) -> dict[str, Any]:
    """Throughput of ``n_workers`` fresh processes (spawned: nothing inherited from this one),
    each with ``threads_total // n_workers`` threads; peak RSS and load time per process."""
    ctx = mp.get_context("spawn")
    threads = max(1, threads_total // n_workers)
    barrier, queue = ctx.Barrier(n_workers), ctx.Queue()
    procs = [ctx.Process(target=_worker_main, args=(spec, str(frame_path), threads, n_frames, barrier, queue))
             for _ in range(n_workers)]
    for p in procs:
        p.start()
    reports = [queue.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    wall = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    return {
        "runtime": spec.runtime, "input_size_px": spec.size, "workers": n_workers, "threads_per_worker": threads,
        "frames": sum(r["frames"] for r in reports), "throughput_fps": round(sum(r["frames"] for r in reports) / wall, 2),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in reports), 1),
        "model_load_s": round(statistics.median(r["load_s"] for r in reports), 3),
    }


# ----------------------------------------------------------------------------- the whole benchmark


def _model_files_mb(prep: PreparedModels, default_runtime: str) -> dict[str, float]:
    spec = prep.specs.get((default_runtime, prep.default_size))
    if spec is None:
        return {}
    files = {"detector": Path(spec.detector_path), "classifier": Path(spec.classifier_path)}
    sizes = {k: round(p.stat().st_size / 1e6, 3) for k, p in files.items()}
    sizes["total"] = round(sum(sizes.values()), 3)
    return sizes


def target_checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target of issue 9 with the measured value and whether it is met (default config)."""
    d = report.get("default_result") or {}
    proc = [p for p in report.get("processes", []) if p["runtime"] == report["default"]["runtime"]
            and p["input_size_px"] == report["default"]["input_size_px"]]
    peak = max((p["peak_rss_mb"] for p in proc), default=math.nan)
    checks = {
        "inference_ms_median": (d.get("inference_ms", {}).get("median", math.nan), "<=", TARGETS["inference_ms_median_max"]),
        "end_to_end_fps": (report.get("end_to_end_fps", math.nan), ">=", TARGETS["end_to_end_fps_min"]),
        "peak_rss_mb": (peak, "<=", TARGETS["peak_rss_mb_max"]),
        "model_files_mb": (report.get("model_files_mb", {}).get("total", math.nan), "<=", TARGETS["model_files_mb_max"]),
    }
    out = {}
    for k, (v, op, lim) in checks.items():
        v = math.nan if v is None else v  # not measured (e.g. a worker process failed)
        ok = (v <= lim) if op == "<=" else (v >= lim)
        out[k] = {"measured": v, "target": f"{op} {lim:g}", "met": bool(ok) if not math.isnan(v) else None}
    return out


def run_bench(cfg: BenchConfig, progress: bool = True) -> dict[str, Any]:
    """Run the benchmark; returns the report (see module docstring) as a JSON-ready dict."""
    import onnxruntime
    import torch

    from livus import __version__

    frame_path = Path(cfg.frame_path) if cfg.frame_path else _repo_root() / "examples" / "hcc_malignant.png"
    say = print if progress else (lambda *a, **k: None)
    t_start = time.perf_counter()
    load_before = os.getloadavg()
    tmp = None
    if cfg.work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="livus-bench-")
        work = Path(tmp.name)
    else:
        work = Path(cfg.work_dir)
        work.mkdir(parents=True, exist_ok=True)
    try:
        say("preparing models (export / quantisation)...")
        prep = prepare_models(cfg, frame_path, work)
        default = {"runtime": cfg.default_runtime, "input_size_px": prep.default_size}
        results = []
        for (rt, size), spec in prep.specs.items():
            say(f"timing {rt} at {size} px...")
            results.append(time_stages(spec, frame_path, cfg.threads, cfg.iterations, cfg.warmup))
        processes = []
        for rt in cfg.runtimes:
            spec = prep.specs.get((rt, prep.default_size))
            if spec is None or (rt != cfg.default_runtime and not cfg.process_all_runtimes):
                continue
            for n in cfg.workers if rt == cfg.default_runtime else cfg.workers[:1]:
                say(f"{n} worker process(es), {rt} at {prep.default_size} px...")
                processes.append(run_workers(spec, frame_path, n, cfg.threads, cfg.worker_frames))
        default_result = next((r for r in results if r["runtime"] == default["runtime"]
                               and r["input_size_px"] == default["input_size_px"]), None)
        import cv2

        h, w = cv2.imread(str(frame_path), cv2.IMREAD_GRAYSCALE).shape
        report: dict[str, Any] = {
            "format": "livus.bench/1",
            "livus_version": __version__,
            "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                        "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
                        "loadavg_before": [round(x, 2) for x in load_before]},
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
            "frame": {"path": str(frame_path), "width_px": int(w), "height_px": int(h)},
            "models": {"detector": prep.detector_source, "classifier": prep.classifier_source},
            "default": default,
            "results": results,
            "processes": processes,
            "default_result": default_result,
            "end_to_end_fps": default_result["end_to_end_fps"] if default_result else None,
            "model_files_mb": _model_files_mb(prep, cfg.default_runtime),
        }
        report["targets"] = target_checks(report)
        report["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        report["seconds"] = round(time.perf_counter() - t_start, 1)
        return report
    finally:
        if tmp is not None:
            tmp.cleanup()


# ----------------------------------------------------------------------------- accuracy of a variant


@dataclass
class AccuracyData:
    """Validation data for comparing model variants: preprocessed images (``preprocess_frame``,
    as the pipeline does) with their records, and ground-truth lesion crops for the classifier."""

    cache: Any  # livus.train.datasets.ModelSpaceCache
    records: list[Any]
    crops: np.ndarray  # (N, 2, C, C)
    sizes: np.ndarray  # (N,) size features
    malignant: np.ndarray  # (N,) 0/1, NaN unknown


def accuracy_data(data_dir: Path, input_size_px: int, classifier_cfg: Any | None = None, fold: int = 0,
                  max_images: int | None = None) -> AccuracyData:
    """The VALIDATION side of fold ``fold`` of :func:`livus.infer.onnx.dataset_split` (the split
    detector cross-validation uses), preprocessed at ``input_size_px``."""
    from livus.config import PreprocessConfig
    from livus.train.onnx_build import dataset_split, spread_indices
    from livus.io.dataset import Dataset, load_dataset
    from livus.train.datasets import build_cache

    ds = load_dataset(data_dir)
    _, val_idx = dataset_split([r.image_class or "unknown" for r in ds.images], fold)
    if max_images:
        val_idx = spread_indices(val_idx, max_images)
    records = [ds.images[i] for i in val_idx]
    cache = build_cache(ds, PreprocessConfig(input_size_px=int(input_size_px)), records)
    crops = sizes = mal = np.zeros(0, np.float32)
    if classifier_cfg is not None:
        from livus.train.classifier import build_samples

        samples = build_samples(Dataset(ds.root, records, ds.info), classifier_cfg)
        crops, sizes, mal = samples.eval_crops, samples.size, samples.malignant
    return AccuracyData(cache, records, crops, sizes, mal)


def detector_accuracy(detector: Any, data: AccuracyData) -> dict[str, float]:
    """Lesion sensitivity at 0.25 FP/image and mass Dice (at the config's report threshold) of a
    detector (torch or ONNX runner) on ``data`` — ``livus.train.detector.validate``."""
    from livus.train.detector import validate

    m = validate(detector, data.cache, data.records)
    out = {f"sens@{k}fp": float(v) for k, v in m.sensitivity_at_fp.items()}
    out.update({"mass_dice": float(m.mass_dice), "liver_dice": float(m.liver_dice)})
    return out


def classifier_auc(classifier: Any, data: AccuracyData, batch: int = 64) -> float:
    """Malignancy ROC AUC of a classifier (torch or ONNX runner) on the ground-truth lesion
    crops of ``data`` (lesions with a known label), predicted as the pipeline does
    (``livus.models.classifier.predict_logits``, flip TTA when the config asks for it)."""
    import torch

    from livus.evaluate.classification import roc_auc
    from livus.models.classifier import predict_logits

    known = ~np.isnan(data.malignant)
    if not known.any():
        return math.nan
    with torch.no_grad():
        z = predict_logits(classifier, data.crops, data.sizes, batch)["malignancy"]
    return float(roc_auc(data.malignant[known], 1.0 / (1.0 + np.exp(-z[known]))))


# ----------------------------------------------------------------------------- text output


def format_report(report: dict[str, Any]) -> str:
    """Plain-text tables of a :func:`run_bench` report."""
    m = report["machine"]
    lines = [f"livus bench — {m['cpu_count']} CPU(s), torch {m['torch']}, onnxruntime {m['onnxruntime']}, "
             f"load average {m['loadavg_before'][0]:.1f} → {m['loadavg_after'][0]:.1f} "
             f"(other processes on the CPU make these figures pessimistic)",
             f"frame {report['frame']['width_px']}×{report['frame']['height_px']} ({report['frame']['path']}); "
             f"models: detector {report['models']['detector']}, classifier {report['models']['classifier']}",
             "", "per-stage latency, ms: median / p95"]
    head = (f"{'runtime':18s} {'size':>4s} " + " ".join(f"{s:>13s}" for s in STAGES)
            + f" {'det+cls':>13s} {'e2e fps':>8s} {'e2e CPU ms':>10s}")
    lines += [head, "-" * len(head)]
    for r in report["results"]:
        cells = " ".join(f"{r['stages_ms'][s]['median']:6.1f}/{r['stages_ms'][s]['p95']:6.1f}" for s in STAGES)
        inf = r["inference_ms"]
        lines.append(f"{r['runtime']:18s} {r['input_size_px']:4d} {cells} {inf['median']:6.1f}/{inf['p95']:6.1f} "
                     f"{r['end_to_end_fps']:8.1f} {r['end_to_end_cpu_ms_median']:10.1f}")
    lines += ["", "fresh processes (default size):",
              f"{'runtime':18s} {'size':>4s} {'workers':>7s} {'threads':>7s} {'frames/s':>9s} {'peak RSS MB':>11s} {'load s':>7s}"]
    for p in report["processes"]:
        lines.append(f"{p['runtime']:18s} {p['input_size_px']:4d} {p['workers']:7d} {p['threads_per_worker']:7d} "
                     f"{p['throughput_fps']:9.1f} {p['peak_rss_mb']:11.1f} {p['model_load_s']:7.2f}")
    d = report["default"]
    lines += ["", f"default: {d['runtime']} at {d['input_size_px']} px; model files {report['model_files_mb']} MB",
              f"end_to_end_fps (default, single stream): {report['end_to_end_fps']}", "targets:"]
    for k, t in report["targets"].items():
        verdict = {True: "met", False: "NOT met", None: "n/a"}[t["met"]]
        lines.append(f"  {k:22s} {t['measured']!s:>10s}  target {t['target']:>8s}  {verdict}")
    lines.append(f"(bench took {report['seconds']} s)")
    return "\n".join(lines)


def bench_cli(args: Any) -> int:
    """``livus bench [--quick] [--json FILE] [--sizes 256,384] [--runtimes ...] [--data DIR]``."""
    kw: dict[str, Any] = {}
    if args.sizes:
        kw["sizes"] = tuple(int(s) for s in args.sizes.split(","))
    if args.runtimes:
        kw["runtimes"] = tuple(args.runtimes.split(","))
    for name in ("model_dir", "frame", "data", "work_dir"):
        v = getattr(args, name, None)
        if v:
            kw[{"frame": "frame_path", "data": "data_dir"}.get(name, name)] = Path(v)
    for name in ("iterations", "threads", "default_size"):
        v = getattr(args, name, None)
        if v:
            kw[name] = v
    if getattr(args, "workers", None):
        kw["workers"] = tuple(int(s) for s in args.workers.split(",") if int(s) > 0)  # "0": no process runs
    if getattr(args, "default_runtime", None):
        kw["default_runtime"] = args.default_runtime
    cfg = BenchConfig.quick(**kw) if args.quick else BenchConfig(**kw)
    report = run_bench(cfg)
    print(format_report(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
        print(f"JSON written to {args.json}")
    return 0
