"""Frames the quality gate must reject, generated with OpenCV/numpy (tests and
``benchmarks/quality_gate.py``): non-ultrasound images, blank frames, Doppler-coloured and
frozen frames, and simulated B-mode clip frames labelled good / shadowed / out_of_liver.

Every generator returns a :class:`livus.types.Frame` built the way the readers build one (grey
pixels + colour mask from ``livus.io.grey.to_grey``), so colour images behave as on real input.
"""

from __future__ import annotations

import cv2
import numpy as np

from livus.io.grey import to_grey
from livus.types import Frame


def frame_from_bgr(bgr: np.ndarray, source: str) -> Frame:
    grey, colour = to_grey(bgr, channel_order="bgr")
    return Frame(pixels=grey, source=source, color_mask=colour)


def photo_like(seed: int = 0, w: int = 640, h: int = 480) -> Frame:
    """Natural-photo-like: smooth colour gradients (sky/ground), soft-edged shapes, colour."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c0, c1 = rng.uniform(40, 230, 3), rng.uniform(40, 230, 3)
    t = (yy / h)[..., None]
    img = (1 - t) * c0 + t * c1 + 20 * np.sin(xx / w * rng.uniform(2, 6))[..., None]
    for _ in range(int(rng.integers(3, 7))):
        colour = tuple(float(v) for v in rng.uniform(0, 255, 3))
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        if rng.random() < 0.5:
            cv2.circle(img, centre, int(rng.integers(20, 120)), colour, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(img, centre, (centre[0] + int(rng.integers(30, 200)), centre[1] + int(rng.integers(30, 150))), colour, -1)
    img = cv2.GaussianBlur(img, (0, 0), 2.0) + rng.normal(0, 1.5, img.shape)
    return frame_from_bgr(np.clip(img, 0, 255).astype(np.uint8), f"photo_{seed}")


def grey_textured_photo(seed: int = 0, w: int = 640, h: int = 480, texture_grey: float = 12.0) -> Frame:
    """A grey photo-like image with fine texture everywhere (no colour, no flat regions)."""
    rng = np.random.default_rng(seed)
    base = photo_like(seed, w, h).pixels.astype(np.float32)
    tex = cv2.GaussianBlur(rng.normal(0, texture_grey, base.shape).astype(np.float32), (0, 0), 1.2)
    return Frame(pixels=np.clip(base + tex, 0, 255).astype(np.uint8), source=f"grey_photo_{seed}")


def screenshot_like(seed: int = 0, w: int = 800, h: int = 600) -> Frame:
    """Screenshot-like: flat background, window boxes with title bars, text lines, buttons."""
    rng = np.random.default_rng(seed)
    bg = tuple(int(v) for v in rng.integers(180, 250, 3))
    img = np.full((h, w, 3), bg, np.uint8)
    for _ in range(int(rng.integers(2, 4))):
        x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
        x1, y1 = x0 + int(rng.integers(200, w // 2)), y0 + int(rng.integers(150, h // 2))
        cv2.rectangle(img, (x0, y0), (x1, y1), (255, 255, 255), -1)
        cv2.rectangle(img, (x0, y0), (x1, y0 + 24), tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
        cv2.rectangle(img, (x0, y0), (x1, y1), (90, 90, 90), 1)
        for k in range(int(rng.integers(3, 9))):
            y = y0 + 46 + 20 * k
            if y > y1 - 8:
                break
            cv2.putText(img, "Lorem ipsum 12:34 report.pdf", (x0 + 8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
        cv2.rectangle(img, (x1 - 80, y1 - 34), (x1 - 10, y1 - 10), (200, 120, 30), -1)
    return frame_from_bgr(img, f"screenshot_{seed}")


def uniform_noise(seed: int = 0, w: int = 640, h: int = 480) -> Frame:
    """Uniform random grey noise 0–255 (no speckle grain)."""
    rng = np.random.default_rng(seed)
    return Frame(pixels=rng.integers(0, 256, (h, w), dtype=np.uint8), source=f"noise_{seed}")


def blank_frame(value: int = 0, w: int = 640, h: int = 480, noise_grey: float = 0.0, seed: int = 0) -> Frame:
    """One grey level everywhere (0 = black), optionally with a little sensor noise."""
    rng = np.random.default_rng(seed)
    px = np.full((h, w), value, np.float32) + rng.normal(0, noise_grey, (h, w))
    return Frame(pixels=np.clip(px, 0, 255).astype(np.uint8), source=f"blank_{value}")


def doppler_frame(grey: np.ndarray, fan_mask: np.ndarray, seed: int = 0) -> Frame:
    """A B-mode frame with a colour-Doppler box (red/blue flow blobs) drawn inside its fan."""
    rng = np.random.default_rng(seed)
    bgr = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    ys, xs = np.nonzero(fan_mask)
    cy, cx = int(np.median(ys)), int(np.median(xs))
    bh, bw = int(0.25 * (ys.max() - ys.min())), int(0.25 * (xs.max() - xs.min()))
    box = np.zeros(grey.shape, np.uint8)
    box[cy - bh // 2: cy + bh // 2, cx - bw // 2: cx + bw // 2] = 1
    flow = cv2.GaussianBlur(rng.normal(0, 1, grey.shape).astype(np.float32), (0, 0), 6)
    flow /= flow.std() + 1e-6
    red = (flow > 0.5) & (box > 0) & (fan_mask > 0)
    blue = (flow < -0.5) & (box > 0) & (fan_mask > 0)
    bgr[red] = (30, 30, 220)
    bgr[blue] = (220, 80, 20)
    cv2.rectangle(bgr, (cx - bw // 2, cy - bh // 2), (cx + bw // 2, cy + bh // 2), (0, 200, 200), 1)
    return frame_from_bgr(bgr, f"doppler_{seed}")


def simulated_clip_frames(seed: int = 0, n_frames: int = 12, profile: str = "sonora_c5",
                          size: tuple[int, int] = (512, 384)) -> list[tuple[Frame, np.ndarray, str]]:
    """Frames of one simulated B-mode clip as ``(frame, true fan mask, quality label)`` with the
    simulator's labels good / shadowed / out_of_liver (``SimulatedImage.extra["quality"]``)."""
    from livus.shapes import polygon_mask
    from livus.simulate.clips import simulate_bmode_clip
    from livus.simulate.profiles import get_profile
    from livus.simulate.scenes import sample_scene
    from livus.simulate.still import GeometryCache

    rng = np.random.default_rng(seed)
    geom = GeometryCache().get(get_profile(profile), size)
    scene = sample_scene(rng, geom, "benign")
    frames = simulate_bmode_clip(rng, geom, scene, n_frames, 10.0, None)
    out = []
    for i, sim in enumerate(frames):
        h, w = sim.image.shape
        fan = polygon_mask(sim.geom.fan_polygon, w, h)
        out.append((Frame(pixels=sim.image, source=f"sim_{seed}", frame_index=i), fan, str(sim.extra["quality"])))
    return out
