from __future__ import annotations

from fontTools.ttLib import TTFont

from livus.io.dataset import CEUS_FEATURE_NAMES, FEATURE_NAMES
from livus.report import i18n
from livus.report.fonts import cjk_font_path


def test_every_feature_has_both_languages():
    for name in FEATURE_NAMES + CEUS_FEATURE_NAMES:
        assert name in i18n.FEATURE_LABELS, name
        assert i18n.feature_label(name, "zh") != i18n.feature_label(name, "en"), name
    assert i18n.feature_label("dx_hcc", "zh") == "肝细胞癌"
    assert i18n.feature_label("washout_early", "zh") == "早廓清"


def test_bundled_font_covers_every_string():
    cmap = TTFont(str(cjk_font_path())).getBestCmap()
    tables = (i18n.STRINGS, i18n.FEATURE_LABELS, i18n.DIAGNOSIS_LABELS, i18n.PRIORITY_LABELS, i18n.LOCATION_LABELS)
    chars = {c for table in tables for entry in table.values() for s in entry.values() for c in s}
    assert not sorted(c for c in chars if ord(c) not in cmap)
    assert len(cmap) > 7000  # ASCII, Latin-1, punctuation and the 6763 GB 2312 hanzi
