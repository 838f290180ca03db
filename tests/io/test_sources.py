"""Inputs named by URI, read through pyarrow (``file://`` here; s3://, gs://, hdfs:// go the same
way), and input list files (issue 17)."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from livus.errors import InputError
from livus.io.dicom_write import write_us_dicom
from livus.io.readers import collect_inputs, read_frames, sniff_kind
from livus.io.sources import as_source, is_uri, read_source_list, source_stem

pytest.importorskip("pyarrow", reason="URIs are read through pyarrow (pip install 'livus[cluster]')")


def _grey(seed: int, h: int = 48, w: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


def test_uri_or_path():
    assert is_uri("s3://bucket/a/12.jpg") and is_uri("file:///tmp/x.png") and not is_uri("/tmp/x.png")
    assert not is_uri(Path("s3:/bucket/x"))  # a Path never is one (and could not hold '//')
    assert as_source("gs://b/x.dcm") == "gs://b/x.dcm" and as_source("rel/x.png") == Path("rel/x.png")
    assert source_stem("s3://bucket/a/12.jpg?region=eu-west-1") == "12" and source_stem(Path("a/b.png")) == "b"


def test_frames_read_through_a_file_uri_equal_the_local_ones_and_keep_the_uri(tmp_path):
    cv2.imwrite(str(tmp_path / "still.png"), _grey(1))
    write_us_dicom(tmp_path / "study.dcm", [_grey(2), _grey(3)], (0.2, 0.3), {"name": "TEST^URI", "id": "P9"},
                   frame_time_ms=50.0)
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for i in range(3):
        writer.write(cv2.merge([np.full((48, 64), 40 * i + 20, np.uint8)] * 3))
    writer.release()
    for name, n in (("still.png", 1), ("study.dcm", 2), ("clip.avi", 3)):
        local, uri = tmp_path / name, (tmp_path / name).as_uri()
        assert sniff_kind(uri) == sniff_kind(local)
        got, want = list(read_frames(uri)), list(read_frames(local))
        assert len(got) == len(want) == n
        for g, w in zip(got, want):
            assert g.source == uri and w.source == str(local)
            np.testing.assert_array_equal(g.pixels, w.pixels)
            assert (g.time_s, g.pixel_spacing_mm, g.frame_index) == (w.time_s, w.pixel_spacing_mm, w.frame_index)
        assert len(list(read_frames(uri, max_frames=1))) == 1


def test_collect_inputs_expands_a_uri_folder_and_lists_what_cannot_be_read(tmp_path):
    d = tmp_path / "archive"
    (d / "sub").mkdir(parents=True)
    (d / ".hidden").mkdir()
    for rel in ("img10.png", "img2.png", "sub/x.jpg", ".hidden/y.png", ".z.png"):
        cv2.imwrite(str(d / rel), _grey(4))
    (d / "notes.txt").write_text("not an input")
    write_us_dicom(d / "IM0001", [_grey(5)], (0.2, 0.2), {"name": "TEST^URI", "id": "P9"})  # DICOM without extension
    (d / "blob").write_bytes(b"neither image nor DICOM")
    root = d.as_uri()
    errors: list[str] = []
    got = collect_inputs([root + "/", f"{root}/img2.png", "foo://bucket/a.png", f"{root}/gone", f"{root}/gone.png",
                          "foo://bucket/b.dcm"], errors=errors)
    # once each; a URI named like an image is not looked up (one request per object from the
    # driver would not scale to an archive's list): a missing one is reported when read
    assert got == [f"{root}/IM0001", f"{root}/img2.png", f"{root}/img10.png", f"{root}/sub/x.jpg", f"{root}/gone.png"]
    unknown = "unknown URI scheme 'foo' (pyarrow reads file://, s3://, gs://, hdfs://, ...)"
    assert errors == [f"foo://bucket/a.png: {unknown}", f"{root}/gone: no such file or folder",
                      f"foo://bucket/b.dcm: {unknown}"]
    with pytest.raises(InputError, match="no such file or folder"):
        collect_inputs([f"{root}/gone"])
    with pytest.raises(InputError, match="no such file"):
        list(read_frames(f"{root}/gone.png"))
    with pytest.raises(InputError, match="unknown content"):
        list(read_frames(f"{root}/blob"))


def test_input_list_file(tmp_path):
    lst = tmp_path / "inputs.txt"
    lst.write_text("\ufeff# night archive\n  s3://bucket/a/1.jpg  \n\nrel/x.png\n# done\nfile:///data/b.dcm\n",
                   encoding="utf-8")
    want = ["s3://bucket/a/1.jpg", Path("rel/x.png"), "file:///data/b.dcm"]
    assert read_source_list(lst) == want
    assert read_source_list(lst.as_uri()) == want  # the list itself may sit in the store


def test_without_pyarrow_a_uri_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow → ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.fs", None)
    cv2.imwrite(str(tmp_path / "a.png"), _grey(6))
    errors: list[str] = []
    got = collect_inputs([tmp_path.as_uri(), (tmp_path / "a.png").as_uri(), tmp_path / "a.png"], errors=errors)
    assert got == [tmp_path / "a.png"]  # local paths need no pyarrow
    assert errors == [f"{u}: reading URIs needs pyarrow: pip install 'livus[cluster]' (or: pip install pyarrow)"
                      for u in (tmp_path.as_uri(), (tmp_path / "a.png").as_uri())]
