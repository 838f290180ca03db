"""The image-derived liver background (:mod:`livus.infer.liver_background`) as one report line
in one language, e.g. ``脂肪肝 中度（置信度 0.72）；肝硬化征象（置信度 0.81）；影像推断（仅经模拟
数据校准），非诊断结论，请结合临床及随访``. Accepts the object or its JSON dict."""

from __future__ import annotations

from typing import Any

from livus.report.i18n import text


def _get(bg: Any, key: str) -> Any:
    return bg.get(key) if isinstance(bg, dict) else getattr(bg, key, None)


def background_line(bg: Any, language: str) -> str | None:
    """The report line; ``None`` when there is no background at all (not computed)."""
    if bg is None:
        return None
    steatosis = _get(bg, "steatosis")
    if steatosis is None:
        return text(f"background_{_get(bg, 'reason') or 'no_frame'}", language)
    sep = "；" if language == "zh" else "; "
    lp, rp = ("（", "）") if language == "zh" else (" (", ")")
    conf = text("background_confidence", language)

    def with_conf(label: str, probs: dict | None, cls: str) -> str:
        p = (probs or {}).get(cls)
        return label if p is None else f"{label}{lp}{conf} {p:.2f}{rp}"

    parts = [with_conf(text(f"steatosis_{steatosis}", language), _get(bg, "steatosis_probs"), steatosis)]
    # only the cirrhosis sign is printed: the fibrosis class (F2-F3) and the surface label stay in
    # case.json; on AUL they read "fibrosis" / "nodular" on 42 and 46 of 80 normal livers
    # (docs/liver_background.md), too often to print as findings
    if _get(bg, "cirrhosis_signs"):
        parts.append(with_conf(text("fibrosis_cirrhosis", language), _get(bg, "fibrosis_probs"), "cirrhosis"))
    else:
        parts.append(text("fibrosis_no_cirrhosis", language))
    parts.append(text("background_note", language))
    return sep.join(parts)
