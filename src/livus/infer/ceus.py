"""CEUS clips: the time after the contrast injection, the quality verdict of contrast-mode
frames and the CEUS feature probabilities of each lesion track.

When the time after the injection is known (a DICOM clip's ``ContrastBolusStartTime`` and
acquisition time, else ``AnalyzeConfig.ceus_injection_offset_s`` / ``livus analyze
--ceus-offset``; ``ceus_injection_offset``), each lesion track of the clip gets the CEUS feature
probabilities of ``models/ceus.pt`` (``add_ceus_features``) while the clip's pixels are still in
memory, and rim APHE and marked washout measured on its time-intensity curves
(:mod:`livus.infer.ceus_tic`; probabilities in ``ceus_features`` when measurable, the measures
and the reasons for what was not in ``ceus_measures``). Stills and clips without that time are
analysed as B-mode.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from livus.preprocess.quality import QualityVerdict
from livus.types import Frame, LesionTrack

if TYPE_CHECKING:
    from livus.infer.ceus_tic import MeasuredFeature
    from livus.infer.lirads import LiradsParams
    from livus.infer.frame import FrameAnalysis, FrameAnalyzer


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



def dicom_time_s(value: object) -> float | None:
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

    from livus.io.sources import open_source

    try:
        with open_source(path) as fh:  # a local file or a URI (only the header is read)
            ds = pydicom.dcmread(fh, stop_before_pixels=True, force=True)
    except Exception:  # noqa: BLE001 - the reader reports unreadable files
        return None
    bolus = dicom_time_s(ds.get("ContrastBolusStartTime"))
    acq = next((t for key in ("AcquisitionDateTime", "AcquisitionTime", "ContentTime")
                if (t := dicom_time_s(ds.get(key))) is not None), None)
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


def rim_and_washout_for_track(frames: list[Frame], track: LesionTrack, seconds_after_injection: list[float],
                              params: LiradsParams | None = None) -> dict[str, MeasuredFeature]:
    """Rim APHE and marked washout of a tracked lesion measured on its time-intensity curves
    (:func:`livus.infer.ceus_tic.measure_rim_and_washout`): ``frames`` matched to the track's
    observations by ``frame_index`` (box from the lesion's ellipse, outline from its polygon,
    original pixels), ``seconds_after_injection`` per frame."""
    from livus.infer.ceus_tic import measure_rim_and_washout
    from livus.models.classifier import lesion_box_xyxy

    obs = dict(track.observations)
    lesions = [obs.get(f.frame_index) for f in frames]
    return measure_rim_and_washout([f.pixels for f in frames], seconds_after_injection,
                                   [None if les is None else lesion_box_xyxy(les) for les in lesions],
                                   [les.polygon_px if les is not None and len(les.polygon_px) >= 3 else None
                                    for les in lesions], params)


def add_ceus_features(frames: list[FrameAnalysis], tracks: list[LesionTrack], analyzer: FrameAnalyzer,
                      offset_s: float, origin: str = "config", hold_boxes: bool = True
                      ) -> list[tuple[str, dict[str, object]]]:
    """Fill ``track.ceus_features`` of each lesion track of a CEUS clip (``ceus_features_for_track``
    of :mod:`livus.models.ceus` on the clip's analysed frames, whose pixels must still be there,
    plus the measured rim APHE / marked washout probabilities of :func:`rim_and_washout_for_track`
    with the thresholds of the LI-RADS table ``analyze.lirads_table_path``) and
    ``track.ceus_measures``.

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
        return notes + [("ceus_no_lesion", {})]
    try:
        model = analyzer.ceus_model()
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        return notes + [("ceus_no_model", {"error": f"{type(exc).__name__}: {exc}"})]
    from livus.infer.ceus_tic import measured_probabilities
    from livus.infer.lirads_table import cached_lirads_table
    from livus.models.ceus import ceus_features_for_track

    params = cached_lirads_table(analyzer.cfg.analyze.lirads_table_path).params
    for t in tracks:
        try:
            read = held_track(usable, t, times) if hold_boxes else t
            t.ceus_features = ceus_features_for_track(usable, read, model, times)
            measured = rim_and_washout_for_track(usable, read, times, params)
            t.ceus_features.update(measured_probabilities(measured))
            t.ceus_measures = {k: m.to_json_dict() for k, m in measured.items()}
        except ValueError:  # no frame of the track among the usable ones
            notes.append(("ceus_track_unusable", {"track": t.track_id}))
        except Exception as exc:  # noqa: BLE001 - one lesion must not stop the clip
            notes.append(("ceus_track_failed", {"track": t.track_id, "error": f"{type(exc).__name__}: {exc}"}))
    if any(t.ceus_features for t in tracks):
        notes.append(("ceus_capsule_experimental", {}))
    return notes
