"""Case warnings worded in the report's language (``zh`` / ``en``, texts in
:mod:`livus.report.i18n`): frames not assessable or of limited quality, the clip gate's
low-quality frames, the CEUS notes of a clip."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from livus.types import Assessability

if TYPE_CHECKING:
    from livus.infer.input_analysis import InputAnalysis


def frame_count_warnings(frames: list[Assessability], language: str) -> list[str]:
    """Case warnings counting the analysed frames that are not assessable / of limited quality."""
    from livus.report.i18n import text_n

    counts = Counter(a.status for a in frames)
    return [text_n(key, counts[status], language)
            for status, key in (("not_assessable", "frames_not_assessable"), ("limited", "frames_limited"))
            if counts[status]]


def clip_quality_warning(item: InputAnalysis, language: str) -> str | None:
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


def ceus_warnings(item: InputAnalysis, language: str) -> list[str]:
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
