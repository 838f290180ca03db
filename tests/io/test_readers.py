"""Readers: images (grey, colour overlay, 16-bit), DICOM (regions, spacing, colour spaces,
compression, timing), videos, frame folders, input collection and bad input."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import convert_color_space
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
    generate_uid,
)

from livus.errors import InputError
from livus.io.readers import collect_inputs, read_frame, read_frames, sniff_kind


def _grey_image(h: int = 60, w: int = 80) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return ((xx * 3 + yy * 2) % 256).astype(np.uint8)


def _rgb_frames(n: int = 3, h: int = 32, w: int = 48) -> np.ndarray:
    frames = np.zeros((n, h, w, 3), np.uint8)
    for i in range(n):
        frames[i, ..., 0] = 40 * i
        frames[i, ..., 1] = np.arange(w)[None, :] * 4
        frames[i, ..., 2] = 200
    return frames


# ----------------------------------------------------------------------------------- images


def test_png_grey_exact(tmp_path):
    img = _grey_image()
    cv2.imwrite(str(tmp_path / "a.png"), img)
    (frame,) = list(read_frames(tmp_path / "a.png"))
    assert np.array_equal(frame.pixels, img)
    assert frame.color_mask is None and frame.metadata["has_color"] is False
    assert frame.pixel_spacing_mm is None and frame.size_px == (80, 60)


def test_jpeg_stored_as_rgb_is_grey_without_colour(tmp_path):
    img = _grey_image()
    cv2.imwrite(str(tmp_path / "a.jpg"), cv2.merge([img, img, img]), [cv2.IMWRITE_JPEG_QUALITY, 95])
    frame = read_frame(tmp_path / "a.jpg")
    assert frame.metadata["format"] == "jpeg" and not frame.has_color
    assert np.abs(frame.pixels.astype(int) - img).mean() < 3


def test_colour_overlay_is_masked_and_not_mixed_into_grey(tmp_path):
    img = np.full((60, 80), 120, np.uint8)
    bgr = cv2.merge([img, img, img])
    bgr[10:30, 20:40] = (0, 0, 255)  # red flow (BGR)
    bgr[35:45, 50:70] = (255, 60, 0)  # blue flow
    cv2.imwrite(str(tmp_path / "doppler.bmp"), bgr)
    frame = read_frame(tmp_path / "doppler.bmp")
    assert frame.has_color and frame.metadata["has_color"] is True
    expected = np.zeros((60, 80), bool)
    expected[10:30, 20:40] = True
    expected[35:45, 50:70] = True
    assert np.array_equal(frame.color_mask, expected)
    assert (frame.pixels[~expected] == 120).all()
    assert (frame.pixels[10:30, 20:40] == 0).all()  # min channel of pure red
    assert (frame.pixels[35:45, 50:70] == 0).all()


def test_16bit_png_and_tiff_scaled_to_uint8(tmp_path):
    img16 = (np.arange(40 * 50).reshape(40, 50) * 2).astype(np.uint16)  # max 3998
    cv2.imwrite(str(tmp_path / "a16.png"), img16)
    cv2.imwrite(str(tmp_path / "a16.tif"), img16)
    for name in ("a16.png", "a16.tif"):
        frame = read_frame(tmp_path / name)
        assert frame.pixels.dtype == np.uint8 and frame.metadata["bit_depth"] == 16
        assert frame.pixels.max() == 255 and frame.pixels[0, 0] == 0
        assert frame.pixels[20, 25] == round(int(img16[20, 25]) * 255 / 3998)


def test_multipage_tiff_gives_frames(tmp_path):
    pages = [_grey_image(), 255 - _grey_image()]
    assert cv2.imwritemulti(str(tmp_path / "multi.tiff"), pages)
    frames = list(read_frames(tmp_path / "multi.tiff"))
    assert [f.frame_index for f in frames] == [0, 1]
    assert np.array_equal(frames[1].pixels, pages[1])


# ----------------------------------------------------------------------------------- DICOM


def _dicom(arr: np.ndarray, photometric: str, bits: int = 8, multi: bool = False) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    sop_class = UltrasoundMultiFrameImageStorage if multi else UltrasoundImageStorage
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPClassUID = sop_class
    ds.Modality = "US"
    ds.Manufacturer = "Acme"
    ds.ManufacturerModelName = "Sono 1"
    ds.PatientID = "P001"
    ds.StudyInstanceUID = generate_uid()
    ds.set_pixel_data(arr, photometric, bits)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def _region(x0, y0, x1, y1, dx, dy, units=3, fmt=1) -> Dataset:
    r = Dataset()
    r.RegionSpatialFormat = fmt
    r.RegionDataType = 1
    r.RegionLocationMinX0, r.RegionLocationMinY0, r.RegionLocationMaxX1, r.RegionLocationMaxY1 = x0, y0, x1, y1
    r.PhysicalUnitsXDirection = units
    r.PhysicalUnitsYDirection = units
    r.PhysicalDeltaX = dx
    r.PhysicalDeltaY = dy
    return r


def _save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def test_dicom_mono2_with_ultrasound_regions_in_cm(tmp_path):
    img = _grey_image()
    ds = _dicom(img, "MONOCHROME2")
    # a small spectral-Doppler-like region (units 4 = seconds) and a small 2-D region with other
    # spacing: the largest 2-D region in cm wins
    ds.SequenceOfUltrasoundRegions = [
        _region(0, 0, 79, 10, 0.01, 0.01, units=4),
        _region(0, 0, 20, 20, 0.05, 0.05),
        _region(0, 10, 79, 59, 0.03, 0.025),
    ]
    path = _save(ds, tmp_path / "us.dcm")
    (frame,) = list(read_frames(path))
    assert np.array_equal(frame.pixels, img)
    assert frame.pixel_spacing_mm == pytest.approx((0.3, 0.25))
    md = frame.metadata
    assert md["pixel_spacing_source"] == "ultrasound_regions"
    assert md["Manufacturer"] == "Acme" and md["ManufacturerModelName"] == "Sono 1"
    assert md["PatientID"] == "P001" and md["SOPInstanceUID"] == str(ds.SOPInstanceUID)
    assert md["StudyInstanceUID"] == str(ds.StudyInstanceUID)
    assert frame.time_s is None


def test_dicom_pixel_spacing_only_is_row_col(tmp_path):
    ds = _dicom(_grey_image(), "MONOCHROME2")
    ds.PixelSpacing = [0.5, 0.4]  # row spacing (dy), column spacing (dx)
    frame = read_frame(_save(ds, tmp_path / "ps.dcm"))
    assert frame.pixel_spacing_mm == pytest.approx((0.4, 0.5))
    assert frame.metadata["pixel_spacing_source"] == "pixel_spacing"


def test_dicom_monochrome1_is_inverted_and_12bit_scaled(tmp_path):
    img12 = (np.arange(30 * 40).reshape(30, 40) * 3).astype(np.uint16)  # < 4096
    ds = _dicom(img12, "MONOCHROME1", bits=12)
    frame = read_frame(_save(ds, tmp_path / "m1.dcm"))
    expected = 255 - np.rint(img12 * 255.0 / 4095).astype(np.uint8)
    assert np.abs(frame.pixels.astype(int) - expected).max() <= 1


def test_dicom_multiframe_rgb_with_frame_time(tmp_path):
    frames = _rgb_frames(4)
    ds = _dicom(frames, "RGB", multi=True)
    ds.FrameTime = 50.0  # ms
    path = _save(ds, tmp_path / "cine.dcm")
    out = list(read_frames(path))
    assert [f.frame_index for f in out] == [0, 1, 2, 3]
    assert [f.time_s for f in out] == pytest.approx([0.0, 0.05, 0.10, 0.15])
    assert all(f.has_color for f in out)  # blue-ish frames carry real colour
    # max_frames stops decoding early
    assert len(list(read_frames(path, max_frames=2))) == 2
    # a grey pixel column (R=G=B) stays exact
    grey_rgb = np.full((1, 2, 8, 3), 100, np.uint8)
    ds2 = _dicom(grey_rgb, "RGB", multi=True)
    ds2.CineRate = 25
    f2 = list(read_frames(_save(ds2, tmp_path / "grey_cine.dcm")))
    assert (f2[0].pixels == 100).all() and f2[0].color_mask is None and f2[0].time_s == 0.0


def test_dicom_ybr_full_422_uncompressed(tmp_path):
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[..., 0] = 90
    rgb[..., 1] = 90
    rgb[..., 2] = 90
    rgb[4:12, 8:16] = (200, 30, 30)  # red block, even-aligned so 4:2:2 keeps it exact
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL").astype(np.uint8)
    # 4:2:2 layout: Y0 Y1 Cb Cr for each horizontal pixel pair (chroma of the pair averaged)
    y = ybr[..., 0].reshape(16, 12, 2)
    cb = ybr[..., 1].reshape(16, 12, 2).mean(2).round().astype(np.uint8)
    cr = ybr[..., 2].reshape(16, 12, 2).mean(2).round().astype(np.uint8)
    packed = np.concatenate([y, cb[..., None], cr[..., None]], axis=2).tobytes()
    ds = _dicom(np.zeros((16, 24, 3), np.uint8), "RGB")
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PixelData = packed
    frame = read_frame(_save(ds, tmp_path / "ybr.dcm"))
    assert frame.metadata["PhotometricInterpretation"] == "YBR_FULL_422"
    assert frame.has_color and frame.color_mask[4:12, 8:16].all() and frame.color_mask.sum() == 64
    assert np.abs(frame.pixels[0, 0].astype(int) - 90) <= 2


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless])
def test_dicom_compressed_lossless(tmp_path, syntax):
    img = _grey_image()
    ds = _dicom(img, "MONOCHROME2")
    ds.compress(syntax)
    frame = read_frame(_save(ds, tmp_path / "c.dcm"))
    assert frame.metadata["TransferSyntaxUID"] == str(syntax)
    assert np.array_equal(frame.pixels, img)


def test_dicom_jpeg_baseline_decoded_by_plugin(tmp_path):
    img = _grey_image()
    ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    ds = _dicom(img, "MONOCHROME2")
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PixelData = encapsulate([jpg.tobytes()])
    ds["PixelData"].VR = "OB"
    frame = read_frame(_save(ds, tmp_path / "jpeg.dcm"))
    assert np.abs(frame.pixels.astype(int) - img).mean() < 3


def test_dicom_without_pixel_data_and_truncated(tmp_path):
    ds = _dicom(_grey_image(), "MONOCHROME2")
    del ds.PixelData
    with pytest.raises(InputError, match="no pixel data"):
        list(read_frames(_save(ds, tmp_path / "sr.dcm")))
    full = _save(_dicom(_grey_image(), "MONOCHROME2"), tmp_path / "full.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(full[:-1500])
    with pytest.raises(InputError) as info:
        list(read_frames(tmp_path / "cut.dcm"))
    assert "\n" not in str(info.value) and "cut.dcm" in str(info.value)


# ----------------------------------------------------------------------------------- video


def _write_avi(path: Path, n: int, fps: float = 10.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    assert writer.isOpened()
    for i in range(n):
        img = np.full((48, 64), 20 + 30 * i, np.uint8)
        writer.write(cv2.merge([img, img, img]))
    writer.release()


def test_avi_frames_and_times(tmp_path):
    _write_avi(tmp_path / "clip.avi", 5)
    frames = list(read_frames(tmp_path / "clip.avi"))
    assert len(frames) == 5
    assert [f.time_s for f in frames] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert frames[0].metadata["fps"] == pytest.approx(10.0)
    assert [int(np.median(f.pixels)) for f in frames] == pytest.approx([20, 50, 80, 110, 140], abs=3)
    assert not any(f.has_color for f in frames)
    assert len(list(read_frames(tmp_path / "clip.avi", max_frames=3))) == 3


def test_mp4_frames_and_times(tmp_path):
    writer = cv2.VideoWriter(str(tmp_path / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (64, 48))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write MP4")
    for i in range(3):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    frames = list(read_frames(tmp_path / "clip.mp4"))
    assert [f.time_s for f in frames] == pytest.approx([0.0, 0.04, 0.08])
    assert sniff_kind(tmp_path / "clip.mp4") == "video"


def test_empty_video_is_input_error(tmp_path):
    _write_avi(tmp_path / "empty.avi", 0)
    with pytest.raises(InputError, match="empty.avi"):
        list(read_frames(tmp_path / "empty.avi"))


def test_frame_folder_in_natural_order(tmp_path):
    clip = tmp_path / "clip"
    clip.mkdir()
    for i in (1, 2, 10):
        cv2.imwrite(str(clip / f"frame{i}.png"), np.full((8, 8), i, np.uint8))
    (clip / "labels.json").write_text("{}")
    frames = list(read_frames(clip, fps=4.0))
    assert [int(f.pixels[0, 0]) for f in frames] == [1, 2, 10]
    assert [f.time_s for f in frames] == [0.0, 0.25, 0.5]
    assert [f.metadata["frame_file"] for f in frames] == ["frame1.png", "frame2.png", "frame10.png"]


# ----------------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_one_line_input_errors(tmp_path):
    img = _grey_image()
    ok, jpg = cv2.imencode(".jpg", img)
    (tmp_path / "cut.jpg").write_bytes(jpg.tobytes()[: len(jpg) // 2])
    ok, png = cv2.imencode(".png", img)
    (tmp_path / "cut.png").write_bytes(png.tobytes()[: len(png) // 2])
    (tmp_path / "notes.png").write_text("this is not an image\n")
    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / "noise.avi").write_bytes(b"RIFF\x10\x00\x00\x00AVI " + bytes(64))
    (tmp_path / "garbage.dcm").write_bytes(b"hello" * 50)
    cases = {"garbage.dcm": "not a DICOM file", "cut.jpg": "truncated", "cut.png": "truncated", "notes.png": "not a supported",
             "zero.jpg": "empty file", "noise.avi": "video"}
    for name, reason in cases.items():
        with pytest.raises(InputError) as info:
            list(read_frames(tmp_path / name))
        assert reason in info.value.reason and name in str(info.value)
        assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="no such file"):
        list(read_frames(tmp_path / "missing.png"))


# ----------------------------------------------------------------------------------- collect


def test_collect_inputs(tmp_path):
    root = tmp_path / "in"
    (root / "sub" / ".hidden").mkdir(parents=True)
    cv2.imwrite(str(root / "img10.png"), _grey_image())
    cv2.imwrite(str(root / "img2.png"), _grey_image())
    _save(_dicom(_grey_image(), "MONOCHROME2"), root / "sub" / "IM0001")  # no extension
    _write_avi(root / "sub" / "clip.avi", 2)
    cv2.imwrite(str(root / "sub" / ".hidden" / "x.png"), _grey_image())
    cv2.imwrite(str(root / ".dot.png"), _grey_image())
    for name in ("labels.json", "table.csv", "readme.txt"):
        (root / name).write_text("x")
    (root / "sub" / "blob").write_bytes(b"\x00" * 300)
    found = collect_inputs([root, root / "img2.png"])
    assert [p.relative_to(root).as_posix() for p in found] == ["img2.png", "img10.png", "sub/clip.avi", "sub/IM0001"]
    assert sniff_kind(root / "sub" / "IM0001") == "dicom"
    assert collect_inputs([root / "readme.txt"]) == [root / "readme.txt"]  # named explicitly
    with pytest.raises(InputError, match="no such file"):
        collect_inputs([tmp_path / "nope"])


@pytest.mark.aul
def test_read_aul_images(aul_dir):
    paths = sorted((aul_dir / "Benign" / "image").glob("*.jpg"))[:3]
    for p in paths:
        frame = read_frame(p)
        raw = cv2.imread(str(p))
        assert frame.pixels.shape == raw.shape[:2] and frame.metadata["format"] == "jpeg"
        # the content is grey: the grey image matches the channel mean outside coloured marks
        keep = ~frame.color_mask if frame.color_mask is not None else np.ones(raw.shape[:2], bool)
        assert np.abs(frame.pixels[keep].astype(float) - raw.mean(2)[keep]).mean() < 2


def test_dicom_colour_jpeg_baseline_ybr_full_422(tmp_path):
    bgr = np.full((32, 48, 3), 100, np.uint8)
    bgr[8:24, 16:32] = (0, 0, 220)  # red block
    ok, jpg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    ds = _dicom(np.zeros((32, 48, 3), np.uint8), "RGB")
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PixelData = encapsulate([jpg.tobytes()])
    ds["PixelData"].VR = "OB"
    frame = read_frame(_save(ds, tmp_path / "colour_jpeg.dcm"))
    assert frame.has_color
    assert frame.color_mask[10:22, 18:30].all() and not frame.color_mask[:4].any()
    assert np.abs(frame.pixels[:4].astype(int) - 100).max() <= 3


def test_dicom_frame_time_vector():
    from livus.io.readers import dicom_frame_times_s

    ds = Dataset()
    ds.FrameTimeVector = [0, 40, 40, 60]
    assert dicom_frame_times_s(ds, 4) == pytest.approx([0.0, 0.04, 0.08, 0.14])
    ds2 = Dataset()
    ds2.RecommendedDisplayFrameRate = 20
    assert dicom_frame_times_s(ds2, 3) == pytest.approx([0.0, 0.05, 0.10])
    assert dicom_frame_times_s(Dataset(), 3) is None
