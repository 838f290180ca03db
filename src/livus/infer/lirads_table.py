"""The LI-RADS table: management per category and the evidence thresholds (``lirads.yaml``).

Like the case rules (:mod:`livus.infer.case`), the table is data a department can replace
(``AnalyzeConfig.lirads_table_path``); livus checks it when it loads it: every US and CEUS
category has a management entry (and ``US-1/C``, so that a limited examination never reads as a
clean negative), every action has the languages ``en`` and ``zh``, ``params`` only names
:class:`~livus.infer.lirads.LiradsParams` fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from livus.infer.lirads import CEUS_CATEGORIES, US_CATEGORIES, VISUALIZATION_SCORES, LiradsParams

TABLE_SCHEMA = "livus.lirads/1"
REQUIRED_KEYS = (*US_CATEGORIES, "US-1/C", *CEUS_CATEGORIES)
LANGUAGES = ("en", "zh")


@dataclass(frozen=True)
class Management:
    """What to do for one table key: the interval in months (``None``: a team decision) and the
    action in each language."""

    key: str
    follow_up_months: float | None
    action: dict[str, str]

    def text(self, language: str) -> str:
        return self.action.get(language) or self.action["en"]

    def to_json_dict(self, language: str) -> dict[str, Any]:
        return {"key": self.key, "follow_up_months": self.follow_up_months, "action": self.text(language)}


@dataclass
class LiradsTable:
    """Management entries by key (``US-2``, ``US-1/C``, ``LR-4`` ...) and the evidence params."""

    management: dict[str, Management]
    params: LiradsParams = field(default_factory=LiradsParams)

    def management_for(self, category: str, visualization: str | None = None) -> Management:
        """The entry ``category/visualization`` when the table has it, else ``category``."""
        if visualization and f"{category}/{visualization}" in self.management:
            return self.management[f"{category}/{visualization}"]
        return self.management[category]


def _check_key(key: str) -> None:
    category, _, vis = key.partition("/")
    if category not in US_CATEGORIES + CEUS_CATEGORIES or (vis and (vis not in VISUALIZATION_SCORES
                                                                    or category not in US_CATEGORIES)):
        raise ValueError(f"LI-RADS table: unknown management key {key!r}")


def parse_lirads_table(doc: Any) -> LiradsTable:
    """Check and read a parsed ``lirads.yaml`` document (see the module docstring)."""
    if not isinstance(doc, dict) or doc.get("schema") != TABLE_SCHEMA:
        raise ValueError(f"LI-RADS table: expected schema {TABLE_SCHEMA}")
    unknown = set(doc) - {"schema", "params", "management"}
    if unknown:
        raise ValueError(f"LI-RADS table: unknown section(s) {sorted(unknown)}")
    entries = doc.get("management") or {}
    missing = [k for k in REQUIRED_KEYS if k not in entries]
    if missing:
        raise ValueError(f"LI-RADS table: no management for {missing}")
    management = {}
    for key, entry in entries.items():
        _check_key(str(key))
        if not isinstance(entry, dict) or set(entry) - {"follow_up_months", "action"}:
            raise ValueError(f"LI-RADS table: {key} takes follow_up_months and action")
        action = dict(entry.get("action") or {})
        if any(not action.get(lang) for lang in LANGUAGES):
            raise ValueError(f"LI-RADS table: the action of {key} needs the languages {LANGUAGES}")
        months = entry.get("follow_up_months")
        management[str(key)] = Management(str(key), None if months is None else float(months), action)
    return LiradsTable(management, LiradsParams.from_dict(doc.get("params")))


def load_lirads_table(path: str | Path | None = None) -> LiradsTable:
    """Read a LI-RADS table (default: the one shipped with livus)."""
    if path is None:
        text = resources.files("livus.infer").joinpath("lirads.yaml").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return parse_lirads_table(yaml.safe_load(text))


@lru_cache(maxsize=4)
def cached_lirads_table(path: str | None = None) -> LiradsTable:
    """:func:`load_lirads_table`, read once per path and process (batch analysis)."""
    return load_lirads_table(path)
