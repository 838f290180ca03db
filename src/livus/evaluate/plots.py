"""Metric plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_froc(fp_per_image: np.ndarray, sensitivity: np.ndarray, path: Path, title: str = "FROC") -> Path:
    """Write the FROC curve (sensitivity vs false positives per image, log x) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    x = np.maximum(np.asarray(fp_per_image, float), 1e-3)
    ax.step(x, sensitivity, where="post", color="tab:blue")
    for r in (0.1, 0.25, 0.5, 1.0):
        ax.axvline(r, color="0.8", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlim(0.01, max(2.0, float(x.max()) if len(x) else 2.0))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("false positives per image")
    ax.set_ylabel("sensitivity")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
