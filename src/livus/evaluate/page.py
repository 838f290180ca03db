"""A self-contained HTML page of evaluation figures (``metrics.html`` beside ``metrics.json``).

Plots are embedded as data URIs so the page can be mailed or archived as one file.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

_LABELS = {
    "sensitivity_at_fp": "Lesion sensitivity at FP/image",
    "sensitivity_by_size": "Sensitivity by lesion size (px)",
    "mass_dice": "Mass Dice",
    "liver_dice": "Liver Dice",
    "long_axis_error_px": "Mean |long-axis error| (px)",
    "malignancy_auc": "Malignancy AUC (benign vs malignant)",
    "sensitivity": "Malignancy sensitivity at threshold",
    "specificity": "Malignancy specificity at threshold",
    "ece": "Expected calibration error (10 bins)",
    "three_way_accuracy": "Image label accuracy (normal/benign/malignant)",
}


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    return html.escape(str(v))


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}"><figcaption>{html.escape(path.stem)}</figcaption></figure>'


def write_metrics_page(out_dir: Path, metrics: dict[str, Any], plots: list[Path], title: str = "livus evaluation") -> Path:
    """Write ``out_dir/metrics.html`` listing the known metrics and embedding ``plots``."""
    rows = [f"<tr><th>{html.escape(label)}</th><td>{_fmt(metrics.get(key))}</td></tr>"
            for key, label in _LABELS.items() if key in metrics]
    counts = {k: v for k, v in metrics.items() if k.startswith("n_")}
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}table{{border-collapse:collapse}}
th,td{{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left}}figure{{display:inline-block;margin:8px}}
img{{max-width:480px}}.note{{background:#fff4d6;padding:8px}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="note">Figures computed by <code>livus evaluate</code> from results.jsonl against the labelled dataset.
Decision-support research figures, not a clinical validation.</p>
<table>{''.join(rows)}</table>
<p>Counts: {_fmt(counts)}</p>
{''.join(_img(p) for p in plots if Path(p).is_file())}
</body></html>"""
    path = Path(out_dir) / "metrics.html"
    path.write_text(page, encoding="utf-8")
    return path
