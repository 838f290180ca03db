"""What an uploaded file says about itself before it is decoded: its kind, size in pixels and
frames (from the header only), and for DICOM the patient and study it belongs to.

The upload route uses this to refuse images too large to analyse (a 184 KB PNG may claim
12000 × 12000 px) before any pixel is decoded, and to take the patient's identity from the
DICOM header, so that a study never loses (or mixes up) whose images it holds.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
DICOM_SUFFIXES = frozenset({".dcm", ".dicom"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm"})
ALLOWED_SUFFIXES = IMAGE_SUFFIXES | DICOM_SUFFIXES | VIDEO_SUFFIXES


class UploadRefused(Exception):
    """An upload the service will not store; ``status`` is the HTTP status to answer (413: too
    large, 422: contradictory)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class FileProbe:
    """Header facts of one file; ``None`` = not known (unreadable header: the analysis will
    report why, the file is kept)."""

    kind: str  # image | dicom | video | unknown
    width_px: int | None = None
    height_px: int | None = None
    n_frames: int | None = None
    patient_id: str = ""
    patient_name: str = ""
    study_instance_uid: str = ""
    study_description: str = ""
    bomb: bool = False  # the image library refused to even open it (header claims a decompression bomb)


def _is_dicom(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(132)
    return len(head) == 132 and head[128:132] == b"DICM"


def probe_dicom(path: Path) -> FileProbe:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError, TypeError, KeyError):
        return FileProbe("dicom")

    def text(keyword: str, limit: int) -> str:
        return str(ds.get(keyword, "") or "").strip()[:limit]

    def number(keyword: str) -> int | None:
        try:
            v = ds.get(keyword)
            return None if v is None or v == "" else int(v)
        except (TypeError, ValueError):
            return None

    return FileProbe("dicom", number("Columns"), number("Rows"), number("NumberOfFrames") or 1,
                     text("PatientID", 128), text("PatientName", 256), text("StudyInstanceUID", 128),
                     text("StudyDescription", 500))


def probe_image(path: Path) -> FileProbe:
    from PIL import Image

    try:
        with Image.open(path) as im:  # reads the header only
            width, height = im.size
            n = int(getattr(im, "n_frames", 1) or 1)
    except Image.DecompressionBombError:
        return FileProbe("image", bomb=True)
    except (OSError, ValueError, SyntaxError):
        return FileProbe("image")
    return FileProbe("image", width, height, n)


def probe_video(path: Path) -> FileProbe:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return FileProbe("video")
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
    return FileProbe("video", width or None, height or None, n if n > 0 else None)


def probe_file(path: Path) -> FileProbe:
    """Header facts of ``path`` (DICOM by its preamble whatever the suffix)."""
    path = Path(path)
    if _is_dicom(path) or path.suffix.lower() in DICOM_SUFFIXES:
        return probe_dicom(path)
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return probe_image(path)
    if suffix in VIDEO_SUFFIXES:
        return probe_video(path)
    return FileProbe("unknown")


def check_limits(name: str, probe: FileProbe, max_frame_pixels: int, max_frames: int) -> None:
    """``UploadRefused(413)`` when the header claims frames over ``max_frame_pixels`` pixels or
    more than ``max_frames`` frames (0 = no limit), or is a decompression bomb."""
    if probe.bomb:
        raise UploadRefused(413, f"{name}: the image header claims far too many pixels (decompression bomb)")
    if max_frame_pixels and probe.width_px and probe.height_px and probe.width_px * probe.height_px > max_frame_pixels:
        raise UploadRefused(413, f"{name}: {probe.width_px}x{probe.height_px} px is over the limit of "
                                 f"{max_frame_pixels} pixels per frame")
    if max_frames and probe.n_frames and probe.n_frames > max_frames:
        raise UploadRefused(413, f"{name}: {probe.n_frames} frames is over the limit of {max_frames} frames")


@dataclass
class Identity:
    patient_id: str
    patient_name: str
    study_instance_uid: str
    description: str


def resolve_identity(named: list[tuple[str, FileProbe]], form_id: str, form_name: str, form_description: str) -> Identity:
    """The study's patient: from the DICOM headers, else from the form (plain images).

    ``UploadRefused(422)`` when the DICOM files name different patients, or the form names
    another patient ID than the headers (a wrong-patient upload is refused, not guessed)."""
    dicoms = [(n, p) for n, p in named if p.kind == "dicom"]
    ids = sorted({p.patient_id for _, p in dicoms if p.patient_id})
    if len(ids) > 1:
        raise UploadRefused(422, f"the DICOM files belong to different patients ({len(ids)} patient IDs); "
                                 "upload each patient's images separately")
    form_id, form_name = form_id.strip(), form_name.strip()
    if ids and form_id and form_id != ids[0]:
        raise UploadRefused(422, f"the patient ID typed ({form_id}) differs from the DICOM header's ({ids[0]})")
    names = [p.patient_name for _, p in dicoms if p.patient_name]
    studies = [p.study_instance_uid for _, p in dicoms if p.study_instance_uid]
    described = [p.study_description for _, p in dicoms if p.study_description]
    return Identity(ids[0] if ids else form_id, names[0] if names else form_name,
                    studies[0] if studies else "", form_description.strip() or (described[0] if described else ""))


def safe_display_name(name: str | None) -> str:
    """A client's file name reduced to something safe to show: last path part, no control
    characters, at most 120 characters. Never used as a path as it is (see ``storage_name``)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    return base[:120] or "unnamed"


def stored_suffix(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return suffix if suffix in ALLOWED_SUFFIXES else ".bin"


def storage_name(display: str) -> str:
    """The file name on disk for an uploaded ``display`` name: its stem with only letters,
    digits, ``-`` and ``_`` (others become ``_``; at most 80 characters), and an allowed
    suffix (else ``.bin``). Each file lives in its own numbered folder, so names never clash;
    keeping the name lets reports and overlays show what the user uploaded."""
    stem = re.sub(r"[^\w-]+", "_", Path(display).stem, flags=re.UNICODE).strip("_")[:80] or "file"
    return stem + stored_suffix(display)
