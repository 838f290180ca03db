"""Read ultrasound sources (images, DICOM, videos, folders of frames) as :class:`livus.types.Frame`.

The type of a file is decided from its first bytes (magic numbers), the extension only breaks
ties (a DICOM without preamble, a video container OpenCV knows by name). Every failure is an
:class:`livus.errors.InputError` with a one-line reason, never a traceback from OpenCV/pydicom.
Colour is converted to grey in :mod:`livus.io.grey` (colour pixels flagged in
``Frame.color_mask``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import IO, Any, Iterator

import cv2
import numpy as np

from livus.errors import InputError
from livus.io.grey import to_grey
from livus.io.sources import (Source, filesystem, first_line, is_uri, list_uri, read_bytes, read_head, source_filename,
                               source_suffix, store_key)
from livus.types import Frame

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
DICOM_EXTENSIONS = frozenset({".dcm", ".dicom", ".dic"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".m4v", ".wmv", ".mpg", ".mpeg", ".webm"})
# Never analysed even when found inside an input folder.
NON_INPUT_EXTENSIONS = frozenset(
    {".json", ".jsonl", ".csv", ".tsv", ".txt", ".md", ".yaml", ".yml", ".xml", ".html", ".htm",
     ".pdf", ".log", ".ini", ".cfg", ".toml", ".py", ".zip", ".gz", ".tar", ".pt", ".onnx", ".db"}
)
NON_INPUT_NAMES = frozenset({"DICOMDIR", "Thumbs.db"})

_SNIFF_BYTES = 132

# Transfer syntaxes livus reads (pydicom with the pylibjpeg / pylibjpeg-libjpeg /
# pylibjpeg-openjpeg plugins), uncompressed first: what the DICOM listener accepts and what
# C-GET proposes. See :func:`decodable_transfer_syntaxes`.
DICOM_TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still sent by old scanners)
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline (8-bit)
    "1.2.840.10008.1.2.4.51",  # JPEG Extended (12-bit)
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE Lossless
)


def decodable_transfer_syntaxes() -> list[str]:
    """The :data:`DICOM_TRANSFER_SYNTAXES` whose pixel data the installed pydicom plugins can
    decode (all of them with livus's dependencies); the uncompressed ones always."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    out = []
    for uid in DICOM_TRANSFER_SYNTAXES:
        if not UID(uid).is_compressed:
            out.append(uid)
            continue
        try:
            if get_decoder(UID(uid)).is_available:
                out.append(uid)
        except NotImplementedError:
            pass
    return out


def natural_key(path: str | Path) -> list[Any]:
    """Sort key that orders ``frame2`` before ``frame10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


# --------------------------------------------------------------------------------- sniffing


def sniff_kind(path: Source) -> str | None:
    """``"image"``, ``"dicom"``, ``"video"`` or ``None`` from the first bytes of a local file or
    of the object at a URI (see :func:`sniff_bytes`)."""
    return sniff_bytes(read_head(path, _SNIFF_BYTES), source_suffix(path))


def sniff_bytes(head: bytes, suffix: str = "") -> str | None:
    """The kind of a file from its first bytes ``head`` (at least 132 for DICOM).

    A file without a recognised signature but with a DICOM or video extension ``suffix`` gets
    that kind (DICOM files may lack the 128-byte preamble; some video containers have no fixed
    magic).
    """
    if len(head) >= 132 and head[128:132] == b"DICM":  # first: a DICOM may also be a valid TIFF
        return "dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n") or head.startswith(b"\xff\xd8\xff") or head.startswith(b"BM"):
        return "image"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video"
    if head[4:8] == b"ftyp" or head[:4] == b"\x1a\x45\xdf\xa3":  # MP4/MOV, Matroska/WebM
        return "video"
    ext = suffix.lower()
    if ext in DICOM_EXTENSIONS:
        return "dicom"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    return None


def collect_inputs(paths: list[Source], errors: list[str] | None = None) -> list[Source]:
    """Expand files and folders (recursively) into the list of files to analyse.

    Sources are local paths or URIs read through pyarrow (:mod:`livus.io.sources`; a URI stays a
    string and names its input everywhere). Inside folders: hidden files/folders,
    ``NON_INPUT_EXTENSIONS`` and ``DICOMDIR`` are skipped; files with an image/DICOM/video
    extension are kept (a broken one is then reported by :func:`read_frames`), other files only
    when their first bytes show a known format (e.g. DICOM files without extension). Files named
    explicitly are always kept. Order: as given, folders expanded in natural order; duplicates
    removed. A source that does not exist or cannot be reached raises :class:`InputError`, or,
    with ``errors`` given, is appended there as one line and the others are still collected.
    """
    out: list[Source] = []
    seen: set[object] = set()
    stores: dict[str, InputError | None] = {}  # URI stores set up so far (scheme://host?query) → error

    def add(p: Source) -> None:
        key = p if is_uri(p) else Path(p).resolve()
        if key not in seen:
            seen.add(key)
            out.append(p)

    for p in paths:
        try:
            for f in _expand(p if is_uri(p) else Path(p), stores):
                add(f)
        except InputError as exc:
            if errors is None:
                raise
            errors.append(str(exc))
    return out


def _expand(p: Source, stores: dict[str, InputError | None]) -> list[Source]:
    """The files one given source stands for (see :func:`collect_inputs`). A URI named like an
    input file (image/DICOM/video extension) is not looked up in its store (a list of 300,000
    objects would be 300,000 requests from one process): only its store is set up, once per
    store in ``stores``; a missing object is reported when it is read."""
    if is_uri(p):
        if source_suffix(p) in IMAGE_EXTENSIONS | DICOM_EXTENSIONS | VIDEO_EXTENSIONS:
            store = store_key(str(p))
            if store not in stores:
                try:
                    filesystem(str(p))
                    stores[store] = None
                except InputError as exc:
                    stores[store] = exc
            if stores[store] is not None:
                raise InputError(str(p), stores[store].reason)
            return [p]
        kind, found = list_uri(str(p))
        if kind == "file":
            return found
        return sorted((f for f in found if _looks_like_input(f)), key=natural_key)
    if p.is_file():
        return [p]
    if p.is_dir():
        roots = [p / "images", p / "clips"] if is_livus_dataset(p) else [p]
        return [f for root in roots for f in _walk_inputs(root)]
    raise InputError(str(p), "no such file or folder")


def is_livus_dataset(folder: Path) -> bool:
    """True when ``folder`` holds a livus dataset's ``annotations.json``."""
    ann = folder / "annotations.json"
    if not ann.is_file():
        return False
    with open(ann, encoding="utf-8", errors="replace") as fh:
        return '"livus.dataset/' in fh.read(4096)


def _walk_inputs(root: Path) -> list[Path]:
    """Analysable files below ``root`` in natural order; hidden entries and nested livus
    datasets (label folders: masks, overlay masks, copies of the images) are skipped."""
    found: list[Path] = []
    if not root.is_dir():
        return found
    for entry in sorted(root.iterdir(), key=natural_key):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if not is_livus_dataset(entry):
                found += _walk_inputs(entry)
        elif entry.is_file() and _looks_like_input(entry):
            found.append(entry)
    return found


def _looks_like_input(f: Source) -> bool:
    """A file found inside a folder (local or remote, see :func:`collect_inputs`) worth analysing."""
    ext = source_suffix(f)
    if source_filename(f) in NON_INPUT_NAMES or ext in NON_INPUT_EXTENSIONS:
        return False
    if ext in IMAGE_EXTENSIONS | DICOM_EXTENSIONS | VIDEO_EXTENSIONS:
        return True
    try:
        return (is_uri(f) or Path(f).stat().st_size > 0) and sniff_kind(f) is not None
    except (OSError, InputError):
        return False


# --------------------------------------------------------------------------------- dispatch


def read_frames(path: Source, max_frames: int | None = None, fps: float | None = None) -> Iterator[Frame]:
    """Frames of one source: an image, a DICOM (single or multi-frame), a video, or a folder of
    frame images (natural order; ``fps`` gives them times, else ``time_s`` is ``None``); a URI
    (:mod:`livus.io.sources`) is read through pyarrow, its frames' ``source`` is the URI.

    ``max_frames`` limits how many frames are decoded. Raises :class:`InputError` for anything
    that cannot be read.
    """
    if is_uri(path):
        yield from _read_uri(str(path), max_frames)
        return
    path = Path(path)
    if path.is_dir():
        yield from _read_frame_folder(path, max_frames, fps)
        return
    if not path.is_file():
        raise InputError(str(path), "no such file")
    if path.stat().st_size == 0:
        raise InputError(str(path), "empty file (0 bytes)")
    kind = sniff_kind(path)
    if kind == "image":
        yield from _read_image(str(path), path.read_bytes(), max_frames)
    elif kind == "dicom":
        yield from _read_dicom(path, max_frames)
    elif kind == "video":
        yield from _read_video(path, max_frames)
    else:
        raise InputError(str(path), "not a supported image, DICOM or video file (unknown content)")


def _read_uri(uri: str, max_frames: int | None) -> Iterator[Frame]:
    """Frames of the object at ``uri``, read into memory (a video through a temporary file,
    removed when the frames are read); the frames' ``source`` is ``uri``."""
    import io
    import tempfile

    data = read_bytes(uri)
    if not data:
        raise InputError(uri, "empty file (0 bytes)")
    kind = sniff_bytes(data[:_SNIFF_BYTES], source_suffix(uri))
    if kind == "image":
        yield from _read_image(uri, data, max_frames)
    elif kind == "dicom":
        yield from _read_dicom(io.BytesIO(data), max_frames, name=uri)
    elif kind == "video":  # OpenCV reads videos from a path only
        with tempfile.NamedTemporaryFile(suffix=source_suffix(uri) or ".video") as tmp:
            tmp.write(data)
            tmp.flush()
            del data
            yield from _read_video(Path(tmp.name), max_frames, name=uri)
    else:
        raise InputError(uri, "not a supported image, DICOM or video file (unknown content)")


def read_frame(path: Path) -> Frame:
    """The first frame of a source (see :func:`read_frames`)."""
    for frame in read_frames(path, max_frames=1):
        return frame
    raise InputError(str(path), "no frames")


def _read_frame_folder(folder: Path, max_frames: int | None, fps: float | None) -> Iterator[Frame]:
    files = sorted(
        (f for f in folder.iterdir() if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_EXTENSIONS),
        key=natural_key,
    )
    if not files:
        raise InputError(str(folder), "folder holds no frame images")
    for i, f in enumerate(files[:max_frames] if max_frames is not None else files):
        frame = read_frame(f)
        frame.source = str(folder)
        frame.frame_index = i
        frame.time_s = None if not fps else i / fps
        frame.metadata["frame_file"] = f.name
        yield frame


# --------------------------------------------------------------------------------- images


def _check_complete(path: str, data: bytes) -> None:
    """Detect truncated PNG/JPEG/BMP files, which decoders may half-decode without failing."""
    if data.startswith(b"\xff\xd8") and b"\xff\xd9" not in data[-1024:]:
        raise InputError(str(path), "truncated JPEG (no end-of-image marker)")
    if data.startswith(b"\x89PNG") and b"IEND" not in data[-64:]:
        raise InputError(str(path), "truncated PNG (no IEND chunk)")
    if data.startswith(b"BM") and len(data) >= 6 and int.from_bytes(data[2:6], "little") > len(data):
        raise InputError(str(path), "truncated BMP (file shorter than its header says)")


def _read_image(path: str, data: bytes, max_frames: int | None) -> Iterator[Frame]:
    """Frames of the image file ``data`` (named ``path``)."""
    _check_complete(path, data)
    buf = np.frombuffer(data, np.uint8)
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        ok, pages = cv2.imdecodemulti(buf, cv2.IMREAD_UNCHANGED)
        arrays = list(pages) if ok else []
    else:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        arrays = [] if img is None else [img]
    if not arrays:
        raise InputError(str(path), "cannot decode image (corrupt or unsupported encoding)")
    for i, arr in enumerate(arrays[:max_frames] if max_frames is not None else arrays):
        try:
            grey, color = to_grey(arr, channel_order="bgr")
        except ValueError as exc:
            raise InputError(str(path), str(exc)) from None
        meta = {"format": _image_format(data), "bit_depth": int(arr.dtype.itemsize * 8), "has_color": color is not None}
        yield Frame(pixels=grey, source=str(path), frame_index=i, metadata=meta, color_mask=color)


def _image_format(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"\xff\xd8"):
        return "jpeg"
    if data.startswith(b"BM"):
        return "bmp"
    return "tiff"


# --------------------------------------------------------------------------------- DICOM

_DICOM_META_TAGS = (
    "Manufacturer",
    "ManufacturerModelName",
    "Modality",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "PatientID",
    "StudyDate",
    "AcquisitionDateTime",
    "PhotometricInterpretation",
)
_CM_UNITS = 3  # PhysicalUnitsX/YDirection code for centimetres (DICOM PS3.3 C.8.5.5.1.15)
_TISSUE_2D = 1  # RegionSpatialFormat code for a 2-D tissue image


def dicom_pixel_spacing_mm(ds: Any) -> tuple[tuple[float, float] | None, str | None]:
    """Pixel spacing ``(dx_mm, dy_mm)`` of a DICOM dataset and where it came from.

    First choice: the largest 2-D region of the Sequence of Ultrasound Regions whose physical
    units are centimetres (``PhysicalDeltaX/Y`` × 10). Else ``PixelSpacing`` (stored as
    row spacing, column spacing → returned as ``(col, row)`` = ``(dx, dy)``). Else ``(None, None)``.
    """
    best: tuple[int, tuple[float, float]] | None = None
    for region in ds.get("SequenceOfUltrasoundRegions", []) or []:
        try:
            if int(region.get("PhysicalUnitsXDirection", 0)) != _CM_UNITS or int(region.get("PhysicalUnitsYDirection", 0)) != _CM_UNITS:
                continue
            fmt = region.get("RegionSpatialFormat", _TISSUE_2D)
            if fmt is not None and int(fmt) != _TISSUE_2D:
                continue
            dx, dy = abs(float(region.PhysicalDeltaX)) * 10.0, abs(float(region.PhysicalDeltaY)) * 10.0
            area = (int(region.get("RegionLocationMaxX1", 0)) - int(region.get("RegionLocationMinX0", 0))) * (
                int(region.get("RegionLocationMaxY1", 0)) - int(region.get("RegionLocationMinY0", 0))
            )
        except (AttributeError, TypeError, ValueError):
            continue
        if dx > 0 and dy > 0 and (best is None or area > best[0]):
            best = (area, (dx, dy))
    if best is not None:
        return best[1], "ultrasound_regions"
    ps = ds.get("PixelSpacing")
    if ps is not None and len(ps) == 2:
        try:
            row, col = float(ps[0]), float(ps[1])
        except (TypeError, ValueError):
            return None, None
        if row > 0 and col > 0:
            return (col, row), "pixel_spacing"
    return None, None


def dicom_frame_times_s(ds: Any, n_frames: int) -> list[float] | None:
    """Acquisition time of each frame in seconds from the first: ``FrameTimeVector`` (ms
    increments), ``FrameTime`` (ms), ``CineRate`` or ``RecommendedDisplayFrameRate`` (frames/s).
    ``None`` when the file says nothing about timing."""
    try:
        vec = ds.get("FrameTimeVector")
        if vec is not None and len(vec) == n_frames:
            return list(np.cumsum([float(v) for v in vec]) / 1000.0)
        ft = ds.get("FrameTime")
        if ft is not None and float(ft) > 0:
            return [i * float(ft) / 1000.0 for i in range(n_frames)]
        for key in ("CineRate", "RecommendedDisplayFrameRate"):
            rate = ds.get(key)
            if rate is not None and float(rate) > 0:
                return [i / float(rate) for i in range(n_frames)]
    except (TypeError, ValueError):
        return None
    return None


def _dicom_metadata(ds: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"format": "dicom"}
    for key in _DICOM_META_TAGS:
        value = ds.get(key)
        if value is not None and str(value) != "":
            meta[key] = str(value)
    tsuid = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if tsuid is not None:
        meta["TransferSyntaxUID"] = str(tsuid)
    return meta


def _read_dicom(path: Path | IO[bytes], max_frames: int | None, name: str | None = None) -> Iterator[Frame]:
    """Frames of a DICOM file, from a path or a file object (then ``name`` names it)."""
    import pydicom
    from pydicom.pixels import apply_color_lut, apply_voi_lut, iter_pixels

    if name is None:
        name = str(path)
    try:
        ds = pydicom.dcmread(str(path) if isinstance(path, Path) else path, force=True)
    except Exception as exc:  # pydicom raises many types for malformed files
        raise InputError(name, f"cannot parse DICOM ({first_line(exc)})") from None
    has_pixels = any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))
    if not has_pixels and "SOPClassUID" not in ds:
        raise InputError(name, "not a DICOM file (no DICOM header or image attributes)")
    if not has_pixels:
        raise InputError(name, "DICOM has no pixel data (not an image object)")
    if "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
        # a file without meta header: assume the default transfer syntax so decoding can proceed
        ds.file_meta = getattr(ds, "file_meta", pydicom.dataset.FileMetaDataset())
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    try:
        n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        n_frames = 1
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    bits = int(ds.get("BitsStored", 8) or 8)
    spacing, spacing_source = dicom_pixel_spacing_mm(ds)
    times = dicom_frame_times_s(ds, n_frames)
    meta = _dicom_metadata(ds)
    meta.update(NumberOfFrames=n_frames, BitsStored=bits, pixel_spacing_source=spacing_source)
    count = n_frames if max_frames is None else min(n_frames, max_frames)
    try:
        arrays = iter_pixels(ds, indices=range(count))
        for i, arr in enumerate(arrays):
            full_scale = float(2**bits - 1) if bits > 8 else None
            if photometric == "PALETTE COLOR":
                arr = apply_color_lut(arr, ds)
                full_scale = float(2 ** int(ds.RedPaletteColorLookupTableDescriptor[2]) - 1)
            elif photometric.startswith("MONOCHROME") and bits > 8 and "WindowCenter" in ds:
                arr = apply_voi_lut(arr, ds)
            grey, color = to_grey(arr, channel_order="rgb", full_scale=full_scale)
            if photometric == "MONOCHROME1":
                grey = 255 - grey
            yield Frame(
                pixels=grey,
                source=name,
                frame_index=i,
                time_s=None if times is None else float(times[i]),
                pixel_spacing_mm=spacing,
                metadata=dict(meta, has_color=color is not None),
                color_mask=color,
            )
    except InputError:
        raise
    except Exception as exc:  # decoder/plugin errors, truncated pixel data, bad attributes
        raise InputError(name, f"cannot decode DICOM pixel data ({first_line(exc)})") from None


# --------------------------------------------------------------------------------- video


def _read_video(path: Path, max_frames: int | None, name: str | None = None) -> Iterator[Frame]:
    """Frames of a video file; ``name`` (default: ``path``) is their source."""
    if name is None:
        name = str(path)
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise InputError(name, "cannot open video (corrupt or unsupported codec)")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        fps = fps if np.isfinite(fps) and 0 < fps < 1000 else 0.0
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC) or 0)
        meta = {
            "format": "video",
            "fps": fps or None,
            "frame_count": int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
            "codec": "".join(chr((fourcc >> (8 * k)) & 0xFF) for k in range(4)).strip("\x00") or None,
        }
        i = 0
        while max_frames is None or i < max_frames:
            ok, img = cap.read()
            if not ok or img is None:
                break
            grey, color = to_grey(img, channel_order="bgr")
            yield Frame(
                pixels=grey,
                source=name,
                frame_index=i,
                time_s=i / fps if fps else None,
                metadata=dict(meta, has_color=color is not None),
                color_mask=color,
            )
            i += 1
        if i == 0 and max_frames != 0:
            raise InputError(name, "video has no readable frames")
    finally:
        cap.release()
