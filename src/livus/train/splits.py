"""Data splits: stratified k-fold over images (each AUL image is a different patient, so an
image split is a patient split)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def stratified_kfold(labels: list[str], k: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train_idx, val_idx) pairs; each class is shuffled and dealt round-robin over the
    folds so every fold keeps the class proportions (±1 image). Written by hand to avoid a
    scikit-learn dependency for ten lines."""
    if k < 2:
        raise ValueError("k-fold needs k >= 2")
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, lab in enumerate(labels):
        by_class[lab].append(i)
    fold_of = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for lab in sorted(by_class):
        idx = np.array(by_class[lab])
        rng.shuffle(idx)
        fold_of[idx] = (np.arange(len(idx)) + offset) % k
        offset += len(idx)
    all_idx = np.arange(len(labels))
    return [(all_idx[fold_of != f], all_idx[fold_of == f]) for f in range(k)]
