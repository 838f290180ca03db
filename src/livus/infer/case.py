"""Case assessment: lesions + the patient's liver background → risk, priority, follow-up.

The decision rules live in a YAML table (``case_rules.yaml`` shipped with the package, or a
file the user gives); this module only evaluates them, so a department can change its protocol
without touching code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from livus.types import CaseResult, LesionTrack, PatientBackground

RULES_SCHEMA = "livus.case_rules/1"
_LESION_KEYS = {"malignancy_min", "long_axis_mm_min", "long_axis_mm_max", "size_unknown"}
_CASE_KEYS = {"lesion", "at_risk", "afp_raised"}


@dataclass
class CaseRule:
    id: str
    when: dict[str, Any]
    priority: str
    follow_up_months: float
    action: dict[str, str]


@dataclass
class CaseRules:
    rules: list[CaseRule]
    background_risk: dict[str, float] = field(default_factory=dict)
    afp_raised_ng_ml: float = 20.0


def load_case_rules(path: str | Path | None = None) -> CaseRules:
    """Read a rules table (default: the one shipped with livus) and check its keys."""
    if path is None:
        text = resources.files("livus.infer").joinpath("case_rules.yaml").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict) or doc.get("schema") != RULES_SCHEMA:
        raise ValueError(f"case rules: expected schema {RULES_SCHEMA}")
    rules = []
    for r in doc["rules"]:
        when = r.get("when") or {}
        bad = set(when) - _CASE_KEYS or set(when.get("lesion", {})) - _LESION_KEYS
        if bad:
            raise ValueError(f"case rule {r.get('id')}: unknown condition(s) {sorted(bad)}")
        if r["priority"] not in ("routine", "soon", "urgent"):
            raise ValueError(f"case rule {r['id']}: priority must be routine/soon/urgent")
        rules.append(CaseRule(r["id"], when, r["priority"], float(r["follow_up_months"]), dict(r["action"])))
    return CaseRules(rules, dict(doc.get("background_risk", {})), float(doc.get("afp_raised_ng_ml", 20.0)))


def load_patient(path: str | Path | None) -> PatientBackground:
    """Patient background from a JSON file such as ``{"hbv": true, "cirrhosis": true, "afp_ng_ml": 12}``."""
    if path is None:
        return PatientBackground()
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    known = set(PatientBackground.__dataclass_fields__)
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{path}: unknown patient fields {sorted(unknown)} (known: {sorted(known)})")
    return PatientBackground(**data)


def is_at_risk(p: PatientBackground) -> bool:
    """At-risk for HCC surveillance: cirrhosis, chronic HBV or HCV."""
    return bool(p.cirrhosis or p.hbv or p.hcv)


def _lesion_matches(track: LesionTrack, cond: dict[str, Any]) -> bool:
    m = track.malignancy
    size = track.long_axis_mm
    if "malignancy_min" in cond and (m is None or m < cond["malignancy_min"]):
        return False
    if "long_axis_mm_min" in cond and (size is None or size < cond["long_axis_mm_min"]):
        return False
    if "long_axis_mm_max" in cond and (size is None or size >= cond["long_axis_mm_max"]):
        return False
    if "size_unknown" in cond and (size is None) != bool(cond["size_unknown"]):
        return False
    return True


def _rule_holds(rule: CaseRule, tracks: list[LesionTrack], p: PatientBackground, rules: CaseRules) -> bool:
    w = rule.when
    if "at_risk" in w and is_at_risk(p) != bool(w["at_risk"]):
        return False
    if "afp_raised" in w:
        raised = p.afp_ng_ml is not None and p.afp_ng_ml >= rules.afp_raised_ng_ml
        if raised != bool(w["afp_raised"]):
            return False
    if "lesion" in w and not any(_lesion_matches(t, w["lesion"]) for t in tracks):
        return False
    return True


def case_risk(tracks: list[LesionTrack], p: PatientBackground, rules: CaseRules) -> float:
    """Heuristic case risk in [0, 1] (see the rules file); not a calibrated probability."""
    m_max = max((t.malignancy for t in tracks if t.malignancy is not None), default=0.0)
    keep = 1.0 - m_max
    terms = {
        "cirrhosis": bool(p.cirrhosis),
        "hbv": bool(p.hbv),
        "hcv": bool(p.hcv),
        "afp_raised": p.afp_ng_ml is not None and p.afp_ng_ml >= rules.afp_raised_ng_ml,
    }
    for name, applies in terms.items():
        if applies:
            keep *= 1.0 - rules.background_risk.get(name, 0.0)
    return round(1.0 - keep, 4)


def _describe(track: LesionTrack, language: str) -> str:
    size = f"{track.long_axis_mm:.1f} mm" if track.long_axis_mm is not None else ("大小未知" if language == "zh" else "size unknown")
    mal = "—" if track.malignancy is None else f"{track.malignancy:.2f}"
    if language == "zh":
        return f"病灶{track.track_id}（长径 {size}，恶性概率 {mal}）"
    return f"lesion {track.track_id} ({size}, malignancy {mal})"


def assess_case(
    case_id: str,
    tracks: list[LesionTrack],
    patient: PatientBackground | None = None,
    rules: CaseRules | None = None,
    language: str = "en",
) -> CaseResult:
    """Apply the rules table to a case; ``reasons`` lists every rule that holds, first = decisive."""
    patient = patient or PatientBackground()
    rules = rules or load_case_rules()
    holding = [r for r in rules.rules if _rule_holds(r, tracks, patient, rules)]
    result = CaseResult(case_id=case_id, tracks=tracks, patient=patient, risk=case_risk(tracks, patient, rules))
    if not holding:
        result.warnings.append("no case rule applies; check the rules table")
        return result
    decisive = holding[0]
    result.priority = decisive.priority
    result.follow_up_months = decisive.follow_up_months
    lesions = "; ".join(_describe(t, language) for t in tracks) or ("未见病灶" if language == "zh" else "no lesion")
    for r in holding:
        action = r.action.get(language) or r.action.get("en", r.id)
        result.reasons.append(f"[{r.id}] {action}")
    result.reasons.append(("病灶：" if language == "zh" else "lesions: ") + lesions)
    return result
