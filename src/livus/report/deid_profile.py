"""Which action the DICOM Basic Application Level Confidentiality Profile asks for each tag.

The table of attributes and actions (PS3.15 Table E.1-1) is not retyped here: it comes from the
``dicom-anonymizer`` package (its ``dicomfields_2026c`` database, BSD licence), which tracks the
standard. This module only folds its combined categories into one action that livus applies:

* ``X`` remove, ``Z`` empty (keep the attribute, zero length), ``D`` replace with a dummy value,
  ``U`` replace the UID by a consistent keyed one, ``K`` keep (attribute not in the table).
* Dates and date-times in any category except the patient's birth date are SHIFTED per patient
  (the "Retain Longitudinal Temporal Information with Modified Dates" option), so intervals
  between a patient's studies survive while no real date does. A time of day (TM) whose action
  allows a dummy value (``D``) keeps its value: dates move by whole days, so the time stays
  consistent with them (as in shifted date-times), and a Type 1 time such as the SR's
  ContentTime is never emptied; other times follow the table (removed or emptied).
* Sequences: ``Z`` only where an empty sequence is valid (the table's pure ``Z`` sequences and
  :data:`TYPE2_SEQUENCES`); an ``X/Z`` sequence is removed otherwise (an empty Type 1C/3
  sequence breaks the IOD); ``X/Z/U*`` reference sequences (Referenced / Source Image) are
  kept with their items de-identified, so the references follow the replaced UIDs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector

TABLE_VERSION = "dicomfields_2026c"
DATE_VRS = ("DA", "DT")
PATIENT_BIRTH_DATE = (0x0010, 0x0030)
# X/Z sequences that are Type 2 in an IOD livus writes or reads (kept empty, not removed):
# Acquisition Context (Type 2 where used), Referenced Performed Procedure Step (Type 2 in the
# SR Document Series module, Type 3 elsewhere, so an empty one is valid everywhere)
TYPE2_SEQUENCES = frozenset({(0x0040, 0x0555), (0x0008, 0x1111)})


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
    """The action livus applies to a (non-private) attribute: one of X, Z, D, U, SHIFT, K
    (for a sequence, K means: kept, every item de-identified)."""
    if (group, element) == PATIENT_BIRTH_DATE:
        return "Z"
    category = profile_table().category(group, element)
    if category is None:
        return "K"
    if vr in DATE_VRS:
        return "X" if category == "X_TAGS" else "SHIFT"
    if vr == "TM" and category != "X_TAGS" and "D" in category.split("_"):
        return "K"  # a time of day that must keep a value (ContentTime): dates move by whole days
    if vr == "SQ":
        parts = category.split("_")
        if category == "X_Z_U_STAR_TAGS" or category == "D_TAGS":
            return "K"
        if category == "Z_TAGS" or ("Z" in parts and (group, element) in TYPE2_SEQUENCES):
            return "Z"
        return "X"
    if vr == "UI" and ("U" in category.split("_") or category == "X_Z_U_STAR_TAGS"):
        return "U"
    # where the table allows a dummy (D), livus uses it: a dummy conforms wherever the attribute
    # is Type 1 (e.g. Enhanced General Equipment's DeviceSerialNumber in a SEG), empty or removed not
    return {
        "X_TAGS": "X",
        "Z_TAGS": "Z",
        "D_TAGS": "D",
        "U_TAGS": "U",
        "Z_D_TAGS": "D",
        "X_Z_TAGS": "Z",
        "X_D_TAGS": "D",
        "X_Z_D_TAGS": "D",
        "X_Z_U_STAR_TAGS": "Z",
    }[category]
