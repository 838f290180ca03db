"""Clips: every frame through one quality gate, the keyframes analysed, lesions tracked.

Every frame of a clip goes, in order, through one ``ClipQualityGate`` (``gate_clip``), which
also judges a frame against the clip's own statistics and catches far more frames of a probe
sliding off the liver than the single-frame gate. Each frame then gets its assessability
(``clip_assessabilities``): frames that are not assessable are not passed to the models.
Low-quality frames that are analysed keep their verdict and weigh ``LOW_QUALITY_WEIGHT`` in the
lesion tracks (``track_clip``). CEUS clips: verdicts through
:func:`livus.infer.ceus.ceus_verdict`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from livus.infer.assessability import clip_assessabilities
from livus.infer.ceus import ceus_verdict
from livus.preprocess.fan import FanCache
from livus.preprocess.quality import ClipQualityGate, QualityVerdict
from livus.types import Frame, FrameResult, LesionTrack

if TYPE_CHECKING:
    from livus.infer.frame import FrameAnalysis, FrameAnalyzer
    from livus.infer.tracking import LesionTracker

# Frames that are not assessable (livus.infer.assessability) are not passed to the models at
# all; other low-quality frames are analysed but marked (and weigh less in clip aggregation).
LOW_QUALITY_WEIGHT = 0.3


def gate_clip(frames: list[Frame], cache: FanCache) -> list[QualityVerdict]:
    """Quality verdict of every frame of one clip, in order, by one ``ClipQualityGate`` (frozen
    check against the preceding frame, off-liver check against the clip's own reference); the
    fan masks come from ``cache``, the same the preprocessing uses."""
    from livus.preprocess.pipeline import cache_key

    gate = ClipQualityGate()
    return [gate.assess(f, cache.get(f.pixels, cache_key(f)).mask) for f in frames]


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


def quality_ok(r: FrameResult) -> bool:
    """Whether the quality gate called the frame ok (a result without a verdict counts as ok)."""
    return r.quality is None or bool(r.quality.get("ok", True))


def frame_quality_weight(r: FrameResult) -> float:
    """Weight of a frame's lesions in clip aggregation: 1, or ``LOW_QUALITY_WEIGHT`` when the
    quality gate did not call the frame ok."""
    return 1.0 if quality_ok(r) else LOW_QUALITY_WEIGHT


def track_clip(results: list[FrameResult], source: str, tracker: LesionTracker | None = None) -> list[LesionTrack]:
    """Link the lesions of a clip's analysed frames (time order) into tracks (a default
    ``LesionTracker`` unless one is given); sets each lesion's ``track_id``."""
    from livus.infer.tracking import LesionTracker

    tracker = tracker or LesionTracker()
    for r in results:
        tracker.update(r.frame_index, r.lesions, frame_quality=frame_quality_weight(r), source=source)
    return tracker.finish()
