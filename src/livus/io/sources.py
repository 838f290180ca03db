"""Input sources named by a local path or by a URI read through ``pyarrow.fs`` (issue 17).

A *source* is a :class:`~pathlib.Path` (local file or folder) or a ``str`` URI that
``pyarrow.fs.FileSystem.from_uri`` understands (``file://``, ``s3://``, ``gs://``, ``hdfs://``,
...). A URI is kept as written: it is the input's name in every result. Remote files are read
only when they are analysed (into memory; readers that need a path get a temporary file), never
when they are listed. pyarrow is an optional dependency (``pip install 'livus[cluster]'``),
imported only when a URI is given. Every failure is an :class:`~livus.errors.InputError` naming
the URI (unknown scheme, unreachable store, missing object), never a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import urlsplit

from livus.errors import InputError

Source = Path | str  # a local path, or a URI (str)

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
PYARROW_MISSING = "reading URIs needs pyarrow: pip install 'livus[cluster]' (or: pip install pyarrow)"


def is_uri(source: object) -> bool:
    """True for a ``scheme://...`` string (a Path never is one)."""
    return isinstance(source, str) and _URI.match(source) is not None


def as_source(text: str | Path) -> Source:
    """A command-line or list-file entry as a source: a URI stays a string, anything else is a Path."""
    return text if is_uri(text) else Path(text)


def _file_path(source: Source) -> PurePosixPath | Path:
    """The file part of a source: a URI's path without scheme, host and query, or the local path."""
    return PurePosixPath(urlsplit(str(source)).path) if is_uri(source) else Path(source)


def source_filename(source: Source) -> str:
    """File name with its extension (``s3://b/x/12.jpg?region=r`` → ``12.jpg``)."""
    return _file_path(source).name


def source_stem(source: Source) -> str:
    """File name without its extension (``s3://b/x/12.jpg?region=r`` → ``12``)."""
    return _file_path(source).stem


def source_suffix(source: Source) -> str:
    """Lower-case extension with its dot (``""`` when none)."""
    return _file_path(source).suffix.lower()


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` of an exception, for one-line input errors."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def store_key(uri: str) -> str:
    """``scheme://host?query`` of a URI: what its pyarrow filesystem depends on."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}?{parts.query}"


def filesystem(uri: str) -> tuple[Any, str]:
    """``(pyarrow FileSystem, path inside it)`` for ``uri``; InputError when pyarrow is missing,
    the scheme is unknown or the store cannot be set up (e.g. HDFS without a JVM)."""
    try:
        from pyarrow import fs as pafs
    except ImportError:
        raise InputError(uri, PYARROW_MISSING) from None
    try:
        return pafs.FileSystem.from_uri(uri)
    except Exception as exc:  # noqa: BLE001 - ArrowInvalid (scheme), OSError (no JVM, no credentials ...)
        if "Unrecognized filesystem type" in str(exc):
            scheme = uri.split("://", 1)[0]
            raise InputError(uri, f"unknown URI scheme {scheme!r} (pyarrow reads file://, s3://, gs://, hdfs://, ...)"
                             ) from None
        raise InputError(uri, f"cannot reach ({first_line(exc)})") from None


def _read_error(uri: str, exc: BaseException) -> InputError:
    if isinstance(exc, FileNotFoundError):
        return InputError(uri, "no such file")
    return InputError(uri, f"cannot read ({first_line(exc)})")


def read_bytes(uri: str) -> bytes:
    """The whole object at ``uri``, in memory."""
    fs, path = filesystem(uri)
    try:
        with fs.open_input_stream(path) as fh:
            return fh.read()
    except Exception as exc:  # noqa: BLE001 - every pyarrow/network error becomes one line
        raise _read_error(uri, exc) from None


def read_head(source: Source, n: int) -> bytes:
    """The first ``n`` bytes of a local file or of the object at a URI."""
    if not is_uri(source):
        with open(source, "rb") as fh:
            return fh.read(n)
    fs, path = filesystem(str(source))
    try:
        with fs.open_input_stream(path) as fh:
            return fh.read(n)
    except Exception as exc:  # noqa: BLE001
        raise _read_error(str(source), exc) from None


@contextmanager
def open_source(source: Source) -> Iterator[IO[bytes]]:
    """A seekable binary file object for a local path or a URI (random access through pyarrow:
    e.g. pydicom reads a DICOM header without fetching the pixels)."""
    if not is_uri(source):
        with open(source, "rb") as fh:
            yield fh
        return
    fs, path = filesystem(str(source))
    try:
        fh = fs.open_input_file(path)
    except Exception as exc:  # noqa: BLE001
        raise _read_error(str(source), exc) from None
    with fh:
        yield fh


def _split_query(uri: str) -> tuple[str, str]:
    base, sep, query = uri.partition("?")
    return base, sep + query


def list_uri(uri: str) -> tuple[str, list[str]]:
    """``("file", [uri])`` for an object, ``("dir", [uri of every file below it])`` for a folder
    (prefix), recursive, hidden entries (a name starting with '.') left out, unordered.
    InputError when there is nothing at ``uri`` or the store cannot be reached."""
    fs, path = filesystem(uri)  # first: an InputError when pyarrow is missing
    from pyarrow import fs as pafs

    try:
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.File:
            return "file", [uri]
        if info.type != pafs.FileType.Directory:
            raise InputError(uri, "no such file or folder")
        found = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise InputError(uri, f"cannot list ({first_line(exc)})") from None
    base, query = _split_query(uri)
    root = path.rstrip("/")
    out = []
    for f in found:
        rel = f.path[len(root):].lstrip("/") if f.path.startswith(root) else None
        if f.type != pafs.FileType.File or not rel or any(part.startswith(".") for part in rel.split("/")):
            continue
        out.append(f"{base.rstrip('/')}/{rel}{query}")
    return "dir", out


def read_source_list(path: Source) -> list[Source]:
    """The inputs listed in a text file (local, or itself at a URI): one path or URI a line;
    blank lines and lines starting with '#' are skipped, surrounding spaces removed. Relative
    paths stay relative (to the working directory)."""
    raw = read_bytes(str(path)) if is_uri(path) else Path(path).read_bytes()
    lines = raw.decode("utf-8-sig").splitlines()
    return [as_source(x.strip()) for x in lines if x.strip() and not x.strip().startswith("#")]
