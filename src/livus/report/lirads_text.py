"""The LI-RADS part of a case report as ``(label, value)`` rows in one language.

:func:`lirads_rows` words a :class:`~livus.infer.lirads_case.LiradsResult` for the HTML and PDF
reports: per system (ACR US LI-RADS v2017, CEUS LI-RADS v2017) the category or why there is
none, the visualization score with the measures behind it (US), the deciding observation, the
observations (CEUS: features with their probabilities, the features that would change a
low-confidence category, what livus does not measure), the management, and the note that the
category is assigned by software and must be confirmed by the reader.
"""

from __future__ import annotations

from typing import Any

from livus.report.i18n import text


def _fmt(v: float | None, nd: int = 2) -> str:
    return "—" if v is None else f"{v:.{nd}f}"


def _sep(language: str) -> str:
    return "；" if language == "zh" else "; "


def _status_text(a: Any, language: str) -> str:
    """``US-2 subthreshold``, ``not applicable: ...``, ``not categorised: ...``."""
    from livus.infer.lirads_case import CATEGORISED, NOT_APPLICABLE, lirads_reason_text

    colon = "：" if language == "zh" else ": "
    if a.status == CATEGORISED:
        out = text(f"lirads_cat_{a.category}", language)
        if a.low_confidence:
            out += ("（" + text("lirads_low_confidence", language) + "）") if language == "zh" else \
                f" ({text('lirads_low_confidence', language)})"
        return out
    head = text("lirads_not_applicable" if a.status == NOT_APPLICABLE else "lirads_not_categorised", language)
    return head + (colon + lirads_reason_text(a.reason, a.candidates, language) if a.reason else "")


def _value_word(feature: str, value: Any, language: str, short: bool = False) -> str:
    if feature == "washout":
        return text(f"ceus_washout_{value}" if short else f"lirads_washout_{value}", language)
    return text("lirads_present" if value else "lirads_absent", language)


def _feature_name(feature: str, language: str) -> str:
    return text({"arterial_phase_hyperenhancement": "lirads_aphe", "washout": "lirads_washout",
                 "rim_arterial_phase_hyperenhancement": "lirads_rim_aphe",
                 "washout_marked": "lirads_marked_washout"}.get(feature, feature), language)


def _feature_calls(features: dict[str, dict[str, Any]], language: str) -> list[str]:
    out = []
    for name, call in features.items():
        if name == "washout":
            out.append(f"{_value_word(name, call['value'], language)} {call['probability']:.2f}")
        else:
            out.append(f"{_feature_name(name, language)} {_value_word(name, call['value'], language)} "
                       f"{call['probability']:.2f}")
    return out


def ceus_observation_text(o: dict[str, Any], language: str) -> str:
    """One CEUS observation: category, size, feature calls, and (low confidence) what would change it."""
    from livus.infer.lirads_case import lirads_reason_text

    sep = _sep(language)
    size = f"{o['long_axis_mm']:.1f} mm" if o.get("long_axis_mm") is not None else text("size_unknown", language)
    if o.get("category"):
        head = text(f"lirads_cat_{o['category']}", language)
    else:
        colon = "：" if language == "zh" else ": "
        head = text("lirads_not_categorised", language) + colon + lirads_reason_text(o["reason"], o.get("candidates") or [], language)
    parts = [head, size] + _feature_calls(o.get("features") or {}, language)
    line = sep.join(parts)
    alts = o.get("would_change") or []
    if alts:
        changes = sep.join(text("lirads_would_change", language).format(
            feature=_feature_name(a["feature"], language), value=_value_word(a["feature"], a["value"], language, True),
            p=f"{a['probability']:.2f}", category=a["category"]) for a in alts)
        line += " — " + text("lirads_low_confidence", language) + ("：" if language == "zh" else ": ") + changes
    return line


def _us_rows(a: Any, language: str) -> list[tuple[str, str]]:
    rows = [(text("lirads_system_us", language), _status_text(a, language))]
    if a.visualization:
        lp, rp = ("（", "）") if language == "zh" else (" (", ")")
        findings = _sep(language).join(text(k, language) for _, k in a.visualization_findings)
        vis = text(f"lirads_vis_{a.visualization}", language) + (lp + findings + rp if findings else "")
        m = a.measures
        vis += _sep(language) + text("lirads_measures", language).format(
            frames=m.n_frames, limited=m.n_limited, coverage=_fmt(m.liver_coverage), depth=_fmt(m.liver_depth_share),
            shadow=_fmt(m.shadow_share, 3))
        rows.append((text("lirads_visualization", language), vis))
    by_id = {o["id"]: o for o in a.observations}
    if a.deciding_observation is not None and a.deciding_observation in by_id:
        o = by_id[a.deciding_observation]
        size = f"{o['long_axis_mm']:.1f} mm" if o.get("long_axis_mm") is not None else text("size_unknown", language)
        rows.append((text("lirads_deciding", language),
                     text("lirads_observation", language).format(n=o["id"]) + _sep(language) + size))
    for o in a.observations:
        if o.get("definitely_benign") == "simple_cyst":
            rows.append((text("lirads_observation", language).format(n=o["id"]),
                         text("lirads_simple_cyst", language).format(
                             anechoic=_fmt(o["evidence"].get("echo_anechoic")),
                             enhancement=_fmt(o["evidence"].get("posterior_enhancement")))))
    return rows


def _ceus_rows(a: Any, language: str) -> list[tuple[str, str]]:
    rows = [(text("lirads_system_ceus", language), _status_text(a, language))]
    if a.deciding_observation is not None:
        rows.append((text("lirads_deciding", language), text("lirads_observation", language).format(n=a.deciding_observation)))
    assumptions: dict[str, list[str]] = {}  # what was not measured → the observations it concerns
    for o in a.observations:
        name = text("lirads_observation", language).format(n=o["id"])
        rows.append((name, ceus_observation_text(o, language)))
        for k in o.get("assumptions") or []:
            assumptions.setdefault(k, []).append(name)
    if assumptions:
        lp, rp = ("（", "）") if language == "zh" else (" (", ")")
        rows.append((text("lirads_assumptions", language), _sep(language).join(
            text(k, language) + lp + _sep(language).join(names) + rp for k, names in assumptions.items())))
    return rows


def lirads_rows(result: Any, language: str) -> list[tuple[str, str]]:
    """Report rows of a case's LI-RADS (``[]`` for ``None`` or a result without assessments)."""
    if result is None or not result.assessments:
        return []
    rows: list[tuple[str, str]] = []
    for a in result.assessments:
        rows += _us_rows(a, language) if a.system.startswith("US") else _ceus_rows(a, language)
        if a.management is not None:
            rows.append((text("lirads_management", language), a.management.text(language)))
    rows.append((text("lirads_note", language), text("lirads_software_note", language)))
    return rows
