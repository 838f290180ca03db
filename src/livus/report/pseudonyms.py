"""Keyed, consistent replacements for identifiers (pseudonyms, UIDs, date shifts, paths).

Every replacement is an HMAC-SHA256 of the original value under a site key, so the same patient
gets the same pseudonym, the same UID the same new UID and the same date offset in every file
and every export made with that key, while nobody without the key can link back. The
:class:`Pseudonymizer` also remembers each original → replacement pair so that free text
(JSON, CSV, file names) can be scrubbed of every value removed from the DICOM headers.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from pathlib import PurePath

MAX_DATE_SHIFT_DAYS = 3650  # dates move back by 1 … this many days (per patient)
MIN_SCRUB_LENGTH = 4  # shorter removed values are not searched in free text (too many false hits)
MIN_NAME_LETTERS = 2  # parts of the patient's name are searched from this length (Li, Wu, Xu)
REMOVED = "REMOVED"
CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# a one-character CJK surname is scrubbed standing alone or before one of these forms of address
CJK_ADDRESS = ("先生", "女士", "小姐", "老师", "医生", "大夫", "阿姨", "某")


def _is_cjk(value: str) -> bool:
    return bool(value) and re.fullmatch(f"[{CJK}]+", value) is not None


def name_pattern(name: str) -> str:
    """Regex of a name part as a whole word: Latin names not inside a longer word (nor glued by
    a hyphen to a letter, so "Li" never matches in "LI-RADS"); CJK names of one character only
    standing alone or before a form of address, longer CJK names anywhere."""
    escaped = re.escape(name)
    if _is_cjk(name):
        if len(name) > 1:
            return escaped
        return f"(?<![{CJK}]){escaped}(?:(?![{CJK}])|(?=(?:{'|'.join(CJK_ADDRESS)})))"
    return f"(?<![^\\W_])(?<![^\\W\\d_]-){escaped}(?![^\\W_])(?!-[^\\W\\d_])"


def person_name_parts(value: str) -> list[str]:
    """Every component of a DICOM person name (alphabetic=ideographic=phonetic groups, each
    family^given^middle^prefix^suffix) plus the whole of each group in the usual orders."""
    out: list[str] = []
    for group in str(value).split("="):
        parts = [p.strip() for p in group.split("^") if p.strip()]
        if not parts:
            continue
        joined = "".join(parts) if all(_is_cjk(p) for p in parts) else None
        out += [p for p in parts]
        out += [v for v in (joined, " ".join(parts), " ".join(reversed(parts)), "_".join(parts), "-".join(parts)) if v]
    return list(dict.fromkeys(out))


def _digest(key: bytes, kind: str, value: str) -> bytes:
    return hmac.new(key, f"{kind}\x00{value}".encode("utf-8"), hashlib.sha256).digest()


@dataclass
class Pseudonymizer:
    """Keyed replacements plus the table of every replacement made so far."""

    key: bytes
    replacements: dict[str, str] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)  # the patients' name parts, matched as whole words

    def pseudonym(self, patient_key: str) -> str:
        """``LIVUS-XXXXXXXXXXXX`` for a patient (12 base32 characters of the keyed hash)."""
        code = base64.b32encode(_digest(self.key, "patient", patient_key)).decode("ascii")[:12]
        return self.remember(patient_key, f"LIVUS-{code}")

    def uid(self, original: str) -> str:
        """A new UID under the ``2.25`` root (UUID-derived UIDs), the same for the same input."""
        number = int.from_bytes(_digest(self.key, "uid", original)[:16], "big")
        return self.remember(original, f"2.25.{number}")

    def date_offset_days(self, patient_key: str) -> int:
        """Days to add to every date of this patient (negative: 1 … MAX_DATE_SHIFT_DAYS back)."""
        n = int.from_bytes(_digest(self.key, "dates", patient_key)[:4], "big")
        return -(1 + n % MAX_DATE_SHIFT_DAYS)

    def file_token(self, original: str) -> str:
        """``src-xxxxxxxxxx`` for a source path or file stem."""
        return self.remember(original, "src-" + _digest(self.key, "path", original).hex()[:10])

    def case_token(self, case_id: str) -> str:
        """``case-xxxxxxxxxx`` for a case id."""
        return self.remember(case_id, "case-" + _digest(self.key, "case", case_id).hex()[:10])

    def remember(self, original: str, replacement: str) -> str:
        original = str(original).strip()
        if len(original) >= MIN_SCRUB_LENGTH and original != replacement:
            self.replacements.setdefault(original, replacement)
        return replacement

    def forget_value(self, original: str) -> None:
        """Register a removed value so free text loses it too (replaced by ``REMOVED``)."""
        value = str(original).strip()
        if len(value) >= MIN_SCRUB_LENGTH:
            self.replacements.setdefault(value, REMOVED)
            if "^" in value:  # DICOM person names: also the parts and "Given Family" forms
                parts = [p for p in value.split("^") if p]
                for variant in [" ".join(parts), " ".join(reversed(parts)), "_".join(parts), *parts]:
                    if len(variant) >= MIN_SCRUB_LENGTH:
                        self.replacements.setdefault(variant, REMOVED)

    def forget_name(self, person_name: str) -> None:
        """Register a patient's name (DICOM PN): its parts of any length (from
        :data:`MIN_NAME_LETTERS` Latin letters, any CJK name) are scrubbed as whole words."""
        for part in person_name_parts(person_name):
            if _is_cjk(part) or sum(ch.isalpha() for ch in part) >= MIN_NAME_LETTERS:
                self.names.add(part)

    def scrub_text(self, text: str, distinct_removed: bool = False) -> str:
        """``text`` with every remembered original value replaced (longest first, case-insensitive
        for letters; name parts as whole words). With ``distinct_removed`` a removed value
        becomes a keyed token (``id-xxxxxxxx``) instead of ``REMOVED``, so that two names never
        collide."""
        if not (self.replacements or self.names) or not text:
            return text
        lookup = {o.lower(): r for o, r in self.replacements.items()}
        entries = [(o, re.escape(o)) for o in self.replacements]
        entries += [(n, name_pattern(n)) for n in self.names if n.lower() not in lookup]
        entries.sort(key=lambda e: len(e[0]), reverse=True)
        pattern = re.compile("|".join(p for _, p in entries), re.IGNORECASE)

        def replace(match: re.Match[str]) -> str:
            found = match.group(0)
            new = lookup.get(found.lower(), REMOVED)
            if new == REMOVED and distinct_removed:
                return "id-" + _digest(self.key, "removed", found.lower()).hex()[:8]
            return new

        return pattern.sub(replace, text)

    def scrub_path(self, relative: PurePath) -> PurePath:
        """A relative path with identifiers replaced in every component (distinct tokens)."""
        return PurePath(*[self.scrub_text(part, distinct_removed=True) for part in relative.parts])


def shift_date(value: str, days: int) -> str:
    """Shift a DICOM DA (``YYYYMMDD``) or DT (``YYYYMMDDhhmmss...``) value, or an ISO date
    (``YYYY-MM-DD...``), by ``days``; the time part is kept. Unparseable values become empty."""
    value = value.strip()
    iso = re.match(r"^(\d{4})-(\d{2})-(\d{2})(.*)$", value)
    compact = re.match(r"^(\d{4})(\d{2})(\d{2})(.*)$", value)
    match = iso or compact
    if not match:
        return ""
    try:
        day = dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return ""
    shifted = day + dt.timedelta(days=days)
    head = shifted.isoformat() if iso else shifted.strftime("%Y%m%d")
    return head + match.group(4)
