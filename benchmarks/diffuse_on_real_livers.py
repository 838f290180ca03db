"""Diffuse-disease patterns drawn onto REAL livers: does the detector's restraint on diseased
livers carry over from the simulator's texture to real texture?

``benchmarks/diffuse_false_positives.py`` asks it of simulated livers, whose speckle is the
simulator's own; a detector trained on that simulator may have learnt "simulated texture: no
lesion". Here each CV fold's held-out AUL images get every diffuse-disease group of that
benchmark (steatosis 1-3, fibrosis F1-F4, schistosomal 1-3, steatosis with fibrosis; one random
draw per image and group) drawn onto their own liver with ``livus.simulate.diffuse_on_real``
(the simulator's fields as a grey offset on the real speckle; lesions keep their appearance),
and the fold's model (which never saw these images) analyses them with a score calibration and
report threshold fitted on the other folds. Printed per group, with Wilson 95 % intervals:
- AUL normal livers (lesion-free): the share with a reported lesion (issue 21's figure);
- AUL livers with lesions: the lesions found (match rule of the AUL figures) and the false
  positives per image.
The row "as acquired" is the images unchanged. The drawn patterns are the simulator's idea of
each grade on real speckle, not real diseased livers.

Usage: python benchmarks/diffuse_on_real_livers.py --data DATASET --cv runs/cv_hn4
           [--lesion-images-per-fold 40] [--json benchmarks/results/diffuse_on_real_livers.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diffuse_false_positives import groups, share_interval  # noqa: E402
from diffuse_lesion_sensitivity import add_fold_benchmark_arguments, fold_models, found_and_false  # noqa: E402

from livus.simulate.diffuse import sample_diffuse_spec  # noqa: E402
from livus.simulate.diffuse_on_real import with_diffuse_disease  # noqa: E402
from livus.train.calibration import cross_fitted_operating_point  # noqa: E402

AS_ACQUIRED = "as acquired"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lesion-images-per-fold", type=int, default=40)
    add_fold_benchmark_arguments(ap)
    args = ap.parse_args()
    t0 = time.perf_counter()

    cv, models, preds = fold_models(args)
    specs = [(AS_ACQUIRED, None)] + [(g, s) for g, s in groups(1, 0)]
    pick_rng = np.random.default_rng(args.seed)
    normal_flag: dict[str, list[bool]] = {g: [] for g, _ in specs}
    lesion_rows: dict[str, list[tuple[int, int, int]]] = {g: [] for g, _ in specs}
    for f in cv.folds:
        coefficients, thr = cross_fitted_operating_point(preds, f)
        val, _ = cv.validation(f)
        usable = [i for i in range(len(val)) if val.liver_valid[i]]
        normals = [i for i in usable if val.classes[i] == "normal"]
        with_lesions = [i for i in usable if val.lesion_masks[i].any()]
        with_lesions = [with_lesions[j] for j in sorted(pick_rng.permutation(len(with_lesions))[: args.lesion_images_per_fold])]
        for gi, (group, spec) in enumerate(specs):
            cases = []
            for i in normals + with_lesions:
                image = val.images[i].astype(np.float32)
                if group != AS_ACQUIRED:
                    rng = np.random.default_rng((args.seed, f, int(i), gi))
                    drawn = spec if spec is not None else sample_diffuse_spec(rng, {"mixed": 1.0})
                    image = with_diffuse_disease(rng, image, drawn, val.liver_masks[i], val.valid_masks[i],
                                                 keep_mask=val.lesion_masks[i])
                cases.append({"image": image, "valid": val.valid_masks[i], "instances": val.lesion_masks[i]})
            rows = found_and_false(models[f], coefficients, thr, cases)
            normal_flag[group] += [fp > 0 for _, _, fp in rows[: len(normals)]]
            lesion_rows[group] += rows[len(normals):]
    seconds = time.perf_counter() - t0

    out_rows = {}
    print(f"cv {args.cv}: folds {cv.folds}, seed {args.seed}, up to {args.lesion_images_per_fold} lesion images per fold, "
          f"{seconds:.0f} s")
    print(f"{'group':20s} | {'normals':>7s} {'w/ lesion':>9s} {'share':>6s} {'95% CI':>11s} | "
          f"{'lesions':>7s} {'found':>5s} {'sens':>5s} {'95% CI':>11s} {'FP/img':>6s}")
    for group, _ in specs:
        flags, rows = normal_flag[group], lesion_rows[group]
        n, k = len(flags), int(sum(flags))
        found, total, fps = (int(sum(r[i] for r in rows)) for i in range(3))
        ci_n, ci_l = share_interval(k, n), share_interval(found, total)
        out_rows[group] = {"normal_livers": n, "normal_with_reported_lesion": k, "share": round(k / n, 3), "share_95ci": ci_n,
                           "lesions": total, "found": found, "sensitivity": round(found / total, 3), "sensitivity_95ci": ci_l,
                           "false_positives_per_lesion_image": round(fps / len(rows), 3)}
        print(f"{group:20s} | {n:7d} {k:9d} {k / n:6.2f} {ci_n[0]:.2f}–{ci_n[1]:.2f} | "
              f"{total:7d} {found:5d} {found / total:5.2f} {ci_l[0]:.2f}–{ci_l[1]:.2f} {fps / len(rows):6.2f}")
    if args.json:
        out = {"benchmark": "diffuse_on_real_livers", "cv": args.cv, "folds": cv.folds, "seed": args.seed,
               "lesion_images_per_fold": args.lesion_images_per_fold, "seconds": round(seconds, 1), "by_group": out_rows}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
        print(f"written {args.json}")


if __name__ == "__main__":
    main()
