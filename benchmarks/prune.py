"""Compression variants of the detector in one table: file size, latency and accuracy.

Variants (the same trained weights throughout, except ``full 3×3``):

* ``base``: the trained detector — PyTorch eager, ONNX fp32, ONNX static int8 (QDQ,
  per-channel, calibrated on training-side AUL frames) and ONNX dynamic int8;
* ``pruned p%``: structured L1 channel pruning (``torch.nn.utils.prune.ln_structured``,
  dim 0) of every *inner* channel set — the first unit of each residual block, the hidden
  layer of the centre/regression heads and the segmentation head's refine layer — then the
  channels are physically removed (smaller convolutions, so size and latency really drop), with
  and without a short fine-tune (``--finetune-images`` training-side images, one pass);
* ``full 3×3`` (``DetectorConfig(factorised=False)``): size and latency only (it would need
  training from scratch; accuracy left empty, not guessed).

Accuracy on the VALIDATION side of the detector's cross-validation split (fold ``--fold``; use
that fold's model, e.g. ``runs/cv256/fold0/detector.pt``, so the images are unseen): lesion
sensitivity at 0.25 FP/image, mass Dice; with ``--classifier`` also the malignancy AUC of the
classifier fp32 vs int8 on the ground-truth lesion crops of the same images.

Latency: detector forward only, batch 1, ``--threads`` threads, median of ``--repeats``.

Usage::

    python benchmarks/prune.py --detector runs/cv256/fold0/detector.pt --data /tmp/aul_ds \\
        [--classifier models/classifier.pt] [--amounts 0.3,0.5] [--finetune-images 128] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

from livus.models.blocks import ConvBNAct, ResidualBlock, SeparableConvBNAct

# ----------------------------------------------------------------------------- physical channel pruning


def _last_unit(unit: nn.Module) -> ConvBNAct:
    """The ConvBNAct that produces a conv unit's output channels."""
    return unit.pointwise if isinstance(unit, SeparableConvBNAct) else unit


def pruning_pairs(model: nn.Module) -> list[tuple[ConvBNAct, nn.Module]]:
    """(producer, consumer) pairs whose shared channels can be removed without touching a
    residual sum: inside residual blocks, the heads' hidden layers, the segmentation refine."""
    pairs: list[tuple[ConvBNAct, nn.Module]] = []
    for m in model.modules():
        if isinstance(m, ResidualBlock):
            pairs.append((_last_unit(m.conv1), m.conv2))
    center = getattr(model, "center", None)
    if center is not None:
        for head in (center.heatmap, center.regression):
            pairs.append((head[0], head[1]))
    seg = getattr(model, "seg", None)
    if seg is not None:
        pairs.append((seg.refine, seg.out))
    return pairs


def _slice_conv(conv: nn.Conv2d, out_keep: torch.Tensor | None = None, in_keep: torch.Tensor | None = None,
                depthwise: bool = False) -> nn.Conv2d:
    w = conv.weight.detach()
    if out_keep is not None:
        w = w[out_keep]
    if in_keep is not None and not depthwise:
        w = w[:, in_keep]
    c_out = w.shape[0]
    c_in = c_out if depthwise else w.shape[1] * conv.groups
    new = nn.Conv2d(c_in, c_out, conv.kernel_size, conv.stride, conv.padding, groups=c_out if depthwise else conv.groups,
                    bias=conv.bias is not None)
    new.weight.data.copy_(w)
    if conv.bias is not None:
        new.bias.data.copy_(conv.bias.detach()[out_keep] if out_keep is not None else conv.bias.detach())
    return new


def _slice_bn(bn: nn.BatchNorm2d, keep: torch.Tensor) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(int(keep.sum()), eps=bn.eps, momentum=bn.momentum)
    for name in ("weight", "bias"):
        getattr(new, name).data.copy_(getattr(bn, name).detach()[keep])
    new.running_mean.copy_(bn.running_mean[keep])
    new.running_var.copy_(bn.running_var[keep])
    return new


def _shrink_consumer_inputs(consumer: nn.Module, keep: torch.Tensor) -> None:
    if isinstance(consumer, nn.Conv2d):
        raise TypeError("a bare Conv2d consumer is replaced by its parent")
    if isinstance(consumer, SeparableConvBNAct):
        dw = consumer.depthwise
        dw.conv = _slice_conv(dw.conv, out_keep=keep, depthwise=True)
        dw.bn = _slice_bn(dw.bn, keep)
        consumer.pointwise.conv = _slice_conv(consumer.pointwise.conv, in_keep=keep)
    elif isinstance(consumer, ConvBNAct):
        consumer.conv = _slice_conv(consumer.conv, in_keep=keep)
    else:
        raise TypeError(f"cannot prune into {type(consumer).__name__}")


def prune_channels(model: nn.Module, amount: float) -> nn.Module:
    """A copy of ``model`` with ``amount`` of each inner channel set removed: channels chosen by
    ``prune.ln_structured`` (L1 norm of each output filter), then cut out of the producer conv,
    its batch norm and the consumer's input (physically smaller layers)."""
    model = copy.deepcopy(model).eval()
    parents = {id(child): (parent, name) for parent in model.modules() for name, child in parent.named_children()}
    for producer, consumer in pruning_pairs(model):
        prune.ln_structured(producer.conv, "weight", amount=amount, n=1, dim=0)
        keep = producer.conv.weight_mask.sum(dim=(1, 2, 3)) > 0
        prune.remove(producer.conv, "weight")
        producer.conv = _slice_conv(producer.conv, out_keep=keep)
        producer.bn = _slice_bn(producer.bn, keep)
        if isinstance(consumer, nn.Conv2d):  # head output conv: replace it in its parent
            parent, name = parents[id(consumer)]
            setattr(parent, name, _slice_conv(consumer, in_keep=keep))
        else:
            _shrink_consumer_inputs(consumer, keep)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------- fine-tuning


def finetune(model: nn.Module, train_cache: Any, n_images: int, lr: float = 3e-4, seed: int = 0) -> float:
    """One short pass (``n_images`` augmented training images, batch 16) of the detector loss;
    returns the seconds spent."""
    from livus.config import LivusConfig
    from livus.train.datasets import DetectorTrainSet
    from livus.train.detector import _loss_weights  # the training loop's loss weights (private helper)
    from livus.train.trainer import train_one_epoch

    t0 = time.perf_counter()
    ds = DetectorTrainSet(train_cache, augment=True, copy_paste_prob=0.3, seed=seed)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(train_cache))[:n_images]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    train_one_epoch(model, ds, idx, opt, None, _loss_weights(LivusConfig()), 16)
    model.eval()
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- measuring


def latency_ms(detector: Any, size: int, repeats: int) -> tuple[float, float]:
    """Median (wall, process CPU) milliseconds of one forward pass at batch 1. CPU time is
    less disturbed by other processes; with one thread it approximates an idle core's wall time."""
    x = torch.rand(1, 1, size, size)
    wall, cpu = [], []
    with torch.no_grad():
        for i in range(repeats + 3):
            t, c = time.perf_counter(), time.process_time()
            detector(x)
            if i >= 3:
                wall.append((time.perf_counter() - t) * 1000)
                cpu.append((time.process_time() - c) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def file_sizes_mb(path: Path) -> tuple[float, float]:
    """(raw, zip-deflated) size in MB."""
    raw = path.stat().st_size / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        z = Path(tmp) / "f.zip"
        with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.write(path, path.name)
        return raw, z.stat().st_size / 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detector", default=None, help="detector checkpoint (.pt)")
    ap.add_argument("--quant-folds", default=None, metavar="RUN",
                    help="instead of the variant table: fp32 vs int8 accuracy of every fold model RUN/fold<k>/detector.pt "
                         "on its own validation fold (k-fold run of `livus train detector`)")
    ap.add_argument("--classifier", default=None, help="classifier checkpoint (.pt) for the AUC rows")
    ap.add_argument("--classifier-folds", default=None, metavar="DIR",
                    help="with --quant-folds: classifier fold models DIR/fold<k>.pt (same split) for fp32 vs int8 AUC")
    ap.add_argument("--data", required=True, help="livus dataset (AUL imported)")
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--amounts", default="0.3,0.5")
    ap.add_argument("--finetune-images", type=int, default=128, help="0 = no fine-tuning")
    ap.add_argument("--max-val-images", type=int, default=None)
    ap.add_argument("--calibration", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--no-dynamic", action="store_true", help="skip the dynamic-int8 row")
    ap.add_argument("--work-dir", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.quant_folds:
        return quant_folds(Path(args.quant_folds), Path(args.data), args.calibration, args.threads, args.json,
                           Path(args.classifier_folds) if args.classifier_folds else None)
    if not args.detector:
        ap.error("--detector is required (or --quant-folds RUN)")

    from livus.config import DetectorConfig, PreprocessConfig
    from livus.train.bench import accuracy_data, classifier_auc, detector_accuracy
    from livus.train.onnx_build import calibration_images, dataset_split, spread_indices
    from livus.infer.onnx import (export_classifier_onnx, export_detector_onnx,
                                  load_onnx_classifier, load_onnx_detector, quantize_classifier_int8,
                                  quantize_detector_int8, quantize_dynamic_int8)
    from livus.io.dataset import load_dataset
    from livus.models.classifier import load_classifier
    from livus.models.detector import LesionDetector, load_detector
    from livus.train.datasets import build_cache

    torch.set_num_threads(args.threads)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="livus-prune-"))
    work.mkdir(parents=True, exist_ok=True)
    base = load_detector(args.detector)
    size = base.cfg.input_size_px
    cls = load_classifier(args.classifier) if args.classifier else None
    t0 = time.perf_counter()
    print(f"validation data (fold {args.fold}, {size} px)...", flush=True)
    data = accuracy_data(Path(args.data), size, cls.cfg if cls is not None else None, args.fold, args.max_val_images)
    calib = calibration_images(Path(args.data), size, args.calibration, args.fold)
    print(f"  {len(data.records)} validation images, {len(data.crops)} lesion crops ({time.perf_counter() - t0:.0f} s)", flush=True)

    rows: list[dict[str, Any]] = []

    def add(variant: str, runtime: str, detector: Any, path: Path | None, params: int, extra: dict | None = None,
            accuracy: bool = True) -> None:
        t = time.perf_counter()
        row = {"variant": variant, "runtime": runtime, "params": params}
        if path is not None:
            row["size_mb"], row["size_zip_mb"] = (round(v, 3) for v in file_sizes_mb(path))
        row["latency_ms"], row["cpu_ms"] = (round(v, 2) for v in latency_ms(detector, size, args.repeats))
        if accuracy:
            row.update({k: round(v, 4) for k, v in detector_accuracy(detector, data).items()})
        row.update(extra or {})
        rows.append(row)
        print(f"  {variant:24s} {runtime:18s} " + ", ".join(f"{k}={v}" for k, v in row.items() if k not in ("variant", "runtime"))
              + f"  ({time.perf_counter() - t:.0f} s)", flush=True)

    def onnx_rows(variant: str, model: nn.Module, extra: dict | None = None, dynamic: bool = False) -> None:
        fp32 = export_detector_onnx(model, work / f"{variant.replace(' ', '_')}.onnx")
        add(variant, "onnx-fp32", load_onnx_detector(fp32, args.threads), fp32, count_parameters(model), extra)
        int8 = quantize_detector_int8(fp32, work / f"{variant.replace(' ', '_')}.int8.onnx", calib)  # heads fp32
        add(variant, "onnx-int8 (heads fp32)", load_onnx_detector(int8, args.threads), int8, count_parameters(model), extra)
        if dynamic:  # the base model only: every layer int8, and dynamic int8, for comparison
            full = quantize_detector_int8(fp32, work / f"{variant.replace(' ', '_')}.int8all.onnx", calib, nodes_to_exclude=())
            add(variant, "onnx-int8 (all layers)", load_onnx_detector(full, args.threads), full, count_parameters(model), extra)
            dyn = quantize_dynamic_int8(fp32, work / f"{variant.replace(' ', '_')}.int8dyn.onnx")
            add(variant, "onnx-int8-dynamic", load_onnx_detector(dyn, args.threads), dyn, count_parameters(model), extra,
                accuracy=False)

    print("base...", flush=True)
    add("base", "torch", base, Path(args.detector), count_parameters(base))
    onnx_rows("base", base, dynamic=not args.no_dynamic)

    train_cache = None
    if args.finetune_images:
        ds = load_dataset(Path(args.data))
        train_idx, _ = dataset_split([r.image_class or "unknown" for r in ds.images], args.fold)
        recs = [ds.images[i] for i in spread_indices(train_idx, args.finetune_images)]
        train_cache = build_cache(ds, PreprocessConfig(input_size_px=size), recs)
    for amount in (float(a) for a in args.amounts.split(",") if a):
        name = f"pruned {amount:.0%}"
        print(f"{name}...", flush=True)
        pruned = prune_channels(base, amount)
        onnx_rows(name, pruned)
        if train_cache is not None:
            secs = finetune(pruned, train_cache, args.finetune_images)
            onnx_rows(f"{name} + fine-tune", pruned, {"finetune_s": round(secs, 1), "finetune_images": args.finetune_images})

    print("full 3x3 (factorised=False, untrained: size/latency only)...", flush=True)
    full_cfg = DetectorConfig(**{**base.cfg.__dict__, "factorised": False})
    full = LesionDetector(full_cfg).eval()
    fp32 = export_detector_onnx(full, work / "full3x3.onnx")
    add("full 3x3 (untrained)", "onnx-fp32", load_onnx_detector(fp32, args.threads), fp32, count_parameters(full), accuracy=False)

    cls_rows = []
    if cls is not None and len(data.crops):
        print("classifier fp32 vs int8...", flush=True)
        from livus.train.onnx_build import calibration_crops

        c_fp32 = export_classifier_onnx(cls, work / "classifier.onnx")
        crops, sizes = calibration_crops(Path(args.data), cls.cfg, 2 * args.calibration, args.fold)
        c_int8 = quantize_classifier_int8(c_fp32, work / "classifier.int8.onnx", crops, sizes)
        for rt, model, path in (("torch", cls, Path(args.classifier)), ("onnx-fp32", load_onnx_classifier(c_fp32, args.threads), c_fp32),
                                ("onnx-int8", load_onnx_classifier(c_int8, args.threads), c_int8)):
            crop1 = torch.from_numpy(data.crops[:1])
            size1 = torch.from_numpy(data.sizes[:1])
            times = []
            with torch.no_grad():
                for i in range(args.repeats + 3):
                    t = time.perf_counter()
                    model(crop1, size1)
                    if i >= 3:
                        times.append((time.perf_counter() - t) * 1000)
            cls_rows.append({"runtime": rt, "size_mb": round(path.stat().st_size / 1e6, 3),
                             "latency_ms_1crop": round(statistics.median(times), 2),
                             "malignancy_auc": round(classifier_auc(model, data), 4)})
            print(f"  classifier {rt:10s} {cls_rows[-1]}", flush=True)

    print()
    print(format_table(rows, cls_rows, args, len(data.records), len(data.crops)))
    if args.json:
        Path(args.json).write_text(json.dumps({"detector": rows, "classifier": cls_rows, "args": vars(args)}, indent=1))
    return 0


def quant_folds(run_dir: Path, data_dir: Path, n_calibration: int, threads: int, json_path: str | None,
                classifier_dir: Path | None = None) -> int:
    """fp32 vs static int8 (all layers; prediction layers kept fp32) of each fold model on its
    own validation fold; per-fold figures, their mean and the change in points. With
    ``classifier_dir``, the classifier fold model of the same split gives the malignancy AUC
    (fp32 with the fp32 detector row, int8 with the int8 rows)."""
    from livus.train.bench import accuracy_data, classifier_auc, detector_accuracy
    from livus.train.onnx_build import calibration_crops, calibration_images
    from livus.infer.onnx import (export_classifier_onnx, export_detector_onnx,
                                  load_onnx_classifier, load_onnx_detector, output_conv_nodes, quantize_classifier_int8,
                                  quantize_detector_int8)
    from livus.models.classifier import load_classifier
    from livus.models.detector import load_detector

    torch.set_num_threads(threads)
    folds = sorted(run_dir.glob("fold*/detector.pt"))
    if not folds:
        raise SystemExit(f"no fold*/detector.pt in {run_dir}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for pt in folds:
            k = int(pt.parent.name[4:])
            det = load_detector(pt)
            size = det.cfg.input_size_px
            t = time.perf_counter()
            cls_pt = classifier_dir / f"fold{k}.pt" if classifier_dir else None
            cls = load_classifier(cls_pt) if cls_pt is not None and cls_pt.is_file() else None
            data = accuracy_data(data_dir, size, cls.cfg if cls is not None else None, fold=k)
            calib = calibration_images(data_dir, size, n_calibration, fold=k)
            auc = {}
            if cls is not None:
                c32 = export_classifier_onnx(cls, Path(tmp) / f"c{k}.onnx")
                crops, sizes = calibration_crops(data_dir, cls.cfg, 2 * n_calibration, fold=k)
                c8 = quantize_classifier_int8(c32, Path(tmp) / f"c{k}.int8.onnx", crops, sizes)
                auc = {"fp32": classifier_auc(load_onnx_classifier(c32, threads), data),
                       "int8": classifier_auc(load_onnx_classifier(c8, threads), data)}
            fp32 = export_detector_onnx(det, Path(tmp) / f"f{k}.onnx", source_checkpoint=pt)
            variants = {"onnx-fp32": fp32,
                        "onnx-int8": quantize_detector_int8(fp32, Path(tmp) / f"f{k}.int8.onnx", calib, nodes_to_exclude=()),
                        "onnx-int8 (heads fp32)": quantize_detector_int8(fp32, Path(tmp) / f"f{k}.mixed.onnx", calib,
                                                                         nodes_to_exclude=output_conv_nodes(fp32))}
            for name, path in variants.items():
                acc = detector_accuracy(load_onnx_detector(path, threads), data)
                if auc:
                    acc["malignancy_auc"] = auc["fp32" if name == "onnx-fp32" else "int8"]
                rows.append({"fold": k, "runtime": name, "n_images": len(data.records), **{a: round(b, 4) for a, b in acc.items()}})
                print(f"  fold {k} {name:24s} {rows[-1]}", flush=True)
            # noise floor of the metrics: the fp32 model on images with ±0.5 grey level of noise
            noisy = copy.copy(data)
            noisy.cache = copy.copy(data.cache)
            rng = np.random.default_rng(k)
            noisy.cache.images = np.clip(data.cache.images + rng.uniform(-0.5, 0.5, data.cache.images.shape) / 255.0, 0, 1
                                         ).astype(np.float32)
            acc = detector_accuracy(load_onnx_detector(fp32, threads), noisy)
            rows.append({"fold": k, "runtime": "onnx-fp32, input ±0.5 grey level", "n_images": len(data.records),
                         **{a: round(b, 4) for a, b in acc.items()}, **({"malignancy_auc": auc["fp32"]} if auc else {})})
            print(f"  fold {k} {rows[-1]['runtime']:24s} {rows[-1]}", flush=True)
            print(f"  fold {k} done in {time.perf_counter() - t:.0f} s", flush=True)
    keys = ["sens@0.25fp", "sens@0.5fp", "sens@1fp", "mass_dice", "liver_dice"] + (["malignancy_auc"] if "malignancy_auc" in rows[0] else [])
    names = list(dict.fromkeys(r["runtime"] for r in rows))
    mean = {n: {key: float(np.nanmean([r[key] for r in rows if r["runtime"] == n])) for key in keys} for n in names}
    lines = [f"Quantisation accuracy, {len(folds)} fold model(s), each on its own validation fold",
             "| fold | runtime | images | " + " | ".join(keys) + " |", "|---" * (len(keys) + 3) + "|"]
    lines += [f"| {r['fold']} | {r['runtime']} | {r['n_images']} | " + " | ".join(f"{r[k]:.4f}" for k in keys) + " |" for r in rows]
    for n in names:
        delta = " | ".join(f"{mean[n][k]:.4f} ({100 * (mean[n][k] - mean['onnx-fp32'][k]):+.1f} pt)" for k in keys)
        lines.append(f"| mean | {n} | | {delta} |")
    print("\n".join(lines))
    if json_path:
        Path(json_path).write_text(json.dumps({"rows": rows, "mean": mean}, indent=1))
    return 0


def format_table(rows: list[dict], cls_rows: list[dict], args: Any, n_val: int, n_crops: int) -> str:
    f = lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v}"  # noqa: E731
    lines = [f"Detector variants — latency: forward, batch 1, {args.threads} thread(s), median of {args.repeats}; "
             f"accuracy: fold {args.fold} validation, {n_val} AUL images",
             "| variant | runtime | params | file MB | zip MB | latency ms | CPU ms | sens@0.25FP | sens@1FP | mass Dice | liver Dice |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['runtime']} | {r['params']:,} | {f(r.get('size_mb'))} | {f(r.get('size_zip_mb'))} | "
                     f"{r['latency_ms']} | {r['cpu_ms']} | {f(r.get('sens@0.25fp'))} | {f(r.get('sens@1fp'))} | {f(r.get('mass_dice'))} | {f(r.get('liver_dice'))} |")
    if cls_rows:
        lines += ["", f"Classifier — {n_crops} ground-truth lesion crops of the same images",
                  "| runtime | file MB | latency ms (1 crop) | malignancy AUC |", "|---|---|---|---|"]
        lines += [f"| {r['runtime']} | {r['size_mb']} | {r['latency_ms_1crop']} | {f(r['malignancy_auc'])} |" for r in cls_rows]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
