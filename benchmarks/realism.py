"""Realism, measured: simple statistics of simulated images vs the real AUL images.

Prints one table: grey-level statistics inside the fan (mean, std, 5/50/95th percentiles and
the Wasserstein distance of the fan histograms to AUL's), speckle SNR (mean/std) of the
displayed image in homogeneous 16×16 liver patches, lesion-to-liver mean-grey ratio by class,
and liver texture (medians of ``livus.infer.liver_background`` measures, pixel size taken from
the fan height on both sides: GLCM contrast at 1 mm, GLCM correlation at 3 mm, band-pass spread
1-4 mm and 2.5-10 mm). ``--diffuse MIX`` (repeatable) adds a row of simulated livers with that
diffuse-disease mix (``livus.simulate.diffuse.parse_mix``, e.g. ``fibrosis:4``).
Usage: python benchmarks/realism.py [--aul ../shared/data/aul] [--n-sim 60] [--diffuse steatosis ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from scipy.stats import wasserstein_distance

from livus.infer.liver_background import liver_measures
from livus.shapes import polygon_mask

PATCH = 16
TEXTURE = {"glcm_c1": "glcm_contrast_1mm", "glcm_r3": "glcm_correlation_3mm", "bp_fine": "bandpass_fine",
           "bp_coarse": "bandpass_coarse"}  # column → livus.infer.liver_background measure


def patch_snrs(img: np.ndarray, region: np.ndarray, rng: np.random.Generator, n: int = 40) -> list[float]:
    """mean/std of the grey values in random ``PATCH``² patches fully inside ``region`` whose
    mean is within ±35 % of the region median (homogeneous parenchyma)."""
    ys, xs = np.nonzero(region)
    if len(ys) == 0:
        return []
    med = float(np.median(img[region]))
    out = []
    for _ in range(n * 4):
        i = int(rng.integers(len(ys)))
        y, x = ys[i], xs[i]
        if y + PATCH > img.shape[0] or x + PATCH > img.shape[1] or not region[y:y + PATCH, x:x + PATCH].all():
            continue
        p = img[y:y + PATCH, x:x + PATCH].astype(np.float64)
        if p.std() > 0 and abs(p.mean() - med) < 0.35 * med:
            out.append(p.mean() / p.std())
        if len(out) >= n:
            break
    return out


class Stats:
    def __init__(self) -> None:
        self.fan_hist = np.zeros(256)
        self.snr: list[float] = []
        self.contrast: dict[str, list[float]] = {"benign": [], "malignant": []}
        self.texture: dict[str, list[float]] = {k: [] for k in TEXTURE}
        self.n = 0

    def add(self, img: np.ndarray, fan: np.ndarray, liver: np.ndarray | None, lesion: np.ndarray | None,
            cls: str, rng: np.random.Generator) -> None:
        self.n += 1
        self.fan_hist += np.bincount(img[fan].ravel(), minlength=256)
        if liver is None:
            return
        parenchyma = liver & ~(lesion if lesion is not None else np.zeros_like(liver))
        if parenchyma.sum() < 500:
            return
        self.snr += patch_snrs(img, parenchyma, rng)
        try:
            m, _ = liver_measures(img, parenchyma, fan, None)
        except ValueError:
            m = {}
        for k, name in TEXTURE.items():
            if name in m:
                self.texture[k].append(m[name])
        if lesion is not None and lesion.any() and cls in self.contrast:
            self.contrast[cls].append(float(img[lesion].mean()) / max(float(img[parenchyma].mean()), 1.0))

    def row(self, ref_hist: np.ndarray | None) -> dict:
        h = self.fan_hist / max(self.fan_hist.sum(), 1)
        cdf = np.cumsum(h)
        g = np.arange(256)
        mean = float((h * g).sum())
        r = {
            "images": self.n,
            "fan_mean": mean,
            "fan_std": float(np.sqrt((h * (g - mean) ** 2).sum())),
            "p5": int(np.searchsorted(cdf, 0.05)),
            "p50": int(np.searchsorted(cdf, 0.5)),
            "p95": int(np.searchsorted(cdf, 0.95)),
            "W1_to_AUL": float(wasserstein_distance(g, g, h, ref_hist)) if ref_hist is not None else 0.0,
            "patch_SNR": float(np.median(self.snr)) if self.snr else float("nan"),
            "benign_ratio": float(np.median(self.contrast["benign"])) if self.contrast["benign"] else float("nan"),
            "malig_ratio": float(np.median(self.contrast["malignant"])) if self.contrast["malignant"] else float("nan"),
            **{k: float(np.median(v)) if v else float("nan") for k, v in self.texture.items()},
        }
        return r


def aul_stats(root: Path, per_class: int, rng: np.random.Generator) -> Stats:
    st = Stats()
    for cls in ("Benign", "Malignant", "Normal"):
        files = sorted((root / cls / "image").glob("*.jpg"), key=lambda p: int(p.stem))[:per_class]
        for f in files:
            img = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
            h, w = img.shape

            def poly(kind: str) -> np.ndarray | None:
                p = root / cls / "segmentation" / kind / f"{f.stem}.json"
                if not p.is_file():
                    return None
                return polygon_mask(json.loads(p.read_text()), w, h) > 0

            fan = poly("outline")
            if fan is None:
                continue
            st.add(img, fan, poly("liver"), poly("mass"), cls.lower(), rng)
    return st


def sim_stats(n: int, seed: int, rng: np.random.Generator, diffuse: str | None = None) -> Stats:
    from livus.simulate.diffuse import parse_mix, sample_diffuse_spec
    from livus.simulate.profiles import PROFILES
    from livus.simulate.scenes import sample_scene
    from livus.simulate.still import GeometryCache, simulate_still

    cache = GeometryCache()
    srng = np.random.default_rng(seed)
    st = Stats()
    names = list(PROFILES)
    for i in range(n):
        geom = cache.get(PROFILES[names[i % len(names)]])
        if diffuse is None:
            sim = simulate_still(srng, geom)
        else:
            spec = sample_diffuse_spec(srng, parse_mix(diffuse))
            sim = simulate_still(srng, geom, scene=sample_scene(srng, geom, diffuse=spec))
        liver = polygon_mask(sim.liver_polygon, geom.width, geom.height) > 0 if sim.liver_polygon else None
        st.add(sim.clean, geom.fan_mask > 0, liver, sim.lesion_mask > 0, sim.image_class, rng)
    return st


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--aul", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "aul"))
    ap.add_argument("--per-class", type=int, default=80, help="AUL images per class")
    ap.add_argument("--n-sim", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--diffuse", action="append", default=[], metavar="MIX",
                    help="also a row of simulated livers with this diffuse-disease mix (repeatable)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    aul = aul_stats(Path(args.aul), args.per_class, rng)
    ref = aul.fan_hist / max(aul.fan_hist.sum(), 1)
    rows = {"AUL (real)": aul.row(ref), "simulated": sim_stats(args.n_sim, args.seed, rng).row(ref)}
    for mix in args.diffuse:
        rows[f"sim {mix}"] = sim_stats(args.n_sim, args.seed, rng, mix).row(ref)
    cols = list(next(iter(rows.values())))
    w = max(12, *(len(k) for k in rows))
    print(f"{'':{w}s} " + " ".join(f"{c:>12s}" for c in cols))
    for name, r in rows.items():
        print(f"{name:{w}s} " + " ".join(f"{r[c]:12.2f}" if isinstance(r[c], float) else f"{r[c]:12d}" for c in cols))


if __name__ == "__main__":
    main()
