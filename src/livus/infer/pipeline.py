"""The analysis pipeline: inputs → frames → preprocessing → models → results, overlays, reports.

``FrameAnalyzer.analyze(frame)`` is the one place where a frame becomes a ``FrameResult`` (used
by batch analysis and by the service). ``analyze_paths`` is the batch job behind
``livus analyze``: it reads files/folders/DICOM/clips, analyses every still frame and the
keyframes of clips, tracks lesions through clips, assesses each case and writes
``results.jsonl``, ``summary.csv``, ``cases/<case>/case.json``, overlays and reports.
All coordinates written are in original-image pixels.

Quality gate: a still is judged on its own (``assess_quality``); every frame of a clip goes, in
order, through one ``ClipQualityGate`` (``gate_clip``), which also judges a frame against the
clip's own statistics and catches far more frames of a probe sliding off the liver. Each frame
then gets its assessability (:mod:`livus.infer.assessability`; clips: ``clip_assessabilities``):
frames that are not assessable are not passed to the models (no lesions) and give no advice;
a case with no usable frame is "not assessable" with the frames' reasons. Low-quality frames
that are analysed keep their verdict and a warning, weigh ``LOW_QUALITY_WEIGHT`` in the lesion
tracks (``track_clip``), and are counted in the batch summary and the case warnings.

CEUS clips: when the time after the contrast injection is known (a DICOM clip's
``ContrastBolusStartTime`` and acquisition time, else ``AnalyzeConfig.ceus_injection_offset_s`` /
``livus analyze --ceus-offset``), each lesion track of the clip gets the CEUS feature
probabilities of ``models/ceus.pt`` (``add_ceus_features``) while the clip's pixels are still in
memory. Stills and clips without that time are analysed as B-mode.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from livus import __version__
from livus.config import LivusConfig, load_config
from livus.errors import InputError
from livus.preprocess.fan import FanCache
from livus.infer.assessability import case_assessability, clip_assessabilities, frame_assessability, result_assessability
from livus.preprocess.quality import ClipQualityGate, QualityVerdict
from livus.types import Assessability, CaseResult, Frame, FrameResult, Lesion, LesionTrack, PatientBackground

if TYPE_CHECKING:
    from livus.infer.tracking import LesionTracker
    from livus.models.ceus import CeusModel

DEFAULT_DETECTOR_FILE = "detector.pt"
DEFAULT_CLASSIFIER_FILE = "classifier.pt"
DEFAULT_CEUS_FILE = "ceus.pt"
# Frames that are not assessable (livus.infer.assessability) are not passed to the models at
# all; other low-quality frames are analysed but marked (and weigh less in clip aggregation).
LOW_QUALITY_WEIGHT = 0.3
IMAGE_FUSION_FILE = "image_label.json"


def default_model_dir() -> Path:
    """Folder of the bundled weights: ``$LIVUS_MODEL_DIR`` or the repository's ``models/``."""
    env = os.environ.get("LIVUS_MODEL_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "models"


@dataclass
class FrameAnalysis:
    """A frame's result plus what is needed to draw it (not serialised)."""

    frame: Frame | None  # released (None) once overlays are drawn
    result: FrameResult
    heatmap: np.ndarray | None = None  # explanation in original pixels, [0, 1]


class FrameAnalyzer:
    """Frame → FrameResult with the configured preprocessing and models.

    Without detector weights the frame is still preprocessed (fan, spacing) and the result says
    that no lesion analysis was done; nothing is invented.
    """

    def __init__(self, cfg: LivusConfig | None = None, model_dir: Path | None = None) -> None:
        self.cfg = cfg or LivusConfig()
        self.model_dir = Path(model_dir) if model_dir else default_model_dir()
        self.detector = None
        self.classifier = None
        self._torch_classifier = None  # for Grad-CAM (needs gradients), loaded on first use
        self._ceus_model = None  # CEUS feature model, loaded on the first CEUS clip
        self.model_info: dict[str, str] = {"name": "none", "version": "0"}
        self.image_fusion = None  # image head + lesion evidence → image label (models/image_label.json)
        if (self.model_dir / IMAGE_FUSION_FILE).is_file():
            from livus.models.image_label import ImageLabelFusion

            self.image_fusion = ImageLabelFusion.load(self.model_dir / IMAGE_FUSION_FILE)
        threads = max(1, self.cfg.analyze.threads)
        precision = self.cfg.analyze.precision
        if (self.model_dir / DEFAULT_DETECTOR_FILE).is_file():
            from livus.infer.onnx import load_model_for_inference

            self.detector, info = load_model_for_inference(self.model_dir, "detector", precision, threads)
            if info["runtime"] != "torch":
                import torch

                torch.set_num_threads(1)  # torch then only decodes; ONNX Runtime has the threads
            meta = getattr(self.detector, "meta", {}) or {}
            self.model_info = {"name": "livus-detector", "version": str(meta.get("version", "unknown")),
                               "runtime": info["runtime"]}
            self.cfg.preprocess.input_size_px = self.detector.cfg.input_size_px
            if (self.model_dir / DEFAULT_CLASSIFIER_FILE).is_file():
                self.classifier, cinfo = load_model_for_inference(self.model_dir, "classifier", precision, threads)
                cmeta = getattr(self.classifier, "meta", {}) or {}
                self.model_info["classifier_version"] = str(cmeta.get("version", "unknown"))
                self.model_info["classifier_runtime"] = cinfo["runtime"]

    def analyze(self, frame: Frame, cache: FanCache | None = None, previous: np.ndarray | None = None,
                verdict: QualityVerdict | None = None, assessability: Assessability | None = None) -> FrameAnalysis:
        """Analyse one frame; ``previous`` is the clip's preceding frame (for the frozen check).
        ``verdict``: the frame's quality verdict when already judged (clips: ``gate_clip``);
        otherwise the single-frame gate judges it here. ``assessability``: when already known
        (clips: ``clip_assessabilities``), else from the verdict; a frame that is not assessable
        gets no lesions."""
        from livus.preprocess.pipeline import preprocess_frame
        from livus.preprocess.quality import assess_quality

        pre = preprocess_frame(frame, self.cfg.preprocess, cache)
        if verdict is None:
            verdict = assess_quality(frame, pre.fan_mask, previous)
        result = FrameResult(
            source=frame.source,
            frame_index=frame.frame_index,
            time_s=frame.time_s,
            image_size_px=frame.size_px,
            pixel_spacing_mm=pre.pixel_spacing_mm,
            fan_polygon_px=pre.fan_polygon_px,
            warnings=list(pre.warnings),
            model=dict(self.model_info),
            quality=verdict.to_dict(),
            assessability=assessability or frame_assessability(verdict),
        )
        if frame.has_color:
            result.warnings.append("colour (Doppler) overlay present: colour pixels ignored")
        if not verdict.ok:
            result.warnings.append(f"low-quality frame ({verdict.verdict}): {verdict.reason}")
        if not result.assessability.usable:
            return FrameAnalysis(frame, result)
        if self.detector is None:
            result.warnings.append("no detector model found: lesions not analysed")
            return FrameAnalysis(frame, result)
        lesions, liver_model, head_probs = self._detect(pre)
        lb = pre.letterbox
        for les in lesions:
            les.fill_mm(pre.pixel_spacing_mm)
        result.lesions = lesions
        if liver_model:
            result.liver_polygon_px = lb.points_to_original(np.asarray(liver_model, float)).tolist()
        if self.classifier is not None:
            self._classify(frame, result, head_probs)
        else:
            result.warnings.append("no lesion classifier model found: malignancy not assessed")
        return FrameAnalysis(frame, result)

    def _classify(self, frame: Frame, result: FrameResult, head_probs: np.ndarray | None = None) -> None:
        """Malignancy and feature probabilities per lesion, and the image-level label."""
        from livus.models.classifier import classify_lesions, image_label

        for les, out in zip(result.lesions, classify_lesions(self.classifier, frame.pixels, result.lesions)):
            les.malignancy = out["malignancy"]
            les.features = out["features"]
        pairs = [(les.score, les.malignancy) for les in result.lesions]
        if head_probs is None and self.image_fusion is None:
            result.image_label = image_label(pairs)
        else:
            from livus.models.image_label import fuse_image_label

            result.image_label = fuse_image_label(head_probs, pairs, self.image_fusion)

    def explain(self, fa: FrameAnalysis) -> np.ndarray | None:
        """Grad-CAM of each lesion's malignancy, combined (max) into one heat map in original
        pixels, [0, 1]; also stores each lesion's attention-bias check in its ``explanation``.
        ``None`` when there is no lesion or no classifier."""
        if not fa.result.lesions or self.classifier is None:
            return None
        from livus.explain.bias import attention_bias
        from livus.explain.gradcam import gradcam_lesion
        from livus.io.dataset import polygon_mask
        from livus.models.classifier import load_classifier

        if self._torch_classifier is None:
            self._torch_classifier = load_classifier(self.model_dir / DEFAULT_CLASSIFIER_FILE)
        w, h = fa.frame.size_px
        fan = polygon_mask(fa.result.fan_polygon_px, w, h) if fa.result.fan_polygon_px else None
        heat = np.zeros((h, w), np.float32)
        for les in fa.result.lesions:
            cam = gradcam_lesion(self._torch_classifier, fa.frame.pixels, les)
            les.explanation = {"gradcam": "malignancy", "bias": attention_bias(cam, fan).to_json_dict()}
            np.maximum(heat, cam, out=heat)
        return heat

    def ceus_model(self) -> CeusModel:
        """The CEUS feature model ``model_dir/ceus.pt``, loaded on first use (raises
        ``FileNotFoundError`` when it is missing, ``ValueError`` when it is not a CEUS checkpoint)."""
        if self._ceus_model is None:
            from livus.models.ceus import load_ceus_model

            path = self.model_dir / DEFAULT_CEUS_FILE
            if not path.is_file():
                raise FileNotFoundError(str(path))
            self._ceus_model = load_ceus_model(path)
        return self._ceus_model

    def _detect(self, pre: object) -> tuple[list[Lesion], list[list[float]] | None, np.ndarray | None]:
        """Lesions (original pixels), the liver outline (model pixels) and the image-level head's
        normal/benign/malignant probabilities (``None`` for a detector without one)."""
        import torch

        from livus.models.decode import decode_detections, liver_polygon

        x = torch.from_numpy(pre.image[None, None].astype(np.float32))
        valid = torch.from_numpy(pre.valid_mask[None, None].astype(np.float32))
        with torch.no_grad():
            out = self.detector(x)
        dets = decode_detections(out, self.detector.cfg, valid_mask=valid)[0]
        lb = pre.letterbox
        lesions = []
        for i, d in enumerate(dets, start=1):
            center = lb.points_to_original(np.asarray([d.center_px], float))[0]
            poly = lb.points_to_original(np.asarray(d.polygon_px, float)).tolist() if d.polygon_px else []
            lesions.append(
                Lesion(
                    id=i,
                    score=float(d.score),
                    center_px=(float(center[0]), float(center[1])),
                    long_axis_px=float(d.long_axis_px) / lb.scale,
                    short_axis_px=float(d.short_axis_px) / lb.scale,
                    angle_deg=float(d.angle_deg),
                    polygon_px=poly,
                )
            )
        head = torch.softmax(out["image_logits"][0].float(), 0).numpy() if "image_logits" in out else None
        return lesions, liver_polygon(out, 0), head


# ----------------------------------------------------------------------------- batch analysis


@dataclass
class InputAnalysis:
    """All analysed frames of one input file, its case key and an error (if it failed).
    ``clip_quality``: for clips, the gate's verdict counts over ALL frames (not only the
    analysed keyframes). ``tracks``: for CEUS clips, the lesion tracks (``track_clip``) with
    their ``ceus_features`` (``None``: tracked later, in ``analyze_paths``). ``ceus_notes``: CEUS messages as ``(i18n key, values)``
    (see ``add_ceus_features``), worded in the report's language by ``_ceus_warnings``."""

    path: str
    frames: list[FrameAnalysis] = field(default_factory=list)
    case_key: str = ""
    is_clip: bool = False
    error: str | None = None
    clip_quality: dict[str, int] = field(default_factory=dict)
    tracks: list[LesionTrack] | None = None
    ceus_notes: list[tuple[str, dict[str, object]]] = field(default_factory=list)


@dataclass
class AnalyzeSummary:
    out_dir: Path
    n_inputs: int = 0
    n_frames: int = 0
    n_lesions: int = 0
    n_low_quality: int = 0  # analysed frames whose quality verdict is not ok
    n_clip_frames: int = 0  # all frames of clips, each judged by the clip quality gate
    n_clip_frames_low_quality: int = 0
    errors: list[str] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    overlays: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def _case_key(path: Path, frame: Frame) -> str:
    """Frames of one DICOM study share a case; any other input is its own case."""
    key = frame.metadata.get("StudyInstanceUID")
    if key:  # a short stable digest of the (long, unguessable) study UID; never the patient id
        return "study-" + hashlib.sha1(str(key).encode()).hexdigest()[:10]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem)[:80]


def gate_clip(frames: list[Frame], cache: FanCache) -> list[QualityVerdict]:
    """Quality verdict of every frame of one clip, in order, by one ``ClipQualityGate`` (frozen
    check against the preceding frame, off-liver check against the clip's own reference); the
    fan masks come from ``cache``, the same the preprocessing uses."""
    from livus.preprocess.pipeline import cache_key

    gate = ClipQualityGate()
    return [gate.assess(f, cache.get(f.pixels, cache_key(f)).mask) for f in frames]


CEUS_UNCHECKED = "ceus_unchecked"


def ceus_verdict(v: QualityVerdict) -> QualityVerdict:
    """The verdict of a contrast-mode (CEUS) frame: the B-mode gate's speckle test calls contrast
    frames ``not_ultrasound`` (tissue is suppressed; measured: every frame after the contrast
    arrived in a simulated CEUS clip without screen overlays), so such a frame becomes
    ``ceus_unchecked``: analysed, but marked as not quality-checked (and weighing less, like any
    frame not ``ok``). Other verdicts (``blank`` before the contrast arrives, ``frozen``...) stay."""
    if v.verdict != "not_ultrasound":
        return v
    return QualityVerdict(CEUS_UNCHECKED, "contrast-mode (CEUS) frame: the B-mode quality gate does not apply; "
                          "analysed without a quality check.",
                          "超声造影帧：B超质量检查不适用，未经质量检查即分析。", dict(v.measures))


def analyze_clip_frames(frames: list[Frame], analyzer: FrameAnalyzer, keep: list[int] | None = None,
                        cache: FanCache | None = None, ceus: bool = False
                        ) -> tuple[list[FrameAnalysis], list[QualityVerdict]]:
    """Gate all frames of a clip (``gate_clip``), then analyse the frames ``keep`` (all when
    ``None``) with their verdicts; returns the analyses and every frame's verdict. ``ceus``: the
    clip is contrast-mode (verdicts through ``ceus_verdict``)."""
    cache = cache or FanCache()  # a clip keeps one fan
    verdicts = gate_clip(frames, cache)
    if ceus:
        verdicts = [ceus_verdict(v) for v in verdicts]
    assess = clip_assessabilities(verdicts)
    keep = list(range(len(frames))) if keep is None else keep
    return [analyzer.analyze(frames[i], cache, verdict=verdicts[i], assessability=assess[i]) for i in keep], verdicts


def frame_quality_weight(r: FrameResult) -> float:
    """Weight of a frame's lesions in clip aggregation: 1, or ``LOW_QUALITY_WEIGHT`` when the
    quality gate did not call the frame ok."""
    return 1.0 if _quality_ok(r) else LOW_QUALITY_WEIGHT


def track_clip(results: list[FrameResult], source: str, tracker: LesionTracker | None = None) -> list[LesionTrack]:
    """Link the lesions of a clip's analysed frames (time order) into tracks (a default
    ``LesionTracker`` unless one is given); sets each lesion's ``track_id``."""
    from livus.infer.tracking import LesionTracker

    tracker = tracker or LesionTracker()
    for r in results:
        tracker.update(r.frame_index, r.lesions, frame_quality=frame_quality_weight(r), source=source)
    return tracker.finish()


def _dicom_time_s(value: object) -> float | None:
    """Seconds since midnight of a DICOM TM (``HHMMSS.FFFFFF``, colons tolerated) or the time
    part of a DT (``YYYYMMDDHHMMSS...``); ``None`` when absent or unreadable."""
    text = str(value or "").strip().replace(":", "")
    if len(text) >= 14 and text[:8].isdigit() and text[8:10].isdigit():
        text = text[8:]  # DT → its time part
    text = re.split(r"[+-]", text)[0]  # drop a UTC offset
    m = re.fullmatch(r"(\d{2})(\d{2})?(\d{2})?(\.\d+)?", text)
    if not m:
        return None
    h, mi, sec, frac = m.groups()
    return int(h) * 3600 + int(mi or 0) * 60 + int(sec or 0) + float(frac or 0.0)


def dicom_injection_offset_s(path: Path) -> float | None:
    """Seconds from the contrast injection to the start of a DICOM clip: acquisition time
    (``AcquisitionDateTime``, ``AcquisitionTime`` or ``ContentTime``) minus
    ``ContrastBolusStartTime`` (same day assumed). ``None`` unless both are present and the
    difference is 0–3600 s, so a clip is only called CEUS from its header when that is certain."""
    import pydicom

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True, force=True)
    except Exception:  # noqa: BLE001 - the reader reports unreadable files
        return None
    bolus = _dicom_time_s(ds.get("ContrastBolusStartTime"))
    acq = next((t for key in ("AcquisitionDateTime", "AcquisitionTime", "ContentTime")
                if (t := _dicom_time_s(ds.get(key))) is not None), None)
    if bolus is None or acq is None:
        return None
    offset = acq - bolus
    return offset if 0.0 <= offset <= 3600.0 else None


def ceus_injection_offset(path: Path, first: Frame, configured_s: float | None) -> tuple[float | None, str]:
    """Seconds after the injection at clip time 0 and where that came from: ``("dicom")`` from a
    DICOM clip's header (:func:`dicom_injection_offset_s`), else ``("config")`` from
    ``AnalyzeConfig.ceus_injection_offset_s``; ``(None, "")`` = a B-mode clip."""
    if first.metadata.get("format") == "dicom":
        offset = dicom_injection_offset_s(path)
        if offset is not None:
            return offset, "dicom"
    return (None, "") if configured_s is None else (float(configured_s), "config")


# Phases whose absence from a CEUS clip is worth a note: (name, start s, end s) after injection.
CEUS_PHASES_S = (("arterial", 10.0, 30.0), ("late", 120.0, float("inf")))


def held_track(frames: list[Frame], track: LesionTrack, times_s: list[float]) -> LesionTrack:
    """A copy of ``track`` observed in every one of ``frames``: where the tracker has no lesion,
    the lesion (box and outline) of the nearest observed frame in time ``times_s`` (a CEUS clip
    is taken with the probe held still; the detector misses a lesion in the phases where it
    matches the liver). ``track`` itself when none of ``frames`` has an observation."""
    obs = dict(track.observations)
    seen = [(times_s[i], obs[f.frame_index]) for i, f in enumerate(frames) if f.frame_index in obs]
    if not seen:
        return track
    return replace(track, observations=[
        (f.frame_index, obs[f.frame_index] if f.frame_index in obs else min(seen, key=lambda s: abs(s[0] - t))[1])
        for f, t in zip(frames, times_s)])


def add_ceus_features(frames: list[FrameAnalysis], tracks: list[LesionTrack], analyzer: FrameAnalyzer,
                      offset_s: float, origin: str = "config", hold_boxes: bool = True
                      ) -> list[tuple[str, dict[str, object]]]:
    """Fill ``track.ceus_features`` of each lesion track of a CEUS clip (``ceus_features_for_track``
    of :mod:`livus.models.ceus` on the clip's analysed frames, whose pixels must still be there).

    ``offset_s``: seconds after injection at clip time 0 (frame time after injection =
    ``offset_s + Frame.time_s``); ``origin``: where it came from (``dicom`` / ``config``);
    ``hold_boxes``: read the lesion in every analysed frame, at its nearest tracked position
    (``held_track``), instead of only in the frames where the detector found it.
    Never raises: a missing model, unknown frame times, a track without a usable frame or a
    failing track give notes ``(i18n key, values)`` instead (keys in ``livus.report.i18n``).
    """
    notes: list[tuple[str, dict[str, object]]] = [("ceus_mode", {"offset": f"{offset_s:g}", "origin": origin})]
    usable = [fa.frame for fa in frames if fa.frame is not None]
    if not usable or any(f.time_s is None for f in usable):
        return notes + [("ceus_no_times", {})]
    times = [offset_s + float(f.time_s) for f in usable]
    missing = [name for name, lo, hi in CEUS_PHASES_S if not any(lo <= t < hi for t in times)]
    if missing:
        notes.append(("ceus_phase_missing", {"phases": missing}))
    if not tracks:
        return notes
    try:
        model = analyzer.ceus_model()
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        return notes + [("ceus_no_model", {"error": f"{type(exc).__name__}: {exc}"})]
    from livus.models.ceus import ceus_features_for_track

    for t in tracks:
        try:
            t.ceus_features = ceus_features_for_track(usable, held_track(usable, t, times) if hold_boxes else t,
                                                      model, times)
        except ValueError:  # no frame of the track among the usable ones
            notes.append(("ceus_track_unusable", {"track": t.track_id}))
        except Exception as exc:  # noqa: BLE001 - one lesion must not stop the clip
            notes.append(("ceus_track_failed", {"track": t.track_id, "error": f"{type(exc).__name__}: {exc}"}))
    if any(t.ceus_features for t in tracks):
        notes.append(("ceus_capsule_experimental", {}))
    return notes


def analyze_input(path: Path, analyzer: FrameAnalyzer) -> InputAnalysis:
    """Analyse one file: every frame of a still/DICOM, the keyframes of a clip (after the clip
    quality gate has judged all its frames), tracked; CEUS features per track for CEUS clips
    (see ``ceus_injection_offset`` and ``add_ceus_features``)."""
    from livus.io.readers import read_frames
    from livus.preprocess.keyframes import select_keyframes

    out = InputAnalysis(path=str(path))
    try:
        frames = list(read_frames(path))
        if not frames:
            raise InputError(str(path), "no frames could be read")
        out.is_clip = len(frames) > 1
        out.case_key = _case_key(path, frames[0])
        if out.is_clip:
            cfg = analyzer.cfg.analyze
            offset, origin = ceus_injection_offset(path, frames[0], cfg.ceus_injection_offset_s)
            # CEUS: keyframes evenly over time (every phase), not the B-mode quality score's pick
            mode = "interval" if offset is not None else cfg.keyframe_mode
            keep = select_keyframes(frames, mode=mode, interval=cfg.keyframe_interval)
            out.frames, verdicts = analyze_clip_frames(frames, analyzer, keep, ceus=offset is not None)
            out.clip_quality = dict(Counter(v.verdict for v in verdicts))
            if offset is not None:  # tracked here, while the pixels are in memory (B-mode: in analyze_paths)
                out.tracks = track_clip([fa.result for fa in out.frames], str(path))
                out.ceus_notes = add_ceus_features(out.frames, out.tracks, analyzer, offset, origin)
        else:
            out.frames = [analyzer.analyze(f) for f in frames]
    except InputError as exc:
        out.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop a batch
        out.error = f"{path}: {type(exc).__name__}: {exc}"
    return out


_WORKER: FrameAnalyzer | None = None


def _worker_init(cfg: LivusConfig, model_dir: Path | None) -> None:
    global _WORKER  # noqa: PLW0603 - one analyzer per worker process
    _WORKER = FrameAnalyzer(cfg, model_dir)


def _worker_run(path: Path, overlay_root: Path | None, language: str, shared_stems: frozenset[str] = frozenset()
                ) -> tuple[InputAnalysis, dict[tuple[str, int], Path]]:
    assert _WORKER is not None
    return process_input(path, _WORKER, overlay_root, language, shared_stems)


def process_input(path: Path, analyzer: FrameAnalyzer, overlay_root: Path | None, language: str,
                  shared_stems: frozenset[str] = frozenset()) -> tuple[InputAnalysis, dict[tuple[str, int], Path]]:
    """Everything ``analyze_paths`` does per input, in the process that analysed it (a worker
    with ``--workers N``): the analysis, then (``overlay_root`` given) the overlays with Grad-CAM
    in ``overlay_root/<case>`` (``shared_stems``: file names that several inputs of the batch
    have, see ``overlay_name``); the frames' pixels are released before returning (they are not
    needed later, nor sent back from a worker). Returns the analysis and its overlay files."""
    res = analyze_input(path, analyzer)
    drawn: dict[tuple[str, int], Path] = {}
    if overlay_root is not None and not res.error:
        drawn = _write_overlays(res, overlay_root / res.case_key, analyzer, language, shared_stems)
    for fa in res.frames:
        fa.frame = None  # pixels are not needed any more: keep memory flat on big batches
    return res, drawn


def _quality_ok(r: FrameResult) -> bool:
    return r.quality is None or bool(r.quality.get("ok", True))


def _summary_row(r: FrameResult) -> dict[str, object]:
    assessability = result_assessability(r)
    mals = [les.malignancy for les in r.lesions if les.malignancy is not None]
    sizes = [les.long_axis_mm for les in r.lesions if les.long_axis_mm is not None]
    return {
        "source": r.source,
        "frame_index": r.frame_index,
        "n_lesions": len(r.lesions),
        "max_score": round(max((les.score for les in r.lesions), default=0.0), 4),
        "max_malignancy": round(max(mals), 4) if mals else "",
        "largest_long_axis_mm": round(max(sizes), 2) if sizes else "",
        "pixel_spacing_known": r.pixel_spacing_mm is not None,
        "quality": (r.quality or {}).get("verdict", ""),
        "assessability": assessability.status,
        "assessability_reasons": " | ".join(assessability.reasons),
        "warnings": " | ".join(r.warnings),
    }


def _iter_results(inputs: list[Path], analyzer: FrameAnalyzer, workers: int, overlay_root: Path | None,
                  language: str):
    """``process_input`` of every input, in input order, whatever the number of workers."""
    stems = Counter(Path(p).stem for p in inputs)
    shared = frozenset(s for s, n in stems.items() if n > 1)
    if workers <= 1:
        for p in inputs:
            yield process_input(p, analyzer, overlay_root, language, shared)
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init,
                             initargs=(analyzer.cfg, analyzer.model_dir)) as pool:
        yield from pool.map(partial(_worker_run, overlay_root=overlay_root, language=language, shared_stems=shared),
                            inputs)


def _write_case_job(job: tuple) -> list[Path]:
    return _write_case(*job)


def _write_cases(jobs: list[tuple], workers: int) -> list[list[Path]]:
    """``_write_case`` of every case (case.json, HTML/PDF report, DICOM SRs), in order; with
    several workers in a pool of processes (reports need no models: none are loaded)."""
    if workers <= 1 or len(jobs) <= 1:
        return [_write_case_job(job) for job in jobs]
    from livus.report.pdf import prepare_fonts

    prepare_fonts()  # once here, not in every worker (forked workers inherit it)
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(_write_case_job, jobs, chunksize=max(1, len(jobs) // (8 * workers))))


def analyze_paths(
    paths: list[Path],
    out_dir: Path,
    config_path: str | Path | None = None,
    patient_path: str | Path | None = None,
    workers: int = 1,
    language: str = "zh",
    overlays: bool = True,
    model_dir: Path | None = None,
    progress: bool = True,
    ceus_offset_s: float | None = None,
) -> AnalyzeSummary:
    """Batch analysis (``livus analyze``); bad inputs are listed, the rest is still processed.
    ``ceus_offset_s`` (when given) overrides ``AnalyzeConfig.ceus_injection_offset_s``: clips are
    CEUS clips whose time 0 is that many seconds after the injection."""
    from tqdm import tqdm

    from livus.infer.case import assess_case, load_case_rules, load_patient
    from livus.infer.lirads_case import case_lirads
    from livus.infer.tracking import tracks_from_single_frames
    from livus.io.readers import collect_inputs
    from livus.report.i18n import text

    t0 = time.perf_counter()
    cfg = load_config(config_path)
    if ceus_offset_s is not None:
        cfg.analyze.ceus_injection_offset_s = float(ceus_offset_s)
    patient = load_patient(patient_path) if patient_path else PatientBackground()
    rules = load_case_rules(cfg.analyze.case_rules_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = AnalyzeSummary(out_dir=out_dir)
    missing = [p for p in paths if not Path(p).exists()]
    summary.errors += [f"{p}: no such file or folder" for p in missing]
    inputs = collect_inputs([Path(p) for p in paths if Path(p).exists()])
    summary.n_inputs = len(inputs)

    cases: dict[str, list[InputAnalysis]] = {}
    overlay_paths: dict[tuple[str, int], Path] = {}
    results_path = out_dir / "results.jsonl"
    rows = []
    row_cases: list[str] = []  # the case of each summary row (its LI-RADS column)
    lirads_by_case: dict[str, str] = {}
    analyzer = FrameAnalyzer(cfg, model_dir)
    draw = overlays and cfg.analyze.write_overlays
    bar = tqdm(total=len(inputs), unit="file", desc="analysing", disable=not progress)
    with open(results_path, "w", encoding="utf-8") as fh:
        for res, drawn in _iter_results(inputs, analyzer, workers, out_dir / "cases" if draw else None, language):
            bar.update(1)
            if res.error:
                summary.errors.append(res.error)
                continue
            cases.setdefault(res.case_key, []).append(res)
            overlay_paths.update(drawn)
            for fa in res.frames:
                fh.write(json.dumps(fa.result.to_json_dict(), ensure_ascii=False) + "\n")
                rows.append(_summary_row(fa.result))
                row_cases.append(res.case_key)
                summary.n_frames += 1
                summary.n_lesions += len(fa.result.lesions)
                summary.n_low_quality += int(not _quality_ok(fa.result))
            summary.n_clip_frames += sum(res.clip_quality.values())
            summary.n_clip_frames_low_quality += sum(n for v, n in res.clip_quality.items() if v != "ok")
    bar.close()
    summary.outputs["results"] = str(results_path)

    overlays_by_dir: dict[Path, dict[tuple[str, int], Path]] = {}
    for key, path in overlay_paths.items():
        overlays_by_dir.setdefault(path.parent, {})[key] = path
    case_jobs = []
    for case_key, items in cases.items():
        tracks = []
        for item in items:
            if item.is_clip:
                tracks += item.tracks if item.tracks is not None else track_clip([fa.result for fa in item.frames], item.path)
            else:
                tracks += tracks_from_single_frames([(fa.result.source, fa.result.lesions) for fa in item.frames])
        for i, t in enumerate(tracks, start=1):
            t.track_id = i
        analysed = all(fa.result.model.get("name") != "none" for it in items for fa in it.frames)
        frame_assess = [result_assessability(fa.result) for it in items for fa in it.frames]
        assessability = case_assessability(frame_assess)
        if analysed or not assessability.usable:
            case = assess_case(case_key, tracks, patient, rules, language=language, assessability=assessability)
        else:  # never advise "no finding" when lesions were not looked for
            case = CaseResult(case_id=case_key, tracks=tracks, patient=patient, assessability=assessability)
            case.warnings.append(text("no_detector_case", language))
        case.warnings += _frame_count_warnings(frame_assess, language)
        case.warnings += [w for it in items if (w := _clip_quality_warning(it, language))]
        case.warnings += [w for it in items for w in _ceus_warnings(it, language)]
        case.sources = [it.path for it in items]
        case.model = items[0].frames[0].result.model if items[0].frames else {}
        case.lirads = case_lirads(case, items, language, cfg.analyze.lirads_table_path)
        lirads_by_case[case_key] = case.lirads.summary()
        case_dir = out_dir / "cases" / case_key
        case_jobs.append((case, items, case_dir, overlays_by_dir.get(case_dir, {}), language))
    for written in _write_cases(case_jobs, workers):
        summary.reports += [str(p) for p in written]
    with open(out_dir / "summary.csv", "w", newline="", encoding="utf-8") as fh:  # after the cases: LI-RADS column
        fields = list(_summary_row(FrameResult("", 0, (0, 0))).keys()) + ["lirads"]
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(dict(row, lirads=lirads_by_case.get(key, "")) for row, key in zip(rows, row_cases))
    summary.outputs["summary"] = str(out_dir / "summary.csv")
    summary.outputs["cases"] = str(out_dir / "cases")
    summary.overlays = [str(p) for p in overlay_paths.values()]
    summary.seconds = time.perf_counter() - t0

    _print_summary(summary)
    return summary


def _frame_count_warnings(frames: list[Assessability], language: str) -> list[str]:
    """Case warnings counting the analysed frames that are not assessable / of limited quality."""
    from livus.report.i18n import text_n

    counts = Counter(a.status for a in frames)
    return [text_n(key, counts[status], language)
            for status, key in (("not_assessable", "frames_not_assessable"), ("limited", "frames_limited"))
            if counts[status]]


def _clip_quality_warning(item: InputAnalysis, language: str) -> str | None:
    """One line on the clip gate's low-quality frames of a clip (Chinese or English), or ``None``."""
    bad = {v: n for v, n in sorted(item.clip_quality.items()) if v != "ok"}
    if not bad:
        return None
    from livus.report.i18n import quality_label, text

    parts = [f"{quality_label(v, language)}{n}帧" if language == "zh" else f"{quality_label(v, language)} {n}"
             for v, n in bad.items()]
    return text("clip_low_quality", language).format(
        name=Path(item.path).name, n_bad=sum(bad.values()), n_all=sum(item.clip_quality.values()),
        detail=("、" if language == "zh" else ", ").join(parts))


def _ceus_warnings(item: InputAnalysis, language: str) -> list[str]:
    """The CEUS notes of a clip (``add_ceus_features``) as case warnings in ``language``."""
    from livus.report.i18n import text

    out = []
    for key, values in item.ceus_notes:
        v = dict(values)
        if "phases" in v:
            sep = "、" if language == "zh" else ", "
            v["phases"] = sep.join(text(f"ceus_phase_{p}", language) for p in v["phases"])  # type: ignore[union-attr]
        if "origin" in v:
            v["origin"] = text(f"ceus_origin_{v['origin']}", language)
        out.append(f"{Path(item.path).name}: " + text(key, language).format(**v))
    return out


def overlay_name(source: str, frame_index: int, shared_stems: frozenset[str] = frozenset()) -> str:
    """``overlay_<name>_<frame>.png``; when several inputs of the batch have the same file name
    (``a/1.jpg``, ``b/1.jpg``: possibly one case folder), a short digest of the full path keeps
    their overlays apart."""
    stem = Path(source).stem
    if stem in shared_stems:
        stem += "_" + hashlib.sha1(str(source).encode()).hexdigest()[:8]
    return f"overlay_{stem}_{frame_index:04d}.png"


def _write_overlays(item: InputAnalysis, case_dir: Path, analyzer: FrameAnalyzer, language: str,
                    shared_stems: frozenset[str] = frozenset()) -> dict[tuple[str, int], Path]:
    """Overlay PNGs (with the Grad-CAM panel when enabled) of an input's frames: every still;
    for clips the frames that show a lesion, and the first frame."""
    from livus.report.overlay import draw_overlay, write_overlay_png

    out = {}
    first = item.frames[0].result.frame_index if item.frames else None
    for fa in item.frames:
        if item.is_clip and not fa.result.lesions and fa.result.frame_index != first:
            continue
        if analyzer.cfg.analyze.gradcam:
            fa.heatmap = analyzer.explain(fa)
        rgb = draw_overlay(fa.frame.pixels, fa.result, heatmap=fa.heatmap, language=language)
        fa.heatmap = None
        path = case_dir / overlay_name(fa.result.source, fa.result.frame_index, shared_stems)
        out[(fa.result.source, fa.result.frame_index)] = write_overlay_png(path, rgb)
    return out


def _write_case(case: CaseResult, items: list[InputAnalysis], case_dir: Path,
                overlay_paths: dict[tuple[str, int], Path], language: str) -> list[Path]:
    """case.json, the HTML/PDF report and DICOM SRs of one case (overlays are already written);
    returns the report files."""
    from livus.report import render_report

    case_dir.mkdir(parents=True, exist_ok=True)
    (case_dir / "case.json").write_text(json.dumps(case.to_json_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
    frames = [fa.result for item in items for fa in item.frames]
    mine = {k: v for k, v in overlay_paths.items() if v.parent == case_dir}
    reports = render_report(case, frames, mine, case_dir, language)
    for item in items:
        _write_dicom_srs(item, case_dir, case.lirads)
    return list(reports.values())


def _write_dicom_srs(item: InputAnalysis, case_dir: Path, lirads: object | None = None) -> None:
    """A DICOM SR (TID 1500 measurement report) per analysed frame of a DICOM input, with the
    case's LI-RADS (``lirads``, see ``livus.report.dicom_sr``)."""
    import pydicom

    from livus.io.readers import sniff_kind
    from livus.report.dicom_sr import write_measurement_sr

    path = Path(item.path)
    if sniff_kind(path) != "dicom" or not item.frames:
        return
    source = pydicom.dcmread(path, stop_before_pixels=True)
    for fa in item.frames:
        write_measurement_sr(source, fa.result, case_dir / f"sr_{path.stem}_{fa.result.frame_index:04d}.dcm",
                             lirads=lirads)


def _print_summary(s: AnalyzeSummary) -> None:
    print(f"livus {__version__}: analysed {s.n_frames} frame(s) from {s.n_inputs} input(s), "
          f"{s.n_lesions} lesion(s), {s.n_low_quality} low-quality frame(s), in {s.seconds:.1f} s")
    if s.n_clip_frames:
        print(f"  clips: {s.n_clip_frames_low_quality} of {s.n_clip_frames} frame(s) judged low quality by the clip gate")
    for name, path in s.outputs.items():
        print(f"  {name:8s} {path}")
    for title, paths in (("reports", s.reports), ("overlays", s.overlays)):
        if paths:
            print(f"  {title}:")
            for p in paths[:20]:
                print(f"    {p}")
            if len(paths) > 20:
                print(f"    ... and {len(paths) - 20} more")
    if s.errors:
        print(f"{len(s.errors)} input(s) could not be analysed:")
        for e in s.errors:
            print(f"  - {e}")
