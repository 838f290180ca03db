"""Light vs wide vs ensemble lesion classifier: AUL 3-fold CV (malignant vs benign).

Usage:
    nice -n 5 .venv/bin/python benchmarks/classifier_ensemble.py --data /tmp/aul_ds [--epochs 20]
        [--out /tmp/classifier_ensemble] [--save-wide models/classifier_wide.pt --spec models/classifier_ensemble.json]

Both members are trained by ``livus.train.classifier.cross_validate`` (same folds, calibration
hold-out, temperature and threshold rule as ``livus train classifier``; no simulated feature
data). Light = ``ClassifierConfig()`` defaults, wide = widths (48, 96, 192), 2 blocks per stage.

Ensemble protocol (no test-fold labels used for any choice): for test fold f the fusion weights
are chosen (log-loss grid, step 0.05) on the pooled out-of-fold predictions of the OTHER folds;
its operating threshold (sensitivity ≥ 0.90) is chosen on fold f's calibration hold-out (the 20 %
of the training part that also set each member's temperature and threshold), exactly like the
single models' thresholds. Speed: ``classify_lesions`` (crop + forward + mirror TTA) on a
synthetic 1024×768 image, 1 thread, median ms per lesion in a batch of 4.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from livus.config import ClassifierConfig
from livus.evaluate.classification import expected_calibration_error, roc_auc, sens_spec_at, threshold_for_sensitivity
from livus.io.dataset import load_dataset
from livus.models.classifier import classify_lesions, load_classifier, save_classifier
from livus.models.ensemble import ClassifierEnsemble, choose_weights, fuse, save_ensemble
from livus.train.classifier import ClassifierTrainConfig, LesionSamples, build_samples, cross_validate, train_model
from livus.types import Lesion

CONFIGS = {"light": ClassifierConfig(), "wide": ClassifierConfig(widths=(48, 96, 192), blocks_per_stage=2)}


@dataclass
class Row:
    auc: list[float]
    sens: list[float]
    spec: list[float]
    ece: list[float]

    def add(self, y: np.ndarray, prob: np.ndarray, thr: float) -> None:
        op = sens_spec_at(y, prob, thr)
        self.auc.append(roc_auc(y, prob))
        self.sens.append(op.sensitivity)
        self.spec.append(op.specificity)
        self.ece.append(expected_calibration_error(y, prob))


def ms_per_lesion(model: torch.nn.Module, repeats: int = 15) -> float:
    """Median ms per lesion of ``classify_lesions`` on 4 lesions of a synthetic image (1 thread)."""
    rng = np.random.default_rng(0)
    image = (rng.random((768, 1024)) * 255).astype(np.uint8)
    lesions = [Lesion(i, 0.9, (200.0 + 150 * i, 380.0), 120.0 + 40 * i, 90.0, 20.0 * i) for i in range(4)]
    classify_lesions(model, image, lesions)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        classify_lesions(model, image, lesions)
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times)) / len(lesions)


def run_cv(ds, samples: LesionSamples, tcfg: ClassifierTrainConfig, out: Path) -> dict[str, list[dict]]:
    """Fold outputs (``cross_validate(fold_outputs=...)``) of every config in ``CONFIGS``."""
    outputs: dict[str, list[dict]] = {}
    for name, cfg in CONFIGS.items():
        t0 = time.time()
        outputs[name] = []
        (out / name).mkdir(parents=True, exist_ok=True)
        cross_validate(ds, samples, cfg, tcfg, out / name, [], fold_outputs=outputs[name])
        print(f"{name}: 3-fold CV in {time.time() - t0:.0f} s", flush=True)
    return outputs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/tmp/aul_ds")
    ap.add_argument("--epochs", type=int, default=20, help="per member (the shipped light model used 60)")
    ap.add_argument("--out", default=None, help="fold models, reliability plots (default: a temporary folder)")
    ap.add_argument("--timing-from", default=None,
                    help="only time light, wide and their ensemble from the fold-0 models of an earlier --out folder")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--save-wide", default=None, help="train the wide member on all lesions and save it here")
    ap.add_argument("--spec", default=None, help="with --save-wide: ensemble spec next to models/classifier.pt")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.timing_from:
        members = [load_classifier(Path(args.timing_from) / n / "fold0.pt") for n in CONFIGS]
        for n, m in zip([*CONFIGS, "ensemble"], [*members, ClassifierEnsemble(members).eval()]):
            print(f"{n}: {ms_per_lesion(m, args.repeats):.1f} ms per lesion (classify_lesions, batch of 4, 1 thread)", flush=True)
        return
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="cls_ens_"))
    tcfg = ClassifierTrainConfig(epochs=args.epochs, num_threads=1)
    ds = load_dataset(args.data)
    samples = build_samples(ds, CONFIGS["light"])  # the wide config shares the crop rule
    print(f"{len(samples)} lesions ({int(np.nansum(samples.malignant))} malignant), epochs {tcfg.epochs}, out {out}", flush=True)
    outputs = run_cv(ds, samples, tcfg, out)
    names = list(CONFIGS)
    rows = {k: Row([], [], [], []) for k in [*names, "ensemble (equal)", "ensemble"]}
    weights = []
    for f in range(tcfg.folds):
        o = {n: outputs[n][f] for n in names}
        for n in names:
            y = samples.malignant[o[n]["test_pos"]]
            rows[n].add(y, o[n]["test_prob"], float(o[n]["model"].threshold))
        # weights: out-of-fold predictions of the other folds (their labels only)
        other = [g for g in range(tcfg.folds) if g != f]
        val_probs = np.stack([np.concatenate([outputs[n][g]["test_prob"] for g in other]) for n in names], axis=1)
        val_y = samples.malignant[np.concatenate([outputs[names[0]][g]["test_pos"] for g in other])]
        w = choose_weights(val_probs, val_y, "log_loss")
        weights.append(w)
        calib_probs = np.stack([o[n]["calib_prob"] for n in names], axis=1)
        y_cal = samples.malignant[o[names[0]]["calib_pos"]]
        test_probs = np.stack([o[n]["test_prob"] for n in names], axis=1)
        y = samples.malignant[o[names[0]]["test_pos"]]
        for label, ww in (("ensemble (equal)", np.full(len(names), 1 / len(names))), ("ensemble", w)):
            thr = threshold_for_sensitivity(y_cal, fuse(calib_probs, ww), tcfg.target_sensitivity)
            rows[label].add(y, fuse(test_probs, ww), thr)
        print(f"fold {f}: weights {dict(zip(names, np.round(w, 2).tolist()))} (chosen on folds {other})", flush=True)
    members = [outputs[n][0]["model"] for n in names]
    speed = {n: ms_per_lesion(m) for n, m in zip(names, members)}
    ens0 = ClassifierEnsemble(members, weights[0]).eval()
    speed["ensemble (equal)"] = speed["ensemble"] = ms_per_lesion(ens0)
    params = {n: sum(p.numel() for p in m.parameters()) for n, m in zip(names, members)}
    print(f"\nAUL {tcfg.folds}-fold CV, malignant vs benign, {len(samples)} lesions, {tcfg.epochs} epochs per member; "
          f"mean over folds; operating point: sensitivity ≥ {tcfg.target_sensitivity:.2f} on the calibration hold-out")
    print("| model | parameters | AUC | sensitivity | specificity | ECE | ms / lesion (1 thread) |")
    print("|---|---|---|---|---|---|---|")
    for k, r in rows.items():
        p = f"{params[k] / 1e6:.3f} M" if k in params else f"{sum(params.values()) / 1e6:.3f} M"
        print(f"| {k} | {p} | {np.mean(r.auc):.3f} ({' / '.join(f'{a:.3f}' for a in r.auc)}) | {np.mean(r.sens):.3f} | "
              f"{np.mean(r.spec):.3f} | {np.mean(r.ece):.3f} | {speed[k]:.1f} |")
    print(f"weights per test fold (light, wide): {[np.round(w, 2).tolist() for w in weights]}")
    if args.save_wide:
        wide_cfg = CONFIGS["wide"]
        temps = [float(o["model"].temperature) for o in outputs["wide"]]
        thrs = [float(o["model"].threshold) for o in outputs["wide"]]
        model = train_model(samples, wide_cfg, tcfg, [], tag="final-wide")
        model.temperature.fill_(float(np.median(temps)))
        model.threshold.fill_(float(np.median(thrs)))
        Path(args.save_wide).parent.mkdir(parents=True, exist_ok=True)
        save_classifier(model, args.save_wide, {"version": time.strftime("%Y%m%d"), "data": "AUL (Xu et al. 2022, CC BY 4.0)",
                                                "n_lesions": len(samples), "epochs": tcfg.epochs, "trained_features": [],
                                                "cv_mean_auc": float(np.mean(rows["wide"].auc))})
        print(f"saved {args.save_wide} ({Path(args.save_wide).stat().st_size / 1e6:.2f} MB)")
        if args.spec:
            w_all = choose_weights(np.stack([np.concatenate([o["test_prob"] for o in outputs[n]]) for n in names], axis=1),
                                   samples.malignant[np.concatenate([o["test_pos"] for o in outputs[names[0]]])])
            spec_dir = Path(args.spec).parent
            ens_thr = float(np.median([threshold_for_sensitivity(
                samples.malignant[outputs[names[0]][f]["calib_pos"]],
                fuse(np.stack([outputs[n][f]["calib_prob"] for n in names], axis=1), w_all), tcfg.target_sensitivity)
                for f in range(tcfg.folds)]))
            save_ensemble(args.spec, [spec_dir / "classifier.pt", args.save_wide], w_all, ens_thr,
                          {"weights_from": "pooled out-of-fold log-loss", "cv_mean_auc": float(np.mean(rows["ensemble"].auc))})
            print(f"saved {args.spec}: weights {np.round(w_all, 2).tolist()}, threshold {ens_thr:.3f}")


if __name__ == "__main__":
    main()
