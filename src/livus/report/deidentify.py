"""De-identified export of a file or folder (DICOM, images, livus JSON/CSV results).

``deidentify_path(SRC, DST, key)`` copies what can be de-identified from SRC to DST:

* DICOM: the Basic Application Level Confidentiality Profile (PS3.15 E.1-1, action table from
  :mod:`livus.report.deid_profile`): identifying attributes removed, emptied or replaced, all
  instance UIDs replaced consistently, private tags removed, dates shifted per patient (Retain
  Longitudinal Temporal Information with Modified Dates option), PatientName/PatientID set to a
  keyed pseudonym, PatientIdentityRemoved=YES, DeidentificationMethod(+CodeSequence) filled in,
  references between exported objects (Referenced / Source Image, SR and SEG references)
  following the new UIDs, and burned-in text blacked out in every frame
  (:mod:`livus.report.redact_pixels`: overlay detector + OCR over the whole image; palette and
  YBR colour written back as RGB). BurnedInAnnotation NO and the Clean Pixel Data option only
  when the OCR verified the result; SEG label masks are left as they are (no text claim).
* PNG/JPEG/BMP/TIFF images: burned-in text blacked out the same way; metadata not carried over.
* An image or DICOM whose pixels were not verified clean (OCR unavailable or failed, text still
  readable, pixels not decodable) is WITHHELD with the reason in the report; with
  ``write_uncertain`` it is written, marked (BurnedInAnnotation YES) and listed as not clean.
* ``.json``, ``.jsonl``, ``.csv``: source paths, patient ids, case ids, UIDs and every value
  removed from the DICOM headers are replaced by their pseudonyms (``patient_id`` fields get the
  patient's pseudonym, ``case_id`` values and their ``cases/<case_id>`` folders a keyed token).
* Everything else (HTML/PDF reports, videos, unknown files) is NOT copied and is listed in the
  report: re-render reports from the de-identified ``case.json``.

File and folder names are scrubbed the same way (a folder named after a patient or a study UID
gets the pseudonym / new UID). Pseudonyms, UIDs and date offsets are HMAC-SHA256 of the original
under the site ``key`` (argument, else the ``LIVUS_DEID_KEY`` environment variable, else a
random key for this export only), so one patient gets one pseudonym across files and exports.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import cv2
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID_dictionary

from livus.report.deid_profile import TABLE_VERSION, action_for
from livus.report.pseudonyms import Pseudonymizer, shift_date
from livus.report.ocr import OcrUnavailable, TextReader
from livus.report.redact_pixels import RedactParams, redact_burned_in_text, text_mask_for

KEY_ENV = "LIVUS_DEID_KEY"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
TABLE_SUFFIXES = (".json", ".jsonl", ".csv")
SOURCE_KEYS = ("source", "sources", "path", "file", "file_name", "src")
PATIENT_KEYS = ("patient_id", "PatientID", "patient_name", "PatientName")
CASE_KEYS = ("case_id",)  # case ids derive from study UIDs / patient ids (unkeyed digests)
TEXT_VR_MAX = {"AE": 16, "CS": 16, "SH": 16, "LO": 64, "ST": 1024, "LT": 10240, "UT": 10240, "UC": 10240, "UR": 10240}
NUMBER_STRING_VRS = ("IS", "DS")
BINARY_NUMBER_VRS = ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT")
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
DUMMY_TEXT = "ANONYMIZED"
DUMMY_NAME = "ANONYMOUS"
DEID_METHOD_CODES = {
    "basic": ("113100", "Basic Application Confidentiality Profile"),
    "dates": ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "pixels": ("113101", "Clean Pixel Data Option"),
}


@dataclass
class DeidReport:
    """What an export did. Never lists original identifiers, only counts and pseudonyms."""

    src: Path
    dst: Path
    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (scrubbed relative path, reason)
    n_dicom: int = 0
    n_images: int = 0
    n_tables: int = 0
    pixel_methods: dict[str, int] = field(default_factory=dict)
    not_clean: list[str] = field(default_factory=list)  # written although not verified clean
    pseudonyms: list[str] = field(default_factory=list)
    key_source: str = "argument"
    warnings: list[str] = field(default_factory=list)

    def summary_text(self) -> str:
        lines = [
            f"de-identified export {self.dst}: {len(self.written)} files written "
            f"({self.n_dicom} DICOM, {self.n_images} images, {self.n_tables} tables), {len(self.skipped)} skipped",
            f"patients (pseudonyms): {', '.join(self.pseudonyms) or 'none'}",
            "burned-in text: " + (", ".join(f"{k} ×{v}" for k, v in sorted(self.pixel_methods.items())) or "no image"),
            f"key: {self.key_source}",
        ]
        lines += [f"skipped {path}: {why}" for path, why in self.skipped]
        lines += [f"NOT de-identified in the pixels (burned-in text not verified clean): {path}" for path in self.not_clean]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _resolve_key(key: str | None, report: DeidReport) -> bytes:
    if key:
        return key.encode("utf-8")
    env = os.environ.get(KEY_ENV)
    if env:
        report.key_source = f"environment ({KEY_ENV})"
        return env.encode("utf-8")
    report.key_source = "random (pseudonyms consistent within this export only)"
    report.warnings.append(f"no site key given (--key or {KEY_ENV}): pseudonyms will differ in another export")
    return secrets.token_bytes(32)


# ----------------------------------------------------------------------------------- DICOM


def _is_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM" or path.suffix.lower() == ".dcm"


def patient_key(ds: Dataset) -> str:
    """The value that identifies the patient of a dataset (PatientID, else name, else study)."""
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID"):
        value = str(ds.get(keyword, "") or "").strip()
        if value:
            return f"{keyword}:{value}"
    return "unknown-patient"


def _is_standard_uid(value: str) -> bool:
    return value in UID_dictionary


def _values(elem: pydicom.DataElement) -> list[Any]:
    if elem.value is None:
        return []
    if elem.VM > 1 or isinstance(elem.value, (list, tuple)):
        return list(elem.value)
    return [elem.value]


def register_dataset(ds: Dataset, pz: Pseudonymizer) -> str:
    """Record every identifier of ``ds`` (pseudonym, UIDs, shifted dates, removed values) so that
    free text and file names can be scrubbed; returns the patient's pseudonym."""
    key = patient_key(ds)
    pseudo = pz.pseudonym(key)
    offset = pz.date_offset_days(key)
    for keyword in ("PatientID", "PatientName", "OtherPatientIDs"):
        value = str(ds.get(keyword, "") or "").strip()
        if value:
            pz.remember(value, pseudo)
            pz.forget_value(value)  # name parts and variants
    for keyword in ("PatientName", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName"):
        for value in _values(ds[keyword]) if keyword in ds else []:
            pz.forget_name(str(value))  # parts of any length (Li, Wu), CJK names, as whole words
    for elem in ds.iterall():
        if elem.VR == "SQ" or elem.tag == 0x7FE00010:
            continue
        values = [str(v) for v in _values(elem) if v is not None and str(v).strip()]
        if not values:
            continue
        if elem.tag.is_private:
            for v in values:
                pz.forget_value(v)
            continue
        action = action_for(elem.tag.group, elem.tag.element, elem.VR)
        for v in values:
            if elem.VR == "UI" and (action == "U" or not _is_standard_uid(v)):
                pz.uid(v)
            elif action == "SHIFT":
                pz.remember(v, shift_date(v, offset))
                day = v[:8]
                if len(day) == 8 and day.isdigit():
                    pz.remember(day, shift_date(day, offset))
                    pz.remember(f"{day[:4]}-{day[4:6]}-{day[6:]}", shift_date(f"{day[:4]}-{day[4:6]}-{day[6:]}", offset))
            elif action in ("X", "Z", "D"):
                pz.forget_value(v)
    return pseudo


def _dummy(elem: pydicom.DataElement) -> Any:
    if elem.VR == "PN":
        return DUMMY_NAME
    if elem.VR == "AS":
        return "000Y"
    if elem.VR == "TM":
        return "000000"
    if elem.VR in NUMBER_STRING_VRS:
        return "0"
    if elem.VR in BINARY_NUMBER_VRS:
        return 0
    return DUMMY_TEXT[: TEXT_VR_MAX.get(elem.VR, 64)]


def _deidentify_elements(ds: Dataset, pz: Pseudonymizer, offset_days: int) -> None:
    for elem in list(ds):
        tag = elem.tag
        if tag.is_private:
            del ds[tag]
            continue
        if tag == 0x7FE00010:  # Pixel Data: handled by the pixel cleaner
            continue
        action = action_for(tag.group, tag.element, elem.VR)
        if elem.VR == "SQ":
            if action in ("X",):
                del ds[tag]
            elif action == "Z":
                elem.value = Sequence([])
            else:  # keep the structure, de-identify every item
                for item in elem.value:
                    _deidentify_elements(item, pz, offset_days)
            continue
        if action == "X" or (action == "D" and elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN")):
            del ds[tag]
        elif action == "Z":
            elem.value = None if elem.VR in BINARY_NUMBER_VRS else ""
        elif action == "D":
            elem.value = _dummy(elem)
        elif action == "SHIFT":
            shifted = [shift_date(str(v), offset_days) for v in _values(elem)]
            elem.value = shifted if len(shifted) > 1 else (shifted[0] if shifted else "")
        elif action == "K" and elem.VR == "PN" and elem.value:  # a person name the table missed
            elem.value = DUMMY_NAME
        elif action == "K" and elem.VR in TEXT_VR_MAX and isinstance(elem.value, str):
            elem.value = pz.scrub_text(elem.value)[: TEXT_VR_MAX[elem.VR]]  # free text may quote a removed value
        elif elem.VR == "UI" and elem.value:
            mapped = [v if (action != "U" and _is_standard_uid(str(v))) else pz.uid(str(v)) for v in _values(elem)]
            elem.value = mapped if len(mapped) > 1 else mapped[0]


@dataclass
class PixelCleaning:
    """What the pixel cleaner did to one image or DICOM (never the text it found)."""

    method: str  # e.g. "ocr+overlay-detector"
    clean: bool  # OCR ran and can read no text (but livus' labels) in the checked images
    checked: str  # which images the OCR checked, e.g. "2 of 20 frames (max projection, first)"
    note: str = ""  # why not clean

    def describe(self) -> str:
        state = "cleaned, verified by OCR" if self.clean else f"NOT verified clean ({self.note or 'unknown'})"
        return f"burned-in text: {self.method}; {state}; checked {self.checked}"


PALETTE_ATTRIBUTES = (
    "RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData", "BluePaletteColorLookupTableData",
    "SegmentedRedPaletteColorLookupTableData", "SegmentedGreenPaletteColorLookupTableData",
    "SegmentedBluePaletteColorLookupTableData", "PaletteColorLookupTableUID",
)


def _dicom_pixels(ds: Dataset) -> tuple[np.ndarray, str, int]:
    """All frames as (N, H, W) or (N, H, W, 3), their photometric interpretation and bits
    stored: palette colour becomes 8-bit RGB (``apply_color_lut``), YBR becomes RGB."""
    from pydicom.pixels import apply_color_lut

    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.decompress()  # colour: YBR → RGB, Photometric Interpretation updated
    photometric = str(ds.get("PhotometricInterpretation", ""))
    pixels = ds.pixel_array  # YBR_FULL / YBR_FULL_422 come back as RGB
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    if photometric.startswith("PALETTE"):
        rgb = apply_color_lut(pixels, ds)
        if int(ds.RedPaletteColorLookupTableDescriptor[2]) == 16:  # 16-bit entries → 8 bits (US colour is 8-bit)
            rgb = rgb >> 8
        rgb = rgb.astype(np.uint8)
        return (rgb if n_frames > 1 else rgb[None]), "RGB", 8
    if photometric.startswith("YBR"):
        photometric = "RGB"
    frames = pixels if n_frames > 1 else pixels[None]
    return np.array(frames), photometric, int(ds.BitsStored)


def _display(frame: np.ndarray, photometric: str) -> np.ndarray:
    """A frame as shown (uint8; MONOCHROME1 inverted), for the text detectors."""
    out = frame
    if out.dtype != np.uint8:
        out = cv2.normalize(out.astype(np.float32), None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return 255 - out if photometric == "MONOCHROME1" else out


def is_segmentation(ds: Dataset) -> bool:
    """A DICOM SEG: its pixels are segment labels drawn by software, never burned-in text."""
    return str(ds.get("SOPClassUID", "")) == SEGMENTATION_STORAGE or str(ds.get("Modality", "")) == "SEG"


def clean_dicom_pixels(ds: Dataset, params: RedactParams | None = None,
                       reader: TextReader | None = None) -> PixelCleaning | None:
    """Black out burned-in text in every frame of ``ds`` (decompressed; palette and YBR colour
    written back as RGB with the matching Photometric Interpretation); returns what was done, or
    ``None`` when the dataset has no pixel data. The OCR reads the max projection over frames
    (burned-in text is in every frame) and the first frame."""
    if "PixelData" not in ds or is_segmentation(ds):
        return None
    frames, photometric, bits_stored = _dicom_pixels(ds)
    displays = [_display(f, photometric) for f in frames]
    samples = [displays[0]] if len(displays) == 1 else [np.max(np.stack(displays), axis=0), displays[0]]
    mask, method, clean, _, note = text_mask_for(samples, params, reader)
    fill = (1 << bits_stored) - 1 if photometric == "MONOCHROME1" else 0
    frames[:, mask > 0] = fill
    n = len(frames)
    ds.set_pixel_data(frames if n > 1 else frames[0], photometric, bits_stored, generate_instance_uid=False)
    if n > 1:
        ds.NumberOfFrames = n
    for keyword in PALETTE_ATTRIBUTES:
        if keyword in ds:
            delattr(ds, keyword)
    checked = "1 frame" if n == 1 else f"{len(samples)} images of {n} frames (max projection, first frame)"
    return PixelCleaning(method=method, clean=clean, checked=checked, note=note)


def deidentify_dataset(ds: Dataset, pz: Pseudonymizer, clean_pixels: bool = True, params: RedactParams | None = None,
                       reader: TextReader | None = None) -> tuple[str, PixelCleaning | None]:
    """De-identify ``ds`` in place; returns ``(pseudonym, what the pixel cleaner did or None)``.

    BurnedInAnnotation is ``NO`` and the Clean Pixel Data option is declared only when the
    pixels were cleaned and OCR verified them; otherwise BurnedInAnnotation is ``YES``."""
    key = patient_key(ds)
    pseudo = pz.pseudonym(key)
    offset = pz.date_offset_days(key)
    cleaning = clean_dicom_pixels(ds, params, reader) if clean_pixels else None
    _deidentify_elements(ds, pz, offset)
    ds.PatientName = f"{pseudo}^"  # family name component (a PN without "^" is a retired form)
    ds.PatientID = pseudo
    ds.PatientIdentityRemoved = "YES"
    ds.LongitudinalTemporalInformationModified = "MODIFIED"
    clean = cleaning is not None and cleaning.clean
    used = ["basic", "dates"] + (["pixels"] if clean else [])
    has_image = "PixelData" in ds and not is_segmentation(ds)
    pixel_line = "burned-in text: none (no image pixel data)" if not has_image else (
        "burned-in text: NOT cleaned" if cleaning is None else
        f"burned-in text: {cleaning.method}" + (", OCR-verified" if clean else ", NOT verified"))
    ds.DeidentificationMethod = [  # LO, 64 characters per value, several values
        "DICOM PS3.15 Basic Application Level Confidentiality Profile",
        f"action table {TABLE_VERSION} (dicom-anonymizer)",
        "livus keyed pseudonyms and UIDs; dates shifted per patient",
        "private tags removed",
        pixel_line[:64],
    ]
    codes = []
    for name in used:
        item = Dataset()
        item.CodeValue, item.CodeMeaning = DEID_METHOD_CODES[name]
        item.CodingSchemeDesignator = "DCM"
        codes.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(codes)
    if has_image:
        ds.BurnedInAnnotation = "NO" if clean else "YES"
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        if "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        for keyword in ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle",
                        "ReceivingApplicationEntityTitle", "PrivateInformationCreatorUID", "PrivateInformation"):
            if keyword in meta:
                delattr(meta, keyword)
    return pseudo, cleaning


# ------------------------------------------------------------------------- images and tables


def deidentify_image_file(src: Path, dst: Path, params: RedactParams | None = None,
                          reader: TextReader | None = None, write_uncertain: bool = False) -> PixelCleaning:
    """Copy an image with burned-in text blacked out (pixels only, no metadata); returns what
    was done. The copy is written only when it is clean, or with ``write_uncertain``."""
    image = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)  # palette PNGs come back as BGR
    if image is None:
        raise ValueError(f"{src}: cannot read image")
    result = redact_burned_in_text(image, params, reader)
    cleaning = PixelCleaning(method=result.method, clean=result.clean, checked="1 image", note=result.note)
    if cleaning.clean or write_uncertain:
        dst.parent.mkdir(parents=True, exist_ok=True)
        flags = [cv2.IMWRITE_JPEG_QUALITY, 95] if dst.suffix.lower() in (".jpg", ".jpeg") else []
        if not cv2.imwrite(str(dst), result.image, flags):
            raise OSError(f"{dst}: cannot write image")
    return cleaning


def _source_values(obj: Any, key: str | None = None) -> list[str]:
    if isinstance(obj, dict):
        return [v for k, val in obj.items() for v in _source_values(val, k)]
    if isinstance(obj, list):
        return [v for item in obj for v in _source_values(item, key)]
    if isinstance(obj, str) and key in SOURCE_KEYS and obj:
        return [obj]
    return []


def _case_values(obj: Any) -> list[str]:
    if isinstance(obj, dict):
        return [v for k, val in obj.items() for v in ([val] if k in CASE_KEYS and isinstance(val, str) else _case_values(val))]
    if isinstance(obj, list):
        return [v for item in obj for v in _case_values(item)]
    return []


def register_case_ids(values: list[str], pz: Pseudonymizer) -> None:
    """Map each case id (also the name of its ``cases/<case_id>`` folder) to ``case-xxxxxxxxxx``."""
    for value in values:
        if value:
            pz.case_token(value)


def register_sources(values: list[str], pz: Pseudonymizer) -> None:
    """Map each source path (and its file name and stem) to a keyed token, so paths in tables
    and overlay file names built from them lose any name they carried."""
    for value in values:
        path = PurePath(value.replace("\\", "/"))
        token = pz.file_token(str(path.with_suffix("")) if path.suffix else str(path))
        pz.remember(value, token + path.suffix)
        pz.remember(path.name, token + path.suffix)
        if path.stem:
            pz.remember(path.stem, token)


def _parse_table(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8", errors="replace")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return [json.loads(text)]
    if suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    rows = list(csv.DictReader(io.StringIO(text)))
    return rows


def _scrub_obj(obj: Any, pz: Pseudonymizer, key: str | None = None) -> Any:
    if isinstance(obj, dict):
        return {pz.scrub_text(str(k)): _scrub_obj(v, pz, str(k)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_scrub_obj(v, pz, key) for v in obj]
    if isinstance(obj, str):
        if key in PATIENT_KEYS and obj.strip():
            return pz.replacements.get(obj.strip()) or pz.pseudonym(f"PatientID:{obj.strip()}")
        return pz.scrub_text(obj)
    return obj


def deidentify_table_file(src: Path, dst: Path, pz: Pseudonymizer) -> None:
    """Copy a JSON / JSON-lines / CSV file with identifiers replaced (structure kept)."""
    suffix = src.suffix.lower()
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        records = _parse_table(src)
    except (json.JSONDecodeError, csv.Error, UnicodeDecodeError):
        dst.write_text(pz.scrub_text(src.read_text(encoding="utf-8", errors="replace")), encoding="utf-8")
        return
    cleaned = [_scrub_obj(r, pz) for r in records]
    if suffix == ".json":
        dst.write_text(json.dumps(cleaned[0], ensure_ascii=False, indent=1), encoding="utf-8")
    elif suffix == ".jsonl":
        dst.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in cleaned), encoding="utf-8")
    else:
        header = next(csv.reader(io.StringIO(src.read_text(encoding="utf-8"))), [])
        with open(dst, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=[pz.scrub_text(h) for h in header])
            writer.writeheader()
            writer.writerows(cleaned)


# ------------------------------------------------------------------------------ whole tree


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if _is_dicom(path):  # first: a DICOM may also be a TIFF (dual-format file)
        return "dicom"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in TABLE_SUFFIXES:
        return "table"
    return "other"


def _text_reader(params: RedactParams, report: DeidReport) -> TextReader | None:
    if not params.ocr:
        report.warnings.append("OCR text detection switched off: no image can be verified clean")
        return None
    try:
        return TextReader(params.ocr_params)
    except OcrUnavailable as exc:
        report.warnings.append(f"OCR text detection unavailable ({exc}): no image can be verified clean")
        return None


def deidentify_path(src: Path, dst: Path, key: str | None = None, params: RedactParams | None = None,
                    write_uncertain: bool = False) -> DeidReport:
    """De-identified copy of the file or folder ``src`` into the folder ``dst`` (see module doc).

    An image or DICOM whose burned-in text cannot be verified clean is withheld (listed in
    ``skipped`` with the reason); with ``write_uncertain`` it is written, marked as such
    (BurnedInAnnotation YES, no Clean Pixel Data option) and listed in ``not_clean``."""
    params = params or RedactParams()
    src, dst = Path(src).resolve(), Path(dst).resolve()
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such file or folder")
    if src.is_dir() and (dst == src or src in dst.parents):
        raise ValueError(f"{dst}: the export folder must not be inside the source folder {src}")
    report = DeidReport(src=src, dst=dst)
    pz = Pseudonymizer(key=_resolve_key(key, report))
    base = src.parent if src.is_file() else src
    files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
    kinds = {f: _kind(f) for f in files}

    pseudonyms: dict[str, None] = {}
    for f, kind in kinds.items():  # pass 1: learn every identifier before writing anything
        if kind == "dicom":
            try:
                pseudonyms[register_dataset(pydicom.dcmread(f, stop_before_pixels=True), pz)] = None
            except (pydicom.errors.InvalidDicomError, OSError, ValueError) as exc:
                kinds[f] = "other"
                report.warnings.append(f"not readable as DICOM ({type(exc).__name__})")
        elif kind == "table":
            try:
                records = _parse_table(f)
                register_sources([v for r in records for v in _source_values(r)], pz)
                register_case_ids([v for r in records for v in _case_values(r)], pz)
            except (json.JSONDecodeError, csv.Error, UnicodeDecodeError):
                pass

    reader = _text_reader(params, report) if any(k in ("dicom", "image") for k in kinds.values()) else None
    withheld = "withheld: burned-in text could not be verified clean"
    taken: set[Path] = set()
    for f, kind in kinds.items():  # pass 2: write
        rel = pz.scrub_path(PurePath(f.relative_to(base)))
        out = dst / rel
        n = 1
        while out in taken:  # two names that scrub to the same one
            n += 1
            out = (dst / rel).with_name(f"{rel.stem}-{n}{rel.suffix}")
        taken.add(out)
        cleaning: PixelCleaning | None = None
        try:
            if kind == "dicom":
                ds = pydicom.dcmread(f)
                _, cleaning = deidentify_dataset(ds, pz, params=params, reader=reader)
                if cleaning is not None:
                    report.pixel_methods[cleaning.method] = report.pixel_methods.get(cleaning.method, 0) + 1
                if cleaning is not None and not cleaning.clean and not write_uncertain:
                    report.skipped.append((str(rel), f"{withheld} ({cleaning.note})"))
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                ds.save_as(out, enforce_file_format=True)
                report.n_dicom += 1
            elif kind == "image":
                cleaning = deidentify_image_file(f, out, params, reader, write_uncertain)
                report.pixel_methods[cleaning.method] = report.pixel_methods.get(cleaning.method, 0) + 1
                if not cleaning.clean and not write_uncertain:
                    report.skipped.append((str(rel), f"{withheld} ({cleaning.note})"))
                    continue
                report.n_images += 1
            elif kind == "table":
                deidentify_table_file(f, out, pz)
                report.n_tables += 1
            else:
                reason = ("report: re-render it from the de-identified case.json" if f.suffix.lower() in (".html", ".pdf")
                          else "file type not de-identifiable, not exported")
                report.skipped.append((str(rel), reason))
                continue
        except (ValueError, OSError) as exc:
            report.skipped.append((str(rel), f"error: {type(exc).__name__}"))
            continue
        except Exception as exc:  # noqa: BLE001 - a pixel decoder failing withholds the file, never stops the export
            report.skipped.append((str(rel), f"withheld: pixels could not be cleaned ({type(exc).__name__})"))
            continue
        report.written.append(out)
        if kind in ("dicom", "image") and cleaning is not None and not cleaning.clean:
            report.not_clean.append(str(rel))
    report.pseudonyms = sorted(pseudonyms)
    return report
