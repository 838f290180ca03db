"""Frame analysis: one ``Frame`` → one ``FrameResult`` with the configured preprocessing and models.

``FrameAnalyzer.analyze(frame)`` is the one place where a frame becomes a ``FrameResult`` (used
by batch analysis, clips and the service): preprocessing (fan, spacing, letterbox), the frame's
quality verdict and assessability (:mod:`livus.infer.assessability`; a frame that is not
assessable gets no lesions), detection, lesion classification and the image-level label.
``explain`` adds Grad-CAM; ``ceus_model`` loads the CEUS feature model on first use.
Lesions are reported in original-image pixels (and mm when the pixel size is known).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from livus.config import LivusConfig
from livus.infer.assessability import frame_assessability
from livus.infer.liver_background import result_background
from livus.preprocess.fan import FanCache
from livus.preprocess.quality import QualityVerdict
from livus.types import Assessability, Frame, FrameResult, Lesion

if TYPE_CHECKING:
    from livus.models.ceus import CeusModel

DEFAULT_DETECTOR_FILE = "detector.pt"
DEFAULT_CLASSIFIER_FILE = "classifier.pt"
DEFAULT_CEUS_FILE = "ceus.pt"
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
            if self.cfg.analyze.report_threshold is not None:  # a site's own operating point
                self.detector.cfg.score_threshold = float(self.cfg.analyze.report_threshold)
                self.model_info["report_threshold"] = f"{self.detector.cfg.score_threshold:.3f}"
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
        if self.cfg.analyze.liver_background:
            result.liver_background = result_background(frame.pixels, result, pre.fan_mask)  # issue 21
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
        from livus.shapes import polygon_mask
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

    def lesion_candidates(self, frame: Frame, score_threshold: float) -> list[Lesion]:
        """Every lesion the detector proposes on ``frame`` with a (calibrated) score ≥
        ``score_threshold`` (original pixels, best first), not only those at the report threshold:
        for operating-point studies. No quality gate, classification or liver background."""
        from livus.preprocess.pipeline import preprocess_frame

        if self.detector is None:
            raise ValueError("no detector model loaded")
        return self._detect(preprocess_frame(frame, self.cfg.preprocess), score_threshold)[0]

    def _detect(self, pre: object, score_threshold: float | None = None) -> tuple[list[Lesion], list[list[float]] | None, np.ndarray | None]:
        """Lesions (original pixels; those scoring ≥ ``score_threshold``, default the model's
        report threshold), the liver outline (model pixels) and the image-level head's
        normal/benign/malignant probabilities (``None`` for a detector without one)."""
        import torch

        from livus.models.decode import decode_detections, liver_polygon

        x = torch.from_numpy(pre.image[None, None].astype(np.float32))
        valid = torch.from_numpy(pre.valid_mask[None, None].astype(np.float32))
        with torch.no_grad():
            out = self.detector(x)
        dets = decode_detections(out, self.detector.cfg, valid_mask=valid, score_threshold=score_threshold)[0]
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
