"""Report fonts prepared once: small CFF subsets of the bundled CJK face, cached on disk.

fpdf2 subsets the embedded font again for every document it writes; for the bundled CID-keyed
Noto Sans SC (8 500 glyphs) that is a fontTools subset plus two CFF compiles, ~0.5 s per PDF,
which made reports the bottleneck of ``livus analyze`` (issue 17). Instead, the glyphs a report
can contain are cut out of the bundled font once, into a small OpenType file:

* ``latin``: printable ASCII, Latin-1 and every other non-CJK character found in livus's own
  sources (× ± ≤ ≥ → µ • — ...): ~210 glyphs, 12 kB of CFF;
* ``cjk``: ``latin`` plus every CJK character in livus's sources (the zh wording of the
  templates, ``report.i18n``, the case rules, quality messages...), the CJK punctuation block and
  the full-width ASCII forms: ~680 glyphs, 75 kB of CFF.

The charset is recomputed from the package sources at run time (a few ms), so new wording is
covered without a manual step: the cache file's name holds a hash of the bundled font, the
charset and the fontTools version, and a changed key simply builds a new file (~0.3-0.7 s, once
per installation; a read-only cache falls back to the temporary folder, then to the full font).

A subset keeps the CIDs of the source font, so the glyph names fpdf2 reads from the prepared file
(``cid01234``) are the source font's CIDs and the file's whole CFF table can be embedded as is
(``livus.report.pdf`` does that, without per-document subsetting). Characters outside the
prepared set (a rare hanzi in a file name, a department's own case rules) are found by fpdf2
(``missing_glyphs``) and that one report is rebuilt with the full bundled font, subset by fpdf2
as before: slower, never wrong.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import threading
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from livus.report.fonts import cjk_font_path

TIERS = ("latin", "cjk")
FORMAT_VERSION = 1  # bump when the subsetting options below change
CJK_START = 0x2E80  # first CJK radical: everything from here on is "cjk" (also kana, hangul, full-width)
SOURCE_SUFFIXES = (".py", ".yaml", ".yml", ".j2")
# tables fpdf2 itself drops before embedding (not used by a PDF viewer)
DROP_TABLES = ["FFTM", "GDEF", "GPOS", "GSUB", "MATH", "hdmx", "meta", "sbix", "CBDT", "CBLC", "EBDT",
               "EBLC", "EBSC", "SVG ", "CPAL", "COLR"]

_LOCK = threading.Lock()


@dataclass(frozen=True)
class PreparedFont:
    """One prepared subset: the OpenType file fpdf2 loads, and its raw CFF table to embed."""

    tier: str
    path: Path
    cff: bytes  # the file's 'CFF ' table, byte for byte (a CID-keyed CFF font program)
    cff_deflated: bytes  # the same, zlib-compressed once (the PDF stream's FlateDecode data)
    cff_digest: bytes  # sha256 of ``cff``
    codepoints: frozenset[int]  # characters the file maps to a glyph


# counters for tests and benchmarks: how often a subset was built / read from disk, and how
# many reports needed the full font
stats = {"built": 0, "loaded": 0, "full_font_reports": 0}
_PREPARED: dict[str, PreparedFont] = {}
_BY_PATH: dict[str, PreparedFont] = {}


def cache_dir() -> Path:
    """``$LIVUS_CACHE_DIR/fonts``, else ``$XDG_CACHE_HOME/livus/fonts``, else ``~/.cache/livus/fonts``."""
    env = os.environ.get("LIVUS_CACHE_DIR")
    if env:
        return Path(env) / "fonts"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "livus" / "fonts"


@lru_cache(maxsize=1)
def source_characters() -> frozenset[str]:
    """Every non-ASCII character in livus's own text sources (code, YAML, templates)."""
    root = Path(__file__).resolve().parents[2]  # the livus package
    chars: set[str] = set()
    for path in sorted(root.rglob("*")):
        if path.suffix in SOURCE_SUFFIXES and path.is_file():
            try:
                chars |= set(path.read_text(encoding="utf-8", errors="ignore"))
            except OSError:
                continue
    return frozenset(c for c in chars if ord(c) > 0x7E and c.isprintable())


def tier_codepoints(tier: str) -> frozenset[int]:
    """The characters wanted in ``tier`` (before checking which ones the font has)."""
    if tier not in TIERS:
        raise ValueError(f"unknown font tier {tier!r} (one of {TIERS})")
    cps = set(range(0x20, 0x7F)) | set(range(0xA0, 0x100))
    src = {ord(c) for c in source_characters()}
    cps |= {c for c in src if c < CJK_START}
    if tier == "cjk":
        cps |= src | set(range(0x3000, 0x3040)) | set(range(0xFF01, 0xFF5F))
    return frozenset(cps)


def _font_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cache_key(tier: str, source: Path | None = None) -> str:
    """File-name key of a tier: hash of the source font, the charset, fontTools and this format."""
    import fontTools

    source = source or cjk_font_path()
    h = hashlib.sha256()
    h.update(f"{FORMAT_VERSION}|{tier}|{fontTools.version}|{_font_digest(source)}|".encode())
    h.update(",".join(map(str, sorted(tier_codepoints(tier)))).encode())
    return h.hexdigest()[:24]


def build_subset_bytes(source: Path, codepoints: frozenset[int]) -> bytes:
    """An OpenType file (bytes) of ``source`` cut to ``codepoints`` (those the font has)."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    options = subset.Options(notdef_outline=True, recommended_glyphs=True)
    options.drop_tables += DROP_TABLES
    options.name_IDs = ["*"]
    font = TTFont(str(source), recalcTimestamp=False)
    have = set(font.getBestCmap())
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(have & set(codepoints)))
    subsetter.subset(font)
    buf = io.BytesIO()
    font.save(buf)
    return buf.getvalue()


def _read_prepared(tier: str, path: Path) -> PreparedFont:
    """Load a prepared file; raises on a truncated or foreign file."""
    from fontTools.ttLib import TTFont

    data = path.read_bytes()
    font = TTFont(io.BytesIO(data), lazy=True)
    cff = font.reader["CFF "]  # raw table bytes, not recompiled
    top = font["CFF "].cff.topDictIndex[0]
    if getattr(top, "ROS", None) is None:
        raise ValueError(f"{path}: not a CID-keyed CFF font")
    return PreparedFont(tier=tier, path=path, cff=bytes(cff), cff_deflated=zlib.compress(bytes(cff)),
                        cff_digest=hashlib.sha256(bytes(cff)).digest(),
                        codepoints=frozenset(font.getBestCmap()))


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prepared_font(tier: str) -> PreparedFont | None:
    """The prepared subset ``tier`` (``latin`` or ``cjk``): from this process's memory, else the
    cache file, else built now and cached. ``None`` when no file can be written anywhere (the
    caller then uses the full bundled font)."""
    hit = _PREPARED.get(tier)
    if hit is not None and hit.path.is_file():  # a long-running process outlives a cleaned cache
        return hit
    with _LOCK:
        hit = _PREPARED.get(tier)
        if hit is not None and hit.path.is_file():
            return hit
        source = cjk_font_path()
        name = f"report-{tier}-{cache_key(tier, source)}.otf"
        dirs = [cache_dir(), Path(tempfile.gettempdir()) / f"livus-fonts-{os.getuid() if hasattr(os, 'getuid') else 0}"]
        prepared = None
        for d in dirs:
            path = d / name
            if path.is_file():
                try:
                    prepared = _read_prepared(tier, path)
                    stats["loaded"] += 1
                    break
                except Exception:  # noqa: BLE001 - a broken cache file is rebuilt below
                    pass
        if prepared is None:
            data = build_subset_bytes(source, tier_codepoints(tier))
            stats["built"] += 1
            for d in dirs:
                path = d / name
                try:
                    _write_atomic(path, data)
                    prepared = _read_prepared(tier, path)
                    break
                except OSError:
                    continue
        if prepared is None:
            return None
        _PREPARED[tier] = prepared
        _BY_PATH[str(prepared.path)] = prepared
        return prepared


def prepared_for_path(path: str | os.PathLike[str]) -> PreparedFont | None:
    """The prepared font loaded from ``path`` in this process, if it is one."""
    return _BY_PATH.get(str(path))


def clear_memory_cache() -> None:
    """Forget the prepared fonts of this process (tests; the files stay on disk)."""
    _PREPARED.clear()
    _BY_PATH.clear()
