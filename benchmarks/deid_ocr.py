"""Burned-in identity in simulated frames: what the OCR redaction removes, keeps and costs.

Run: ``.venv/bin/python benchmarks/deid_ocr.py [N]`` — N simulated stills (default 8, scanner
profiles in turn) with the patient's name, ID and date printed by the simulated scanner outside
the fan and a name, date and CJK name burned INTO the fan (``tests/report/deid_images.py``).
Prints per image: PHI tokens the OCR reads before and after :func:`redact_burned_in_text`,
whether the result was verified clean, the share of fan pixels blacked out, and CPU seconds
(one ONNX Runtime thread).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "report"))
from deid_images import PHI_TOKENS, frame_with_phi, readable_phi  # noqa: E402

from livus.report.ocr import TextReader  # noqa: E402
from livus.report.redact_pixels import redact_burned_in_text  # noqa: E402
from livus.simulate.profiles import PROFILES  # noqa: E402


def main(n: int = 8) -> None:
    reader = TextReader()
    names = list(PROFILES)
    rows = []
    for i in range(n):
        profile = names[i % len(names)]
        size = PROFILES[profile].image_size
        image = frame_with_phi(seed=i, profile=profile, size=size)
        before = readable_phi(image, reader)
        t0 = time.process_time()
        result = redact_burned_in_text(image, reader=reader)
        cpu_s = time.process_time() - t0
        after = readable_phi(result.image, reader)
        fan = image > 0
        fan[:, : int(0.2 * image.shape[1])] = False  # leave out the scanner text block on the left
        blacked = float(np.mean(result.image[fan] == 0) - np.mean(image[fan] == 0))
        rows.append((len(before), len(after), result.clean, blacked, cpu_s))
        print(f"{profile:14s} {size[0]}x{size[1]}  readable before {len(before)}/{len(PHI_TOKENS)}  after {len(after)}"
              f"  clean {result.clean}  lines {result.n_text_lines:2d}  fan blacked {blacked:5.1%}  cpu {cpu_s:5.1f} s")
    arr = np.array(rows, dtype=float)
    print(f"{n} images: PHI tokens readable before {int(arr[:, 0].sum())}, after {int(arr[:, 1].sum())}; "
          f"verified clean {int(arr[:, 2].sum())}/{n}; fan blacked median {np.median(arr[:, 3]):.1%} "
          f"(max {arr[:, 3].max():.1%}); cpu median {np.median(arr[:, 4]):.1f} s per image")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8)
