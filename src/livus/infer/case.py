"""Case assessment: lesions + the patient's liver background → risk, priority, follow-up.

The decision rules live in a YAML table (``case_rules.yaml`` shipped with the package, or a
file the user gives); this module only evaluates them, so a department can change its protocol
without touching code. The first rule that holds decides; the reasons are its finding and
action, then the findings of the other rules that hold (never their actions, so there is one
piece of advice). Each rule may carry an ``example`` case that it must decide; the table is
checked against its examples when it is loaded. A case that is not assessable
(:mod:`livus.infer.assessability`) gets no rule, no lesions and no advice, only its reasons.

The image-derived liver background (:mod:`livus.infer.liver_background`) is an at-risk signal
next to the patient's own history, never a diagnosis: the ``image_cirrhosis`` condition holds
when its cirrhosis probability reaches the table's ``image_cirrhosis_probability_min``; the
shipped table then asks to confirm cirrhosis clinically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from livus.infer.liver_background import LiverBackground
from livus.report.i18n import assessability_reason, text
from livus.types import Assessability, CaseResult, LesionTrack, PatientBackground

RULES_SCHEMA = "livus.case_rules/1"
_LESION_KEYS = {"malignancy_min", "malignancy_max", "long_axis_mm_min", "long_axis_mm_max", "size_unknown"}
_CASE_KEYS = {"lesion", "no_lesion", "at_risk", "afp_raised", "image_cirrhosis"}
_EXAMPLE_KEYS = {"lesions", "patient", "image"}
_EXAMPLE_IMAGE_KEYS = {"cirrhosis_probability"}
_EXAMPLE_LESION_KEYS = {"malignancy", "long_axis_mm"}


@dataclass
class CaseRule:
    """One row of the rules table: conditions, advice, the finding it states, an example case."""

    id: str
    when: dict[str, Any]
    priority: str
    follow_up_months: float
    action: dict[str, str]
    finding: dict[str, str] = field(default_factory=dict)  # per language; {} = not listed unless deciding
    example: dict[str, Any] | None = None  # {"lesions": [...], "patient": {...}, "image": {cirrhosis_probability}}


@dataclass
class CaseRules:
    rules: list[CaseRule]
    background_risk: dict[str, float] = field(default_factory=dict)
    afp_raised_ng_ml: float = 20.0
    image_cirrhosis_probability_min: float = 0.6


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
        example = r.get("example")
        if example is not None:
            _check_example(r["id"], example)
        rules.append(CaseRule(r["id"], when, r["priority"], float(r["follow_up_months"]), dict(r["action"]),
                              dict(r.get("finding") or {}), example))
    table = CaseRules(rules, dict(doc.get("background_risk", {})), float(doc.get("afp_raised_ng_ml", 20.0)),
                      float(doc.get("image_cirrhosis_probability_min", 0.6)))
    problems = example_problems(table)
    if problems:
        raise ValueError("case rules: " + "; ".join(problems))
    return table


def _check_example(rule_id: str, example: Any) -> None:
    if not isinstance(example, dict) or set(example) - _EXAMPLE_KEYS:
        raise ValueError(f"case rule {rule_id}: example must be {{lesions: [...], patient: {{...}}}}")
    for les in example.get("lesions") or []:
        if not isinstance(les, dict) or set(les) - _EXAMPLE_LESION_KEYS:
            raise ValueError(f"case rule {rule_id}: example lesions take {sorted(_EXAMPLE_LESION_KEYS)}")
    unknown = set(example.get("patient") or {}) - set(PatientBackground.__dataclass_fields__)
    if unknown:
        raise ValueError(f"case rule {rule_id}: unknown example patient field(s) {sorted(unknown)}")
    if set(example.get("image") or {}) - _EXAMPLE_IMAGE_KEYS:
        raise ValueError(f"case rule {rule_id}: example image takes {sorted(_EXAMPLE_IMAGE_KEYS)}")


def example_case(rule: CaseRule) -> tuple[list[LesionTrack], PatientBackground]:
    """The lesion tracks and patient background of a rule's ``example``."""
    ex = rule.example or {}
    tracks = [LesionTrack(track_id=i, source="example", malignancy=les.get("malignancy"),
                          long_axis_mm=les.get("long_axis_mm"))
              for i, les in enumerate(ex.get("lesions") or [], start=1)]
    return tracks, PatientBackground(**(ex.get("patient") or {}))


def example_image(rule: CaseRule) -> LiverBackground | None:
    """The image-derived background of a rule's ``example`` (``None`` when it gives none)."""
    image = (rule.example or {}).get("image")
    if not image:
        return None
    p = float(image["cirrhosis_probability"])
    return LiverBackground(steatosis="none", fibrosis="cirrhosis" if p >= 0.5 else "none",
                           fibrosis_probs={"none": 1 - p, "fibrosis": 0.0, "cirrhosis": p})


def example_problems(rules: CaseRules) -> list[str]:
    """Rules whose own example is not decided by them (empty list: the table is consistent)."""
    problems = []
    for rule in rules.rules:
        if rule.example is None:
            continue
        tracks, patient = example_case(rule)
        got = deciding_rule(tracks, patient, rules, example_image(rule))
        if got is None or got.id != rule.id:
            problems.append(f"the example of rule {rule.id} is decided by {got.id if got else 'no rule'}")
    return problems


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


def image_cirrhosis_probability(image: LiverBackground | dict | None) -> float | None:
    """Cirrhosis probability of an image-derived background (object or its JSON dict)."""
    if image is None:
        return None
    if isinstance(image, dict):
        return (image.get("fibrosis_probs") or {}).get("cirrhosis") if image.get("assessed", True) else None
    return image.cirrhosis_probability


def image_suggests_cirrhosis(image: LiverBackground | dict | None, rules: CaseRules) -> bool:
    """Whether the image background reaches the table's cirrhosis-probability threshold."""
    p = image_cirrhosis_probability(image)
    return p is not None and p >= rules.image_cirrhosis_probability_min


def _lesion_matches(track: LesionTrack, cond: dict[str, Any]) -> bool:
    m = track.malignancy
    size = track.long_axis_mm
    if "malignancy_min" in cond and (m is None or m < cond["malignancy_min"]):
        return False
    if "malignancy_max" in cond and (m is None or m >= cond["malignancy_max"]):
        return False
    if "long_axis_mm_min" in cond and (size is None or size < cond["long_axis_mm_min"]):
        return False
    if "long_axis_mm_max" in cond and (size is None or size >= cond["long_axis_mm_max"]):
        return False
    if "size_unknown" in cond and (size is None) != bool(cond["size_unknown"]):
        return False
    return True


def _rule_holds(rule: CaseRule, tracks: list[LesionTrack], p: PatientBackground, rules: CaseRules,
                image: LiverBackground | dict | None = None) -> bool:
    w = rule.when
    if "image_cirrhosis" in w and image_suggests_cirrhosis(image, rules) != bool(w["image_cirrhosis"]):
        return False
    if "no_lesion" in w and (not tracks) != bool(w["no_lesion"]):
        return False
    if "at_risk" in w and is_at_risk(p) != bool(w["at_risk"]):
        return False
    if "afp_raised" in w:
        raised = p.afp_ng_ml is not None and p.afp_ng_ml >= rules.afp_raised_ng_ml
        if raised != bool(w["afp_raised"]):
            return False
    if "lesion" in w and not any(_lesion_matches(t, w["lesion"]) for t in tracks):
        return False
    return True


def case_risk(tracks: list[LesionTrack], p: PatientBackground, rules: CaseRules,
              image: LiverBackground | dict | None = None) -> float:
    """Heuristic case risk in [0, 1] (see the rules file); not a calibrated probability. The
    image's cirrhosis signs count only when the history does not already say cirrhosis."""
    m_max = max((t.malignancy for t in tracks if t.malignancy is not None), default=0.0)
    keep = 1.0 - m_max
    terms = {
        "cirrhosis": bool(p.cirrhosis),
        "hbv": bool(p.hbv),
        "hcv": bool(p.hcv),
        "afp_raised": p.afp_ng_ml is not None and p.afp_ng_ml >= rules.afp_raised_ng_ml,
        "image_cirrhosis": not p.cirrhosis and image_suggests_cirrhosis(image, rules),
    }
    for name, applies in terms.items():
        if applies:
            keep *= 1.0 - rules.background_risk.get(name, 0.0)
    return round(1.0 - keep, 4)


def holding_rules(tracks: list[LesionTrack], p: PatientBackground, rules: CaseRules,
                  image: LiverBackground | dict | None = None) -> list[CaseRule]:
    """Every rule whose conditions hold, in table order (the first one decides)."""
    return [r for r in rules.rules if _rule_holds(r, tracks, p, rules, image)]


def deciding_rule(tracks: list[LesionTrack], p: PatientBackground, rules: CaseRules,
                  image: LiverBackground | dict | None = None) -> CaseRule | None:
    """The first rule that holds, or ``None``."""
    return next((r for r in rules.rules if _rule_holds(r, tracks, p, rules, image)), None)


def _describe(track: LesionTrack, language: str) -> str:
    size = f"{track.long_axis_mm:.1f} mm" if track.long_axis_mm is not None else text("size_unknown", language)
    mal = "—" if track.malignancy is None else f"{track.malignancy:.2f}"
    return text("lesion_describe", language).format(n=track.track_id, size=size, malignancy=mal)


def _localised(table: dict[str, str], language: str, default: str) -> str:
    return table.get(language) or table.get("en") or default


def rule_reasons(holding: list[CaseRule], language: str) -> list[str]:
    """Reasons of the rules that hold: the deciding rule's finding and action, then the finding
    of each other rule that has one. English lines start with the rule id (``[id] ...``)."""
    def tag(rule: CaseRule) -> str:
        return f"[{rule.id}] " if language == "en" else ""

    first, rest = holding[0], holding[1:]
    action = _localised(first.action, language, first.id)
    finding = _localised(first.finding, language, "")
    lines = [tag(first) + (f"{finding} → {action}" if finding else action)]
    also = text("also_holds", language) + ("：" if language == "zh" else ": ")
    lines += [tag(r) + also + _localised(r.finding, language, r.id) for r in rest if r.finding]
    return lines


def lesions_line(tracks: list[LesionTrack], language: str) -> str:
    """The last reason line: every lesion with its size and malignancy (or "no lesion")."""
    lesions = "; ".join(_describe(t, language) for t in tracks) or text("no_lesion_short", language)
    return text("lesions_line", language).format(lesions=lesions)


def not_assessable_reason(assessability: Assessability, language: str) -> str:
    """The one reason line of a case that is not assessable, with the frames' reasons."""
    why = ("；" if language == "zh" else "; ").join(assessability_reason(r, language) for r in assessability.reasons)
    lp, rp = ("（", "）") if language == "zh" else (" (", ")")
    return text("not_assessable_advice", language) + (f"{lp}{why}{rp}" if why else "")


def limited_note(assessability: Assessability, language: str) -> str:
    """The warning line of a case of limited assessability, with its reasons."""
    sep = "；" if language == "zh" else "; "
    return text("limited_note", language).format(
        reasons=sep.join(assessability_reason(r, language) for r in assessability.reasons))


def assess_case(
    case_id: str,
    tracks: list[LesionTrack],
    patient: PatientBackground | None = None,
    rules: CaseRules | None = None,
    language: str = "en",
    assessability: Assessability | None = None,
    image_background: LiverBackground | dict | None = None,
) -> CaseResult:
    """Apply the rules table to a case (see the module docstring for the reasons).

    ``assessability`` (:func:`livus.infer.assessability.case_assessability`): a case that is not
    assessable gets no lesions, risk, priority or follow-up, only the "not assessable" reason; a
    limited one gets a warning. ``None``: assessable (not judged). ``image_background``: the
    examination's image-derived liver background (kept in the result; dropped, like everything
    else, when the case is not assessable)."""
    patient = patient or PatientBackground()
    rules = rules or load_case_rules()
    if assessability is not None and not assessability.usable:
        return CaseResult(case_id=case_id, tracks=[], patient=patient, assessability=assessability,
                          reasons=[not_assessable_reason(assessability, language)])
    holding = holding_rules(tracks, patient, rules, image_background)
    result = CaseResult(case_id=case_id, tracks=tracks, patient=patient,
                        risk=case_risk(tracks, patient, rules, image_background), assessability=assessability,
                        liver_background=image_background)
    if assessability is not None and assessability.status == "limited":
        result.warnings.append(limited_note(assessability, language))
    if not holding:
        result.warnings.append(text("no_rule_applies", language))
        return result
    decisive = holding[0]
    result.priority = decisive.priority
    result.follow_up_months = decisive.follow_up_months
    result.rules = [decisive.id] + [r.id for r in holding[1:] if r.finding]
    result.reasons = rule_reasons(holding, language) + [lesions_line(tracks, language)]
    return result
