"""Assessability: can a frame, or a case, be assessed at all? Derived from the quality gate.

Every frame result and every case carries an :class:`~livus.types.Assessability`:

=================== ==========================================================================
status              meaning, reasons
=================== ==========================================================================
``assessable``      the gate called the frame ``ok``
``limited``         results are given but marked: ``shadowing`` (``heavily_shadowed``),
                    ``partial_liver`` (``liver_not_in_view`` by the absolute dark-band rule
                    only), ``quality_unchecked`` (contrast frames, ``ceus_unchecked``),
                    ``low_quality`` (a verdict this module does not know)
``not_assessable``  no lesions are reported and no advice is given: the verdict
                    (``not_ultrasound``, ``blank``, ``frozen``, ``doppler_colour``),
                    ``liver_not_in_view`` (found against the clip's own liver frames, or by the
                    striation rule), ``not_liver`` (a clip most of whose frames do not show the
                    liver: a cardiac echo, another organ)
=================== ==========================================================================

Which verdict goes where, and the clip share, are in
:class:`~livus.preprocess.quality.QualityParams`. A case is ``assessable`` when at least one of
its frames is, ``limited`` when its usable frames are all limited (their reasons), and
``not_assessable`` when none is usable (the frames' reasons).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from livus.preprocess.quality import QualityParams, QualityVerdict
from livus.types import Assessability, FrameResult

ASSESSABLE, LIMITED, NOT_ASSESSABLE = "assessable", "limited", "not_assessable"
LIMITED_REASONS = {"heavily_shadowed": "shadowing", "ceus_unchecked": "quality_unchecked"}
NOT_LIVER = "not_liver"


def verdict_assessability(verdict: str, measures: Mapping[str, float] | None = None,
                          params: QualityParams | None = None) -> Assessability:
    """Assessability of one frame from its quality verdict (and the gate's ``measures``)."""
    p = params or QualityParams()
    m = measures or {}
    if verdict == "ok":
        return Assessability(ASSESSABLE)
    if verdict in p.not_assessable_verdicts:
        return Assessability(NOT_ASSESSABLE, [verdict])
    if verdict == "liver_not_in_view":
        # against the clip's own liver frames, or strongly banded: not liver; else maybe a dim liver
        if "clip_band_to_near" in m or m.get("striation", 0.0) > p.max_striation:
            return Assessability(NOT_ASSESSABLE, [verdict])
        return Assessability(LIMITED, ["partial_liver"])
    if verdict in p.limited_verdicts:
        return Assessability(LIMITED, [LIMITED_REASONS.get(verdict, verdict)])
    return Assessability(LIMITED, ["low_quality"])


def frame_assessability(quality: Mapping[str, Any] | QualityVerdict | None,
                        params: QualityParams | None = None) -> Assessability:
    """Assessability from a verdict or a ``FrameResult.quality`` dict; ``assessable`` when the
    frame was never judged (``None``)."""
    if quality is None:
        return Assessability(ASSESSABLE)
    if isinstance(quality, QualityVerdict):
        return verdict_assessability(quality.verdict, quality.measures, params)
    return verdict_assessability(str(quality.get("verdict", "ok")), quality.get("measures"), params)


def clip_assessabilities(verdicts: Sequence[QualityVerdict], params: QualityParams | None = None) -> list[Assessability]:
    """Assessability of every frame of a clip: each frame's own, except that a clip with at
    least ``clip_not_liver_share`` of its frames ``liver_not_in_view`` shows no liver at all, so
    all its frames are ``not_assessable`` (``not_liver``)."""
    p = params or QualityParams()
    if not verdicts:
        return []
    off = sum(v.verdict == "liver_not_in_view" for v in verdicts)
    if off / len(verdicts) >= p.clip_not_liver_share:
        return [Assessability(NOT_ASSESSABLE, [NOT_LIVER]) for _ in verdicts]
    return [frame_assessability(v, p) for v in verdicts]


def result_assessability(result: FrameResult) -> Assessability:
    """A result's assessability: the stored one, or (results written before it existed) the one
    its quality verdict gives."""
    return result.assessability if result.assessability is not None else frame_assessability(result.quality)


def _unique(reasons: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(reasons))


def case_assessability(frames: Iterable[Assessability]) -> Assessability:
    """Assessability of a case from its frames' (see the module docstring); ``not_assessable``
    (``no_frames``) for a case without frames."""
    frames = list(frames)
    if not frames:
        return Assessability(NOT_ASSESSABLE, ["no_frames"])
    if any(a.status == ASSESSABLE for a in frames):
        return Assessability(ASSESSABLE)
    limited = [a for a in frames if a.status == LIMITED]
    if limited:
        return Assessability(LIMITED, _unique(r for a in limited for r in a.reasons))
    return Assessability(NOT_ASSESSABLE, _unique(r for a in frames for r in a.reasons))
