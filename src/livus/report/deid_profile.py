"""Which action the DICOM Basic Application Level Confidentiality Profile asks for each tag.

The table of attributes and actions (PS3.15 Table E.1-1) is not retyped here: it comes from the
``dicom-anonymizer`` package (its ``dicomfields_2026c`` database, BSD licence), which tracks the
standard. This module only folds its combined categories into one action that livus applies:

* ``X`` remove, ``Z`` empty (keep the attribute, zero length), ``D`` replace with a dummy value,
  ``U`` replace the UID by a consistent keyed one, ``K`` keep (attribute not in the table).
* Dates and date-times in any category except the patient's birth date are SHIFTED per patient
  (the "Retain Longitudinal Temporal Information with Modified Dates" option), so intervals
  between a patient's studies survive while no real date does.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector

TABLE_VERSION = "dicomfields_2026c"
DATE_VRS = ("DA", "DT")
PATIENT_BIRTH_DATE = (0x0010, 0x0030)


@dataclass(frozen=True)
class ProfileTable:
    """Tag → category (exact tags) plus masked tag patterns (repeating groups like 50xx/60xx)."""

    exact: dict[tuple[int, int], str]
    masked: tuple[tuple[int, int, int, int, str], ...]

    def category(self, group: int, element: int) -> str | None:
        cat = self.exact.get((group, element))
        if cat is not None:
            return cat
        for g, e, gmask, emask, c in self.masked:
            if (group & gmask) == g and (element & emask) == e:
                return c
        return None


@lru_cache(maxsize=1)
def profile_table() -> ProfileTable:
    """The PS3.15 E.1-1 table as loaded from ``dicom-anonymizer``."""
    db = dicom_anonymization_database_selector(TABLE_VERSION)
    exact: dict[tuple[int, int], str] = {}
    masked: list[tuple[int, int, int, int, str]] = []
    for category, tags in db.items():
        if category == "ALL_TAGS":
            continue
        for tag in tags:
            if len(tag) == 2:
                exact[(int(tag[0]), int(tag[1]))] = category
            else:
                masked.append((int(tag[0]), int(tag[1]), int(tag[2]), int(tag[3]), category))
    return ProfileTable(exact=exact, masked=tuple(masked))


def action_for(group: int, element: int, vr: str) -> str:
    """The action livus applies to a (non-private) attribute: one of X, Z, D, U, SHIFT, K."""
    if (group, element) == PATIENT_BIRTH_DATE:
        return "Z"
    category = profile_table().category(group, element)
    if category is None:
        return "K"
    if vr in DATE_VRS:
        return "X" if category == "X_TAGS" else "SHIFT"
    if vr == "UI" and ("U" in category.split("_") or category == "X_Z_U_STAR_TAGS"):
        return "U"
    return {
        "X_TAGS": "X",
        "Z_TAGS": "Z",
        "D_TAGS": "D",
        "U_TAGS": "U",
        "Z_D_TAGS": "Z",
        "X_Z_TAGS": "Z",
        "X_D_TAGS": "X",
        "X_Z_D_TAGS": "Z",
        "X_Z_U_STAR_TAGS": "Z",
    }[category]
