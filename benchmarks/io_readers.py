"""Reader and importer speed: frames/s for PNG, JPEG, DICOM (raw, RLE) and MJPG video of a
1024x768 frame, and the wall time of importing the AUL folder (when present).

Usage: .venv/bin/python benchmarks/io_readers.py [--aul ../shared/data/aul] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, UltrasoundMultiFrameImageStorage

from livus.io.import_aul import import_aul
from livus.io.readers import read_frames


def _frames(n: int, h: int = 768, w: int = 1024) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 255, (h, w)).astype(np.uint8), (0, 0), 2)
    return np.stack([np.roll(base, 3 * i, axis=1) for i in range(n)])


def _dicom(frames: np.ndarray, path: Path, syntax: str | None) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    ds.set_pixel_data(frames, "MONOCHROME2", 8)
    ds.FrameTime = 40.0
    if syntax:
        ds.compress(syntax)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    return path


def _rate(path: Path) -> tuple[int, float]:
    t0 = time.perf_counter()
    n = sum(1 for _ in read_frames(path))
    return n, n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--aul", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "aul"))
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    frames = _frames(20)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        cv2.imwrite(str(d / "a.png"), frames[0])
        cv2.imwrite(str(d / "a.jpg"), cv2.merge([frames[0]] * 3))
        writer = cv2.VideoWriter(str(d / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (1024, 768))
        for f in frames:
            writer.write(cv2.merge([f] * 3))
        writer.release()
        cases = {
            "png (1 frame)": d / "a.png",
            "jpeg rgb (1 frame)": d / "a.jpg",
            "dicom raw (20 frames)": _dicom(frames, d / "raw.dcm", None),
            "dicom rle (20 frames)": _dicom(frames, d / "rle.dcm", RLELossless),
            "mjpg avi (20 frames)": d / "clip.avi",
        }
        for name, path in cases.items():
            reps = 10 if "1 frame" in name else 1
            rates = [_rate(path)[1] for _ in range(reps)]
            print(f"{name:24s} {np.median(rates):8.1f} frames/s (1024x768)")
        aul = Path(args.aul)
        if (aul / "Benign" / "image").is_dir():
            t0 = time.perf_counter()
            ds = import_aul(aul, d / "aul", workers=args.workers)
            print(f"AUL import: {len(ds)} images in {time.perf_counter() - t0:.1f} s with {args.workers} threads")
        else:
            print(f"AUL import: skipped ({aul} not found)")


if __name__ == "__main__":
    main()
