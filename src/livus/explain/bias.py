"""Attention bias check: how much of an explanation's energy falls where no diagnosis can be.

A heat map (original pixels, ≥ 0) should sit on the lesion and its surroundings. Energy outside
the ultrasound fan or on burned-in overlay pixels (text, calipers, rulers) means the model may
have learnt a shortcut; such results are flagged for review.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class BiasReport:
    """Shares of the heat map's energy (sum of values) in ``[0, 1]``; ``flagged`` when either
    share exceeds ``threshold``."""

    outside_fan: float
    on_overlay: float
    threshold: float
    flagged: bool

    def to_json_dict(self) -> dict[str, float | bool]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def attention_bias(
    heatmap: np.ndarray, fan_mask: np.ndarray | None = None, overlay_mask: np.ndarray | None = None, threshold: float = 0.2
) -> BiasReport:
    """Energy share of ``heatmap`` outside ``fan_mask`` (> 0 = inside the fan) and on
    ``overlay_mask`` (> 0 = burned-in overlay); masks are original-image size, ``None`` = unknown
    (share 0). An all-zero heat map is never flagged."""
    h = np.clip(np.asarray(heatmap, np.float64), 0.0, None)
    total = float(h.sum())

    def share(region: np.ndarray | None, inside: bool) -> float:
        if region is None or total <= 0:
            return 0.0
        if region.shape != h.shape:
            raise ValueError(f"mask shape {region.shape} differs from heat map {h.shape}")
        sel = region > 0 if inside else region <= 0
        return float(h[sel].sum() / total)

    out_fan = share(fan_mask, inside=False)
    on_ovl = share(overlay_mask, inside=True)
    return BiasReport(out_fan, on_ovl, float(threshold), bool(out_fan > threshold or on_ovl > threshold))
