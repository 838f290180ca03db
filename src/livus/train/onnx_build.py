"""Building the ONNX model files from ``models/*.pt``: the calibration data for static int8
quantisation (preprocessed images and lesion crops from the training side of a dataset split)
and the export of a model folder (``livus export-onnx``).

Lives with training because it reads a labelled dataset; the runtime side (export, quantisation,
ONNX Runtime runners) is ``livus.infer.onnx``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from livus.config import ClassifierConfig
from livus.infer.onnx import (export_classifier_onnx, export_detector_onnx, onnx_model_path, quantize_classifier_int8,
                              quantize_detector_int8)


def dataset_split(records_classes: list[str], fold: int = 0, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, val_idx)`` of fold ``fold`` of the stratified ``k``-fold image split that
    detector training uses (``livus.train.splits.stratified_kfold``, default k=3, seed 0):
    calibration draws from the training side, accuracy checks use the validation side."""
    from livus.train.splits import stratified_kfold

    return stratified_kfold(records_classes, k, seed)[fold]


def spread_indices(idx: np.ndarray, n: int) -> np.ndarray:
    """At most ``n`` indices spread evenly over ``idx`` (deterministic)."""
    if len(idx) <= n:
        return idx
    return idx[np.linspace(0, len(idx) - 1, n).round().astype(int)]


def calibration_images(data_dir: Path, input_size_px: int, n: int = 64, fold: int = 0) -> list[np.ndarray]:
    """``n`` preprocessed model inputs ``(S, S)`` from the TRAINING side of ``dataset_split``
    of the livus dataset ``data_dir``, made with ``preprocess_frame`` exactly as the pipeline
    does (default preprocessing, ``input_size_px``)."""
    from livus.config import PreprocessConfig
    from livus.io.dataset import load_dataset
    from livus.preprocess.pipeline import preprocess_frame
    from livus.train.datasets import frame_for_record

    ds = load_dataset(data_dir)
    train_idx, _ = dataset_split([r.image_class or "unknown" for r in ds.images], fold)
    pcfg = PreprocessConfig(input_size_px=int(input_size_px))
    # stills are preprocessed without a fan cache in the pipeline (each image its own fan)
    return [preprocess_frame(frame_for_record(ds, ds.images[i]), pcfg, None).image.astype(np.float32)
            for i in spread_indices(train_idx, n)]


def calibration_crops(data_dir: Path, cfg: ClassifierConfig, n: int = 128, fold: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Up to ``n`` classifier crops ``(2, C, C)`` of labelled lesions (ground-truth outlines)
    from the TRAINING side of ``dataset_split``, cut as at inference, with their size features."""
    from livus.io.dataset import Dataset, load_dataset
    from livus.train.classifier import build_samples

    ds = load_dataset(data_dir)
    train_idx, _ = dataset_split([r.image_class or "unknown" for r in ds.images], fold)
    with_lesions = np.array([i for i in train_idx if ds.images[i].lesions])
    sub = Dataset(ds.root, [ds.images[i] for i in spread_indices(with_lesions, n)], ds.info)
    samples = build_samples(sub, cfg)
    keep = spread_indices(np.arange(len(samples)), n)
    return list(samples.eval_crops[keep]), samples.size[keep]


def build_onnx_models(model_dir: Path, data_dir: Path, n_calibration: int = 64, threads: int = 1) -> dict[str, Path]:
    """Export ``model_dir/{detector,classifier}.pt`` (whichever exist) to fp32 ONNX and static
    int8 ONNX beside them, calibrated on the livus dataset ``data_dir`` (AUL in project format).
    Returns the written paths by ``"<name>.<precision>"``."""
    from livus.models.classifier import load_classifier
    from livus.models.detector import load_detector

    torch.set_num_threads(max(1, threads))
    model_dir = Path(model_dir)
    written: dict[str, Path] = {}
    det_pt = model_dir / "detector.pt"
    if det_pt.is_file():
        det = load_detector(det_pt)
        fp32 = export_detector_onnx(det, onnx_model_path(model_dir, "detector"), source_checkpoint=det_pt)
        calib = calibration_images(data_dir, det.cfg.input_size_px, n_calibration)
        written["detector.fp32"] = fp32
        written["detector.int8"] = quantize_detector_int8(fp32, onnx_model_path(model_dir, "detector", "int8"), calib)
    cls_pt = model_dir / "classifier.pt"
    if cls_pt.is_file():
        cls = load_classifier(cls_pt)
        fp32 = export_classifier_onnx(cls, onnx_model_path(model_dir, "classifier"), source_checkpoint=cls_pt)
        crops, sizes = calibration_crops(data_dir, cls.cfg, 2 * n_calibration)
        written["classifier.fp32"] = fp32
        written["classifier.int8"] = quantize_classifier_int8(fp32, onnx_model_path(model_dir, "classifier", "int8"), crops, sizes)
    return written


