"""One input file analysed: every frame of a still or DICOM, the keyframes of a clip (after the
clip quality gate has judged all its frames), CEUS features for CEUS clips; never raises."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field

from livus.errors import InputError
from livus.infer.ceus import add_ceus_features, ceus_injection_offset
from livus.infer.clip import analyze_clip_frames, track_clip
from livus.infer.frame import FrameAnalysis, FrameAnalyzer
from livus.io.sources import Source, source_stem
from livus.types import Frame, LesionTrack


@dataclass
class InputAnalysis:
    """All analysed frames of one input file, its case key and an error (if it failed).
    ``clip_quality``: for clips, the gate's verdict counts over ALL frames (not only the
    analysed keyframes). ``tracks``: for CEUS clips, the lesion tracks (``track_clip``) with
    their ``ceus_features`` (``None``: tracked later, in ``analyze_paths``). ``ceus_notes``: CEUS
    messages as ``(i18n key, values)`` (see ``add_ceus_features``), worded in the report's
    language by :func:`livus.infer.case_notes.ceus_warnings`."""

    path: str
    frames: list[FrameAnalysis] = field(default_factory=list)
    case_key: str = ""
    is_clip: bool = False
    error: str | None = None
    clip_quality: dict[str, int] = field(default_factory=dict)
    tracks: list[LesionTrack] | None = None
    ceus_notes: list[tuple[str, dict[str, object]]] = field(default_factory=list)


def case_key(path: Source, frame: Frame) -> str:
    """Frames of one DICOM study share a case; any other input is its own case."""
    key = frame.metadata.get("StudyInstanceUID")
    if key:  # a short stable digest of the (long, unguessable) study UID; never the patient id
        return "study-" + hashlib.sha1(str(key).encode()).hexdigest()[:10]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", source_stem(path))[:80]


def analyze_input(path: Source, analyzer: FrameAnalyzer) -> InputAnalysis:
    """Analyse one file (a local path or a URI, see :mod:`livus.io.sources`): every frame of a still/DICOM, the keyframes of a clip (after the clip
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
        out.case_key = case_key(path, frames[0])
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
