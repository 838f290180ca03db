from __future__ import annotations

from fontTools.ttLib import TTFont

from livus.report import i18n
from livus.report.fonts import cjk_font_path
from livus.vocab import CEUS_FEATURE_NAMES, FEATURE_NAMES


def test_every_feature_has_both_languages():
    for name in FEATURE_NAMES + CEUS_FEATURE_NAMES:
        assert name in i18n.FEATURE_LABELS, name
        assert i18n.feature_label(name, "zh") != i18n.feature_label(name, "en"), name
    assert i18n.feature_label("dx_hcc", "zh") == "肝细胞癌"
    assert i18n.feature_label("washout_early", "zh") == "早廓清"


def test_bundled_font_covers_every_string():
    cmap = TTFont(str(cjk_font_path())).getBestCmap()
    tables = (i18n.STRINGS, i18n.FEATURE_LABELS, i18n.DIAGNOSIS_LABELS, i18n.PRIORITY_LABELS, i18n.LOCATION_LABELS,
              i18n.QUALITY_LABELS, i18n.ASSESSABILITY_REASONS, i18n.FRAME_WARNINGS)
    chars = {c for table in tables for entry in table.values() for s in entry.values() for c in s}
    from livus.infer.case import load_case_rules

    rule_texts = [s for r in load_case_rules().rules for t in (r.action, r.finding) for s in t.values()]
    chars |= {c for s in rule_texts + ["→"] for c in s}
    assert not sorted(c for c in chars if ord(c) not in cmap)
    assert len(cmap) > 7000  # ASCII, Latin-1, punctuation and the 6763 GB 2312 hanzi


def test_plurals_and_units():
    assert i18n.text_n("months", 1, "en") == "1 month" and i18n.text_n("months", 6, "en") == "6 months"
    assert i18n.text_n("months", 1, "zh") == "1个月"
    assert i18n.follow_up_label(0.5, "en") == "2 weeks" and i18n.follow_up_label(1.5, "en") == "1.5 months"
    assert i18n.text_n("frames_not_assessable", 1, "en").startswith("1 frame not assessable")


def test_frame_warnings_in_chinese():
    for english, entry in i18n.FRAME_WARNINGS.items():
        assert i18n.frame_warning(english, None, "zh") == entry["zh"]
        assert i18n.frame_warning(english, None, "en") == english
    quality = {"verdict": "liver_not_in_view", "reason_zh": "探头可能已偏离肝脏。"}
    assert i18n.frame_warning("low-quality frame (liver_not_in_view): The liver ...", quality, "zh") == \
        "低质量帧（未显示肝脏）：探头可能已偏离肝脏。"


def test_every_verdict_and_reason_has_both_languages():
    from livus.infer.assessability import LIMITED_REASONS
    from livus.preprocess.quality import VERDICTS

    for verdict in (*VERDICTS, "ceus_unchecked"):
        assert i18n.quality_label(verdict, "zh") != verdict
    for reason in (*LIMITED_REASONS.values(), "partial_liver", "low_quality", "not_liver", "no_frames"):
        assert i18n.assessability_reason(reason, "en") != reason and i18n.assessability_reason(reason, "zh") != reason
