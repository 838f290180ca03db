"""ONNX export, int8 quantisation and ONNX Runtime runners for the detector and the classifier.

The runners are drop-in replacements for the PyTorch models at inference time:

* :class:`OnnxDetector` is called like ``LesionDetector`` in eval mode: ``(B, 1, S, S)`` float
  images in [0, 1] (MODEL-INPUT pixels) → the same dict of tensors (``heatmap``, ``axes``,
  ``orient``, ``offset``, ``lesion_mask``, ``liver_mask``) with the same shapes, so
  :func:`livus.models.decode.decode_detections` works unchanged;
* :class:`OnnxClassifier` is called like ``LesionClassifier``: ``(N, 2, C, C)`` crops (+ ``(N,)``
  size features) → ``{"malignancy": (N,), "features": (N, K)}`` logits; it carries
  ``temperature``, ``threshold`` and ``feature_names`` so
  :func:`livus.models.classifier.classify_lesions` accepts it as the model.

Both also answer ``eval()``/``train()``/``training`` like an ``nn.Module`` in eval mode.
The network's config, the checkpoint's ``meta`` and the SHA-256 of the ``.pt`` file it came from
are stored in the ONNX file's ``metadata_props`` (keys ``livus.*``), so an ``.onnx`` file is
self-contained and can be checked against its checkpoint (:func:`onnx_matches_checkpoint`).

File names in a model folder (:func:`onnx_model_path`): ``detector.onnx`` (fp32),
``detector.int8.onnx`` (static QDQ int8), the same for ``classifier``.

Export uses the TorchScript exporter (``dynamo=False``, opset 17: the dynamo exporter needs
onnxscript and only gave opset 18 here) with a dynamic batch axis; the spatial size is fixed
to the config's input size (static shapes let ONNX Runtime pre-plan memory and fuse more).
Quantisation is ONNX Runtime's static QDQ quantisation (per-channel int8 weights, uint8
activations, MinMax calibration on real preprocessed frames/crops).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from livus.config import ClassifierConfig, DetectorConfig, from_dict, to_dict

OPSET = 17
DETECTOR_OUTPUTS = ("heatmap", "axes", "orient", "offset", "lesion_mask", "liver_mask")
CLASSIFIER_OUTPUTS = ("malignancy", "features")
PRECISIONS = ("fp32", "int8")
# The precision the pipeline should load by default: int8 only when no accuracy figure drops by
# more than 1 point. Measured (static int8, fp32 prediction layers): the 3 CV fold models on their
# held-out folds (benchmarks/prune.py --quant-folds, 588 images) sens@0.25FP +1.2 pt, mass Dice
# −0.1, malignancy AUC −0.0; the SHIPPED detector (trained on all 588 images, so no held-out set)
# sens@0.25FP −1.4 pt (0.557 → 0.543), @0.5FP −1.4, @1FP −1.2, Dice −0.04, AUC −0.06. The shipped
# model misses the rule → fp32 (int8: ``precision="int8"``; ~3 ms faster per frame here).
DEFAULT_PRECISION = "fp32"

_KIND = "livus.kind"
_CONFIG = "livus.config"
_META = "livus.meta"
_EXTRA = "livus.extra"
_SOURCE_SHA = "livus.source_sha256"
_PRECISION = "livus.precision"


# ----------------------------------------------------------------------------- file names, metadata


def onnx_model_path(model_dir: Path, name: str, precision: str = "fp32") -> Path:
    """``model_dir/<name>.onnx`` (fp32) or ``model_dir/<name>.int8.onnx``; ``name`` is
    ``"detector"`` or ``"classifier"``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return Path(model_dir) / (f"{name}.onnx" if precision == "fp32" else f"{name}.{precision}.onnx")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_onnx_metadata(path: Path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file (weights are not loaded)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def write_onnx_metadata(path: Path, props: dict[str, str]) -> None:
    """Set (add or replace) ``metadata_props`` entries of an ONNX file in place."""
    import onnx

    model = onnx.load(str(path))
    current = {p.key: p.value for p in model.metadata_props}
    current.update(props)
    del model.metadata_props[:]
    for k, v in current.items():
        model.metadata_props.add(key=k, value=str(v))
    onnx.save(model, str(path))


def onnx_matches_checkpoint(onnx_path: Path, checkpoint_path: Path) -> bool:
    """True when ``onnx_path`` exists and was exported from exactly this ``.pt`` file
    (SHA-256 stored at export); use it to decide whether the ONNX files are stale."""
    if not Path(onnx_path).is_file() or not Path(checkpoint_path).is_file():
        return False
    return read_onnx_metadata(onnx_path).get(_SOURCE_SHA) == file_sha256(Path(checkpoint_path))


# ----------------------------------------------------------------------------- export


def _export(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], input_names: Sequence[str],
            output_names: Sequence[str], path: Path, opset: int, props: dict[str, str]) -> Path:
    """TorchScript export with a dynamic batch axis on every input and output."""
    import warnings

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dynamic = {n: {0: "batch"} for n in (*input_names, *output_names)}
    was_training = model.training
    model.eval()
    with warnings.catch_warnings():  # tracer warnings about Python-side shape checks
        warnings.simplefilter("ignore")
        torch.onnx.export(model, inputs, str(path), opset_version=opset, dynamo=False, input_names=list(input_names),
                          output_names=list(output_names), dynamic_axes=dynamic, do_constant_folding=True)
    model.train(was_training)
    write_onnx_metadata(path, props)
    return path


def _common_props(kind: str, cfg: Any, meta: dict[str, Any] | None, source: Path | None) -> dict[str, str]:
    props = {_KIND: kind, _CONFIG: json.dumps(to_dict(cfg)), _META: json.dumps(meta or {}, default=str),
             _PRECISION: "fp32"}
    if source is not None:
        props[_SOURCE_SHA] = file_sha256(Path(source))
    return props


def export_detector_onnx(model: torch.nn.Module, path: Path, opset: int = OPSET, source_checkpoint: Path | None = None,
                         input_size_px: int | None = None) -> Path:
    """Export a ``LesionDetector`` (eval-mode outputs) to ``path`` with a dynamic batch axis.

    The spatial size is ``input_size_px`` (default ``model.cfg.input_size_px``) model pixels;
    the config stored in the file carries that size. ``source_checkpoint``: the ``.pt`` file
    the weights came from (its hash is stored for :func:`onnx_matches_checkpoint`).
    """
    cfg = from_dict(DetectorConfig, to_dict(model.cfg))
    if input_size_px is not None:
        cfg.input_size_px = int(input_size_px)
    s = cfg.input_size_px
    props = _common_props("detector", cfg, getattr(model, "meta", None), source_checkpoint)
    outputs = DETECTOR_OUTPUTS + (("image_logits",) if getattr(model, "image_head", None) is not None else ())
    return _export(model, (torch.rand(1, 1, s, s),), ["image"], outputs, path, opset, props)


def export_classifier_onnx(model: torch.nn.Module, path: Path, opset: int = OPSET,
                           source_checkpoint: Path | None = None) -> Path:
    """Export a ``LesionClassifier`` to ``path`` (dynamic batch of crops). Inputs ``crops``
    ``(N, 2, C, C)`` and, when ``cfg.use_size``, ``size`` ``(N,)``; outputs are logits
    (temperature not applied: it is stored in the metadata, as in the checkpoint)."""
    cfg = model.cfg
    c = cfg.crop_size_px
    inputs: tuple[torch.Tensor, ...] = (torch.rand(2, 2, c, c),)
    names = ["crops"]
    if cfg.use_size:
        inputs += (torch.zeros(2),)
        names.append("size")
    props = _common_props("classifier", cfg, getattr(model, "meta", None), source_checkpoint)
    extra = {"feature_names": list(model.feature_names), "temperature": float(model.temperature),
             "threshold": float(model.threshold)}
    props[_EXTRA] = json.dumps(extra)
    return _export(model, inputs, names, CLASSIFIER_OUTPUTS, path, opset, props)


# ----------------------------------------------------------------------------- runtime


def make_session(path: Path, threads: int = 2, spin: bool = False):
    """An ONNX Runtime CPU session with ``threads`` intra-op threads and full graph optimisation.

    ``spin=False`` stops idle worker threads from busy-waiting after each run: in the frame
    pipeline the model is one step among others (preprocessing, decoding, overlays) on the same
    few cores, and spinning threads would take a core away from them."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, int(threads))
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _as_float32(x: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(x, dtype=np.float32)


class _OnnxRunner:
    """What the ONNX runners share: the session, the stored metadata and the eval-mode
    ``nn.Module`` surface (``training``, ``eval()``, ``train()``) that callers touch."""

    training = False

    def __init__(self, path: Path, threads: int, kind: str) -> None:
        self.path = Path(path)
        self.session = make_session(self.path, threads)
        props = self.session.get_modelmeta().custom_metadata_map
        if props.get(_KIND) != kind:
            raise ValueError(f"{path}: not a livus {kind} ONNX file (kind={props.get(_KIND)!r})")
        self.props = dict(props)
        self.meta: dict[str, Any] = json.loads(props.get(_META, "{}"))
        self.precision = props.get(_PRECISION, "fp32")
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def eval(self) -> _OnnxRunner:
        return self

    def train(self, mode: bool = True) -> _OnnxRunner:
        if mode:
            raise RuntimeError("an ONNX runner cannot be trained")
        return self

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        outs = self.session.run(self.output_names, feeds)
        return {n: torch.from_numpy(o) for n, o in zip(self.output_names, outs)}


def _known_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


class OnnxDetector(_OnnxRunner):
    """ONNX Runtime detector with the call contract of ``LesionDetector`` in eval mode."""

    def __init__(self, path: Path, threads: int = 2) -> None:
        super().__init__(path, threads, "detector")
        self.cfg: DetectorConfig = from_dict(DetectorConfig, _known_fields(DetectorConfig, json.loads(self.props[_CONFIG])))

    def __call__(self, x: torch.Tensor | np.ndarray) -> dict[str, torch.Tensor]:
        x = _as_float32(x)
        s = self.cfg.input_size_px
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[2:] != (s, s):
            raise ValueError(f"expected (B, 1, {s}, {s}) input, got {tuple(x.shape)}")
        return self._run({"image": x})


class OnnxClassifier(_OnnxRunner):
    """ONNX Runtime classifier with the call contract of ``LesionClassifier`` (logits out)."""

    def __init__(self, path: Path, threads: int = 2) -> None:
        super().__init__(path, threads, "classifier")
        self.cfg: ClassifierConfig = from_dict(ClassifierConfig, _known_fields(ClassifierConfig, json.loads(self.props[_CONFIG])))
        extra = json.loads(self.props.get(_EXTRA, "{}"))
        self.feature_names: tuple[str, ...] = tuple(extra.get("feature_names", ()))
        self.temperature = torch.tensor(float(extra.get("temperature", 1.0)))
        self.threshold = torch.tensor(float(extra.get("threshold", 0.5)))

    def __call__(self, x: torch.Tensor | np.ndarray, size: torch.Tensor | np.ndarray | None = None) -> dict[str, torch.Tensor]:
        x = _as_float32(x)
        c = self.cfg.crop_size_px
        if x.ndim != 4 or x.shape[1:] != (2, c, c):
            raise ValueError(f"expected (N, 2, {c}, {c}) crops, got {tuple(x.shape)}")
        feeds = {"crops": x}
        if "size" in self.input_names:
            if size is None:
                raise ValueError("this classifier needs the lesion size (cfg.use_size)")
            feeds["size"] = _as_float32(size).reshape(-1)
        return self._run(feeds)


def load_onnx_detector(onnx_path: Path, threads: int = 2) -> OnnxDetector:
    """Open a detector ``.onnx`` (fp32 or int8) for inference with ``threads`` CPU threads."""
    return OnnxDetector(Path(onnx_path), threads)


def load_onnx_classifier(onnx_path: Path, threads: int = 2) -> OnnxClassifier:
    """Open a classifier ``.onnx`` (fp32 or int8) for inference with ``threads`` CPU threads."""
    return OnnxClassifier(Path(onnx_path), threads)


# ----------------------------------------------------------------------------- quantisation


class _FeedReader:
    """ONNX Runtime ``CalibrationDataReader``: yields one feed dict per calibration sample."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._feeds = feeds
        self._it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self._feeds)


def _quantize_static(fp32_path: Path, out_path: Path, feeds: list[dict[str, np.ndarray]],
                     nodes_to_exclude: Iterable[str] = (), method: str = "minmax",
                     op_types: Sequence[str] | None = None) -> Path:
    """Static QDQ quantisation (per-channel int8 weights, uint8 activations, calibration
    ``method`` minmax | percentile | entropy on ``feeds``); the fp32 file's ``livus.*`` metadata
    is carried over, with the calibration and fp32-kept nodes noted."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not feeds:
        raise ValueError("static quantisation needs at least one calibration sample")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prep = Path(tmp) / "prep.onnx"
        quant_pre_process(str(fp32_path), str(prep), skip_symbolic_shape=True)
        quantize_static(
            str(prep), str(out_path), _FeedReader(feeds), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=list(nodes_to_exclude),
            op_types_to_quantize=list(op_types) if op_types else None,
            calibrate_method={"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                              "entropy": CalibrationMethod.Entropy}[method],
        )
    props = read_onnx_metadata(Path(fp32_path))
    props[_PRECISION] = "int8"
    props["livus.quantisation"] = json.dumps({"format": "QDQ", "per_channel": True, "calibration": method,
                                              "calibration_samples": len(feeds), "fp32_nodes": list(nodes_to_exclude),
                                              "op_types": list(op_types) if op_types else "default"})
    write_onnx_metadata(out_path, props)
    return out_path


def output_conv_nodes(path: Path) -> list[str]:
    """Names of the last ``Conv`` (or ``Gemm``: the image-level head's linear layer) node before
    each graph output (following only the first, data input of shape-only ops such as
    Slice/Resize): the prediction layers, which can be left in fp32 (``nodes_to_exclude``) when
    their int8 rounding moves the results too much."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    producer = {o: n for n in graph.node for o in n.output}
    found: list[str] = []
    for out in graph.output:
        name = out.name
        seen = set()
        while name in producer and name not in seen:
            seen.add(name)
            node = producer[name]
            if node.op_type in ("Conv", "Gemm"):
                if node.name not in found:
                    found.append(node.name)
                break
            name = node.input[0] if node.input else ""
    return found


def quantize_dynamic_int8(fp32_path: Path, out_path: Path) -> Path:
    """Dynamic int8 quantisation (weights only; activations quantised at run time) — kept for
    the speed comparison: on this CPU it was slower than fp32 (ConvInteger kernels)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32_path), str(out_path), weight_type=QuantType.QInt8, per_channel=True)
    props = read_onnx_metadata(Path(fp32_path))
    props[_PRECISION] = "int8-dynamic"
    write_onnx_metadata(Path(out_path), props)
    return Path(out_path)


def quantize_detector_int8(fp32_path: Path, out_path: Path, calibration_images: list[np.ndarray],
                           nodes_to_exclude: Iterable[str] | None = None, method: str = "minmax",
                           op_types: Sequence[str] | None = None) -> Path:
    """Static int8 (QDQ, per-channel) detector from its fp32 ONNX file.

    ``calibration_images``: preprocessed model inputs (``preprocess_frame(...).image``), each
    ``(S, S)`` or ``(1, S, S)`` float in [0, 1], S = the file's input size.
    ``nodes_to_exclude`` (kept fp32): by default the three prediction layers
    (:func:`output_conv_nodes`; tiny, no measurable speed cost). Measured on the three AUL
    cross-validation folds (benchmarks/prune.py --quant-folds): all-int8 lost 1.8 points of
    sensitivity at 0.25 FP/image, with fp32 prediction layers the change was +1.2 points
    (Dice −0.1, malignancy AUC −0.0); keeping the whole stride-4 part fp32 did not help further
    (and cost the speed-up). Pass ``()`` to quantise every layer.
    """
    if nodes_to_exclude is None:
        nodes_to_exclude = output_conv_nodes(Path(fp32_path))
    feeds = [{"image": _as_float32(im).reshape(1, 1, *np.shape(im)[-2:])} for im in calibration_images]
    return _quantize_static(fp32_path, out_path, feeds, nodes_to_exclude, method, op_types)


def quantize_classifier_int8(fp32_path: Path, out_path: Path, calibration_crops: list[np.ndarray],
                             calibration_sizes: Sequence[float] | None = None,
                             nodes_to_exclude: Iterable[str] = (), method: str = "minmax",
                           op_types: Sequence[str] | None = None) -> Path:
    """Static int8 (QDQ, per-channel) classifier from its fp32 ONNX file.

    ``calibration_crops``: ``(2, C, C)`` crops as made for inference; ``calibration_sizes``:
    their :func:`~livus.models.classifier.size_feature` values (zeros when omitted).
    """
    with_size = "size" in {i.name for i in make_session(Path(fp32_path), 1).get_inputs()}
    sizes = np.zeros(len(calibration_crops), np.float32) if calibration_sizes is None else np.asarray(calibration_sizes, np.float32)
    feeds = []
    for crop, s in zip(calibration_crops, sizes):
        feed = {"crops": _as_float32(crop)[None]}
        if with_size:
            feed["size"] = np.array([s], np.float32)
        feeds.append(feed)
    return _quantize_static(fp32_path, out_path, feeds, nodes_to_exclude, method)


# ----------------------------------------------------------------------------- choosing a runtime


def load_model_for_inference(model_dir: Path, name: str, precision: str | None = None, threads: int = 2) -> tuple[Any, dict[str, str]]:
    """The model ``name`` (``"detector"``/``"classifier"``) of ``model_dir`` for inference:
    the ONNX Runtime runner of ``<name>[.int8].onnx`` when that file exists, opens and was
    exported from the ``<name>.pt`` beside it (when there is one), else the PyTorch model from
    ``<name>.pt`` (fallback). ``precision`` defaults to :data:`DEFAULT_PRECISION`; an fp32 ONNX
    file is tried when the requested precision is missing. Returns ``(model, info)`` with
    ``info = {"runtime": "onnx-int8"|"onnx-fp32"|"torch", "path": ..., "note": why a fallback}``;
    raises ``FileNotFoundError`` when neither file exists.
    """
    model_dir = Path(model_dir)
    pt = model_dir / f"{name}.pt"
    notes = []
    for prec in dict.fromkeys([precision or DEFAULT_PRECISION, "fp32"]):
        path = onnx_model_path(model_dir, name, prec)
        if not path.is_file():
            notes.append(f"{path.name} missing")
            continue
        try:
            runner = (load_onnx_detector if name == "detector" else load_onnx_classifier)(path, threads)
        except Exception as exc:  # noqa: BLE001 - e.g. onnxruntime not installed: fall back to torch
            notes.append(f"{path.name}: {type(exc).__name__}: {exc}")
            continue
        # the session's metadata, as onnx_matches_checkpoint reads it (without importing the onnx
        # package: ~1-2 s of every process start)
        if pt.is_file() and runner.props.get(_SOURCE_SHA) != file_sha256(pt):
            notes.append(f"{path.name} was not exported from {pt.name} (stale: run `livus export-onnx`)")
            continue
        return runner, {"runtime": f"onnx-{prec}", "path": str(path), "note": "; ".join(notes)}
    if not pt.is_file():
        raise FileNotFoundError(f"no {name} model in {model_dir} ({'; '.join(notes)})")
    torch.set_num_threads(max(1, threads))
    if name == "detector":
        from livus.models.detector import load_detector as load
    else:
        from livus.models.classifier import load_classifier as load
    return load(pt), {"runtime": "torch", "path": str(pt), "note": "; ".join(notes)}
