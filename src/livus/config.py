"""Typed configuration: dataclasses with defaults, loaded from and saved to YAML.

Each part of livus has its own section dataclass; ``LivusConfig`` groups them. A YAML file only
needs the keys it changes; unknown keys are an error (a typo must not pass silently).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


@dataclass
class PreprocessConfig:
    """Preprocessing of one frame (see ``livus.preprocess``)."""

    input_size_px: int = 256  # model input side (letterboxed square)
    remove_overlays: bool = True
    normalise: str = "percentile"  # percentile | clahe | none
    percentile_low: float = 1.0
    percentile_high: float = 99.0
    gamma: float = 1.0
    speckle_filter: str = "none"  # none | median | bilateral | nlmeans | srad | guided
    crop_to_fan: bool = True
    inpaint_radius_px: float = 3.0  # cv2.inpaint radius (model pixels) for overlays inside the fan
    ruler_spacing: bool = True  # estimate mm/px from depth-ruler ticks when DICOM gives none
    ruler_tick_mm: float = 10.0  # depth between two ruler ticks


@dataclass
class DetectorConfig:
    """Detector/segmenter network and decoding (see ``livus.models.detector``).

    Sizes are model-input pixels; ``widths`` are backbone channels at strides 4/8/16/32.
    """

    input_size_px: int = 256
    # encoder: an ImageNet-pretrained EfficientNet-Lite (livus.models.encoders; efficientnet_lite0 |
    # efficientnet_lite1 | efficientnet_lite2) or "resnet_lite", the from-scratch residual baseline
    # (``widths``/``stem_channels``/``factorised`` apply only to it)
    encoder: str = "efficientnet_lite0"
    frozen_stages: int = 2  # pretrained encoder: stages (stride 2, 4, ...) kept fixed in training
    image_head: bool = True  # image-level normal/benign/malignant logits from the deepest feature
    widths: tuple[int, ...] = (32, 64, 128, 256)
    stem_channels: int = 16
    fpn_channels: int = 64
    head_channels: int = 32
    use_cbam: bool = True
    factorised: bool = True  # depthwise-separable 3×3 in the backbone (half the training time, see benchmarks)
    deep_supervision: bool = True
    score_threshold: float = 0.3  # final detection score to report (on the calibrated scale when calibrated)
    # calibrated detection score: logistic regression (intercept, then one weight per
    # livus.models.decode.EVIDENCE_NAMES) fitted on held-out folds' candidates
    # (livus.train.calibration); () = the raw lesion-mask peak probability
    score_calibration: tuple[float, ...] = ()
    candidate_threshold: float = 0.02  # heatmap peak score to enter soft-NMS
    max_candidates: int = 50
    max_detections: int = 10
    soft_nms_sigma: float = 0.5
    mask_threshold: float = 0.5  # lesion/liver mask probability
    polygon_margin: float = 0.25  # region around a detection's box searched for its mask (fraction of box side)
    axes_from_mask: bool = True  # when the lesion mask gives an outline, measure long/short axis and angle on it
    # "mask": lesions are the connected components of the lesion mask (prob >= component_threshold),
    # scored by their peak probability; "heatmap": centre-heatmap peaks (CenterNet decoding).
    # Measured on AUL fold 0 (12-epoch model): mask 0.376 vs heatmap 0.282 sensitivity at
    # 0.25 FP/image, mass Dice 0.383 vs 0.003 (see models/MODEL_CARD.md).
    decode_mode: str = "mask"
    component_threshold: float = 0.3
    min_component_px: int = 4  # smaller components (model pixels) are noise
    # eval mode: average the outputs of the image and of its left-right mirror (livus.models.flip_tta);
    # the score calibration must be fitted with the same setting (twice the detector's CPU time)
    tta_flip: bool = False


@dataclass
class TrainConfig:
    """Training loop settings (see ``livus.train``)."""

    epochs: int = 10  # the shipped pretrained detector's recipe (see models/MODEL_CARD.md for its wall time)
    batch_size: int = 16
    lr: float = 2e-3  # peak of the one-cycle schedule (heads, FPN)
    encoder_lr_scale: float = 0.3  # the pretrained encoder learns at lr × this
    weight_decay: float = 1e-4
    folds: int = 5
    seed: int = 0
    pretrained: bool = True  # start a pretrained encoder (DetectorConfig.encoder) from its ImageNet weights
    num_threads: int = 2  # torch threads (one job at a time on the 2-core machine)
    use_simulated: bool = False  # add the simulated dataset at simulated_dir to every training split
    simulated_dir: str = ""  # livus dataset folder written by the simulator
    simulated_liver_loss: bool = True  # False: simulated images do not train the liver outline (lesions still do)
    hard_example_mining: bool = True
    hard_example_fraction: float = 0.3  # share of each epoch drawn by per-image loss
    copy_paste_prob: float = 0.3
    # real (not simulated) training images that get a drawn diffuse liver disease (livus.simulate.diffuse_on_real),
    # lesions kept: hard negatives on real speckle; kinds and grades drawn from diffuse_on_real_mix (simulate --diffuse syntax)
    diffuse_on_real_prob: float = 0.0
    diffuse_on_real_mix: str = "steatosis=0.2,fibrosis=0.3,fibrosis:4=0.15,schistosomal=0.2,mixed=0.15"
    augment: bool = True
    scanner_augment: bool = True  # resolution, TGC bands, dynamic range, speckle grain, blur, markers (livus.augment_scanner)
    augment_backend: str = "builtin"  # builtin (cv2, used for the shipped model) | livus (livus.augment, albumentations)
    heatmap_weight: float = 1.0
    axes_weight: float = 0.5
    orient_weight: float = 0.2
    offset_weight: float = 0.5
    lesion_mask_weight: float = 1.0
    liver_mask_weight: float = 0.5
    aux_weight: float = 0.4
    image_weight: float = 0.3  # image-level normal/benign/malignant cross-entropy (DetectorConfig.image_head)
    device: str = "cpu"  # cpu | cuda | mps
    max_train_images: int = 0  # 0 = all (a cap for quick runs)
    eval_every: int = 5  # epochs between validation passes (the last epoch is always validated)
    folds_to_run: tuple[int, ...] = ()  # subset of the k folds to train (empty = all), e.g. for ablations
    # start from trained weights instead of ImageNet (a second, warm-restarted schedule): a
    # detector.pt, or a detector run folder whose fold{f}/detector.pt starts fold f (same folds and
    # seed, so no fold starts from weights that saw its validation images) and all/detector.pt the
    # final model
    init_from: str = ""


@dataclass
class ClassifierConfig:
    """Lesion classifier (see ``livus.models.classifier``)."""

    crop_size_px: int = 96
    # encoder: ImageNet-pretrained EfficientNet-Lite (livus.models.encoders) or "resnet_lite", the
    # from-scratch residual baseline (``widths``/``blocks_per_stage``/``use_cbam`` apply only to it)
    encoder: str = "efficientnet_lite0"
    frozen_stages: int = 2
    margin: float = 0.5  # crop side = lesion box side * (1 + 2 * margin)
    min_side_px: float = 32.0  # smallest crop side (original pixels)
    widths: tuple[int, ...] = (32, 64, 128)
    blocks_per_stage: int = 1
    use_cbam: bool = True  # CBAM on the two deepest stages
    dropout: float = 0.2
    use_size: bool = True  # heads also see the lesion's log box side (original pixels)
    tta_flip: bool = True  # average the logits of the crop and its mirror image


REPORT_MODES = ("all", "findings", "none")  # AnalyzeConfig.reports


def check_report_mode(mode: str) -> str:
    """``mode`` when it is one of ``REPORT_MODES``, else a ``ValueError`` naming them."""
    if mode not in REPORT_MODES:
        raise ValueError(f"analyze.reports must be one of {', '.join(REPORT_MODES)}, got {mode!r}")
    return mode


@dataclass
class AnalyzeConfig:
    """Batch analysis (``livus analyze``)."""

    keyframe_interval: int = 5
    keyframe_mode: str = "quality"  # quality | interval
    write_overlays: bool = True
    gradcam: bool = True
    workers: int = 1
    threads: int = 2  # torch/ONNX threads per worker
    # fp32 | int8: which ONNX model to prefer (PyTorch is the fallback). fp32 by default: static
    # int8 cost the shipped detector 1.8 points of sensitivity at 0.25 FP/image in 5-fold CV
    # (limit: 1; benchmarks/results/int8_cv.json).
    precision: str = "fp32"
    language: str = "zh"  # zh | en
    # image-derived liver background (steatosis grade, cirrhosis signs) per analysed frame; about
    # 40 ms of CPU per frame (livus.infer.liver_background): turn off where frame rate matters more
    liver_background: bool = True
    case_rules_path: str | None = None  # YAML rules table; None = the one shipped with livus
    lirads_table_path: str | None = None  # YAML LI-RADS table (management, thresholds); None = livus/infer/lirads.yaml
    # CEUS mode for clips: clip time 0 is this many seconds after the contrast injection
    # (frame time after injection = offset + Frame.time_s). None = B-mode (no CEUS features),
    # unless a DICOM clip's own header gives the time (ContrastBolusStartTime, see livus.infer.ceus).
    ceus_injection_offset_s: float | None = None
    # HTML/PDF reports: all | findings (only cases that need a reader's attention, see
    # livus.infer.report_selection) | none; case.json, summary.csv, results.jsonl and overlays are
    # always written; the web service always writes every report
    reports: str = "all"
    # the detector's report threshold (its calibrated score, between 0 and 1); None = the one
    # shipped with the model (0.25 false positives per image in AUL cross-validation). Higher:
    # fewer lesion-free livers get a lesion, and fewer true lesions are found; the measured
    # trade-off is in docs/liver_background.md (benchmarks/diffuse_operating_point.py). A set
    # value is written into every result's model entry, shown in the reports and carried by the
    # DICOM SR/SEG as an algorithm parameter.
    report_threshold: float | None = None

    def __post_init__(self) -> None:
        check_report_mode(self.reports)
        if self.report_threshold is not None and not 0.0 < float(self.report_threshold) < 1.0:
            raise ValueError(f"analyze.report_threshold must lie between 0 and 1, got {self.report_threshold!r}")


@dataclass
class LivusConfig:
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    analyze: AnalyzeConfig = field(default_factory=AnalyzeConfig)


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, where)
    if origin is tuple:
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        return tuple(_convert(inner, v, where) for v in value)
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        return [_convert(inner, v, where) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"config {where}: expected a mapping, got {value!r}")
        key_tp, value_tp = typing.get_args(tp) or (Any, Any)
        return {_convert(key_tp, k, where): _convert(value_tp, v, f"{where}.{k}") for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and not isinstance(value, tp):
        raise TypeError(f"config {where}: expected {tp.__name__}, got {value!r}")
    return value


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass ``cls`` from a (partial) dict; missing keys keep their defaults."""
    data = data or {}
    if not isinstance(data, dict):
        raise TypeError(f"config {where or cls.__name__}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise KeyError(f"config {where or cls.__name__}: unknown keys {sorted(unknown)}")
    kwargs = {k: _convert(hints[k], v, f"{where}.{k}".lstrip(".")) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(obj: Any) -> Any:
    """Dataclass → plain dict/list structure (tuples become lists) for YAML/JSON."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def load_config(path: str | Path | None, cls: type[T] = LivusConfig) -> T:  # type: ignore[assignment]
    """Load ``cls`` from a YAML file (``None`` → defaults)."""
    if path is None:
        return cls()
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return from_dict(cls, data)


def save_config(obj: Any, path: str | Path) -> None:
    """Write a config dataclass as YAML."""
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(to_dict(obj), fh, sort_keys=False, allow_unicode=True)


@dataclass
class ServiceConfig:
    """The department/bedside service (``livus serve``, see ``livus.service``).

    ``data_dir`` holds the database (SQLite default), uploaded files, results and the model
    registry; it is never inside the package. ``database_url`` overrides the SQLite file
    (e.g. ``postgresql+psycopg://user@host/livus``).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: str = "livus-data"  # $LIVUS_DATA_DIR wins over this default
    database_url: str | None = None  # None = sqlite:///<data_dir>/livus.db
    analysis_config: str | None = None  # YAML LivusConfig for the analysis
    secure_cookies: bool = False  # set the cookie's Secure flag (behind HTTPS)
    session_hours: float = 8.0
    max_upload_mb: float = 200.0  # whole request body
    login_rate_limit: int = 10  # login attempts per client address per window
    login_rate_window_s: float = 60.0
    lockout_failures: int = 5  # consecutive wrong passwords that lock an account
    lockout_minutes: float = 15.0
    language: str = "zh"  # default page/report language for new users: zh | en
    live_max_side_px: int = 2048  # larger live frames are refused
    max_frame_pixels: int = 16_777_216  # uploads: a frame over this many pixels (header's width x height) is refused (413); 0 = no limit
    max_frames: int = 3000  # uploads: a file of more frames (DICOM NumberOfFrames, video) is refused (413); 0 = no limit
    analysis_workers: int = 0  # studies analysed at once, each in its own process; 0 = one per CPU core
    analysis_in_process: bool = False  # analyse in the server's own threads, no worker processes (tests, debugging)
    analysis_max_attempts: int = 3  # a study whose analysis was cut off (crash, restart) this often is marked failed
    trusted_proxies: tuple[str, ...] = ()  # client addresses whose X-Forwarded-For is believed (your reverse proxy)
    ssl_certfile: str | None = None  # PEM certificate (chain): `livus serve` speaks HTTPS itself (with ssl_keyfile); cookies get Secure
    ssl_keyfile: str | None = None
    lockout_ip_failures: int = 20  # wrong passwords from one client address (any accounts) that block that address
    dicom_port: int = 0  # C-STORE listener port; 0 = off
    dicom_ae_title: str = "LIVUS"
    dicom_host: str = "127.0.0.1"  # the listener's own bind address (not ``host``); loopback by default
    dicom_calling_ae_titles: tuple[str, ...] = ()  # allowed senders: "AE" or "AE@address"; empty = any (loopback only)
    dicom_max_object_mb: float = 512.0  # larger data sets are refused
    dicom_max_associations: int = 4  # simultaneous associations; more are rejected
    dicom_tls_cert: str | None = None  # PEM certificate: DICOM over TLS (with dicom_tls_key)
    dicom_tls_key: str | None = None
    dicom_tls_ca: str | None = None  # PEM CA bundle: senders must present a certificate it signed
    # department of the studies a calling AE sends ("AE" or "AE@address" → department; "AE@address" wins):
    # its physicians see them (admins see all); a sender not listed gets dicom_default_department
    dicom_departments: dict[str, str] = field(default_factory=dict)
    dicom_default_department: str = ""  # '' = seen by admins and users without a department only
    pacs_host: str | None = None  # PACS for query/retrieve (C-FIND + C-GET/C-MOVE) and results sent back
    pacs_port: int = 4242
    pacs_ae_title: str = "ORTHANC"
    pacs_timeout_s: float = 30.0  # association, DIMSE and network timeouts
    pacs_retrieve: str = "get"  # get (C-GET) | move (C-MOVE to this listener: the PACS must know livus's AE) | dicomweb (WADO-RS)
    pacs_tls_ca: str | None = None  # PEM CA bundle: talk to the PACS over TLS, checking its certificate
    pacs_department: str | None = None  # department of studies pulled from the PACS; None = the puller's own
    dicomweb_url: str | None = None  # DICOMweb base URL (QIDO-RS/WADO-RS/STOW-RS), e.g. http://127.0.0.1:8042/dicom-web
    dicomweb_username: str | None = None  # HTTP basic auth (with dicomweb_password)
    dicomweb_password: str | None = None
    dicomweb_token: str | None = None  # bearer token (instead of basic auth)
    dicomweb_ca: str | None = None  # PEM CA bundle for https (default: the system's)
    dicomweb_timeout_s: float = 60.0
    send_results: str = "off"  # after analysis send SR + SEG to: off | dimse (pacs_host, C-STORE) | dicomweb (STOW-RS)
    send_retries: int = 5  # attempts per result before it is marked failed (a failed send can be retried by hand)
    send_retry_interval_s: float = 30.0  # wait between attempts (doubles each time)
    monitor_window: int = 200  # confirmed lesions in the sliding window per model version
    monitor_min_cases: int = 20  # fewer confirmed outcomes: no alert yet
    min_sensitivity: float = 0.80
    min_specificity: float = 0.60
    malignancy_threshold: float = 0.5  # probability above which a lesion counts as called malignant
    auto_rollback: bool = False  # roll back to the previous model version on an alert
    drift_smd_threshold: float = 1.0  # |standardised mean difference| of grey/size statistics vs training data that raises a drift alert
    drift_min_frames: int = 20  # fewer recent frames: no drift verdict
