"""Device-held-out figures of the shipped detector recipe next to a random split of the same sizes.

One device group of AUL (``livus.train.robustness.device_groups``: the device, or the image size
where the dataset does not name it) is held out entirely; the detector is trained on the other
groups with the shipped recipe (the CV run's ``config.yaml``) and scored on the held-out group.
A random split with the same numbers of training and test images (``random_split_like``) gives
the figure to compare with. Scores use the calibration and report threshold of the CV report
(``--report``, fitted on the random CV's held-out folds), so both rows are judged at the same
operating point; the FROC figures do not depend on it.

Usage: python benchmarks/device_heldout.py --data DATASET --cv runs/cv_pre --report runs/pretrained_cv.json
           --group 720x576 --out runs/device_heldout --json benchmarks/results/device_heldout.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import torch

from livus.config import load_config
from livus.io.dataset import load_dataset
from livus.train.calibration import evaluate_calibrated
from livus.train.detector import get_cache, train_run
from livus.train.robustness import device_groups, random_split_like

COLUMNS = ("sens@0.25fp", "sens@1fp", "sens_lt60", "mass_dice", "liver_dice", "normal_with_lesion")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--cv", required=True, help="CV run folder (config.yaml and cache)")
    ap.add_argument("--report", required=True, help="JSON of pretrained_cv_report.py (calibration, threshold)")
    ap.add_argument("--group", default="720x576")
    ap.add_argument("--out", default="runs/device_heldout")
    ap.add_argument("--json", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--splits", default="group,random", help="which rows to train: group, random or both")
    args = ap.parse_args()
    cfg = load_config(Path(args.cv) / "config.yaml")
    torch.set_num_threads(max(1, cfg.train.num_threads))
    ds = load_dataset(args.data)
    records = ds.images
    cache = get_cache(cfg, Path(args.data), Path(args.cv), records)
    shipped = json.loads(Path(args.report).read_text())["shipped"]
    coef, thr = tuple(shipped["score_calibration"]), float(shipped["score_threshold"])
    groups = device_groups(records)
    pos = {r.id: i for i, r in enumerate(records)}
    test = [pos[r.id] for r in records if groups[r.id] == args.group]
    train = [pos[r.id] for r in records if groups[r.id] != args.group]
    if not test:
        raise SystemExit(f"no device group {args.group!r}; groups: {Counter(groups.values())}")
    rtrain_ids, rtest_ids = random_split_like(records, len(train), len(test), args.seed)
    splits = {f"device {args.group} held out": (train, test),
              "random split, same sizes": ([pos[i] for i in rtrain_ids], [pos[i] for i in rtest_ids])}
    wanted = args.splits.split(",")
    splits = {k: v for k, v in splits.items() if ("group" in wanted and k.startswith("device")) or
              ("random" in wanted and k.startswith("random"))}
    rows = []
    for name, (tr, te) in splits.items():
        t0 = time.time()
        run_dir = Path(args.out) / ("group" if name.startswith("device") else "random")
        model, _ = train_run(cfg, cache.subset(tr), None, [], run_dir, resume=True, progress=False,
                             meta={"split": name})
        recs = [records[i] for i in te]
        m, normal_rate, _, _ = evaluate_calibrated(model, cache.subset(te), recs, coef, thr)
        classes = Counter(r.image_class for r in recs)
        rows.append({"split": name, **m.headline(), "normal_with_lesion": normal_rate, "n_train": len(tr), "n_test": len(te),
                     "test_classes": dict(classes), "seconds": round(time.time() - t0, 1)})
        print(json.dumps(rows[-1], default=float), flush=True)
    note = (f"Device group {args.group} (image size where AUL names no device) held out: trained on the "
            f"{len(train)} images of the other groups, scored on its {len(test)} images; a random row, where present, uses "
            "the same numbers of images. Same recipe as the shipped detector; one seed, one split each. Calibration and threshold "
            "from the random 5-fold CV. Held-out classes: " +
            "; ".join(f"{r['split']}: {r['test_classes']}" for r in rows) + ".")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"note": note, "rows": rows, "columns": COLUMNS}, indent=1, default=float), encoding="utf-8")
    print(note)


if __name__ == "__main__":
    main()
