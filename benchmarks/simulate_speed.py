"""Simulator speed: labelled 512×512 stills per second on one core (prints images/s).

Usage: python benchmarks/simulate_speed.py [--n 60] [--profile sonora_c5]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from livus.simulate.profiles import PROFILES, get_profile  # noqa: E402
from livus.simulate.still import GeometryCache, overlay_info_for, simulate_still  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--profile", default=None, help="one profile (default: all, round robin)")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    from datetime import datetime

    names = [args.profile] if args.profile else list(PROFILES)
    cache = GeometryCache()
    geoms = {n: cache.get(get_profile(n), (512, 512)) for n in names}  # built once, as in a dataset run
    rng = np.random.default_rng(0)
    when = datetime(2023, 5, 6, 7, 8, 9)
    simulate_still(rng, geoms[names[0]])  # warm-up
    t0 = time.perf_counter()
    n_lesions = 0
    for i in range(args.n):
        name = names[i % len(names)]
        sim = simulate_still(rng, geoms[name], info=overlay_info_for(get_profile(name), "DOE^JOHN", "P1", when))
        n_lesions += len(sim.lesions)
    dt = time.perf_counter() - t0
    print(f"profiles: {', '.join(names)}")
    print(f"{args.n} labelled 512x512 images (with overlays, {n_lesions} lesions) in {dt:.2f} s "
          f"-> {args.n / dt:.1f} images/s on one core")


if __name__ == "__main__":
    main()
