"""Fan detector on drawn frames with the hard cases seen on AUL: a flat grey scanner rim, a
dark side, a flat bottom cut, and a linear probe with a ruler touching its side."""

from __future__ import annotations

import cv2
import numpy as np

from livus.preprocess.fan import detect_fan, mask_iou

from .synth import sector_polygon, speckle_frame


def _fill(poly: np.ndarray, w: int, h: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    cv2.fillPoly(m, [np.round(poly * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    return m


def test_flat_grey_rim_is_not_fan() -> None:
    """A constant grey-27 band, 9 px wide, drawn around the sector (as several AUL scanners do)
    is cut away: the detected fan matches the textured sector, not the rim's outer edge."""
    w, h = 720, 576
    img, fan, _ = speckle_frame(w, h, seed=11)
    img = np.maximum(img, 40).astype(np.uint8) * fan  # tissue reaches the edges
    outer = cv2.dilate(fan, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (19, 19)))
    img[(outer > 0) & (fan == 0)] = 27
    det = detect_fan(img).mask
    assert mask_iou(det, fan) > 0.95
    assert mask_iou(det, fan) > mask_iou(det, outer) + 0.02


def test_dark_side_is_mirrored() -> None:
    """One side of the sector is black below the near field (shadow): the symmetric sector model
    still covers it."""
    w, h = 800, 600
    img, fan, _ = speckle_frame(w, h, seed=12)
    img[120:, : w // 2 - 60] = 0
    assert mask_iou(detect_fan(img).mask, fan) > 0.93


def test_flat_bottom_cut() -> None:
    """A sector cut by the bottom of the scanner's image area ends on that row."""
    w, h = 720, 576
    poly = sector_polygon(w, h, apex_y=-60.0, r0=110.0, r1=620.0, half_angle_deg=30.0)
    fan = _fill(poly, w, h)
    fan[470:] = 0
    rng = np.random.default_rng(13)
    img = (np.clip(cv2.GaussianBlur(rng.rayleigh(45.0, (h, w)).astype(np.float32), (0, 0), 1.2), 30, 255)
           .astype(np.uint8) * fan)
    det = detect_fan(img)
    assert det.box_xyxy[3] < 475
    assert mask_iou(det.mask, fan) > 0.95


def test_linear_probe_with_ruler_on_its_side() -> None:
    """Ruler ticks 4 px beside the right side of a linear probe's rectangle do not widen it."""
    img, fan, _ = speckle_frame(800, 600, seed=14, linear=True)  # columns 160..640
    for y in range(40, 560, 40):
        cv2.line(img, (644, y), (655, y), 255, 1)
    det = detect_fan(img)
    assert det.kind == "rectangle"
    assert det.box_xyxy[2] < 646
    assert mask_iou(det.mask, fan) > 0.95


def test_coarse_bright_speckle_is_not_taken_for_marks() -> None:
    """High-contrast speckle (many bright grains) must not be removed as overlay marks, which
    would leave a thin column and a wrong fan."""
    w, h = 320, 240
    rng = np.random.default_rng(15)
    fan = np.zeros((h, w), np.uint8)
    cv2.fillPoly(fan, [np.array([[128, 5], [192, 5], [315, 235], [5, 235]], np.int32)], 1)
    img = fan * rng.gamma(2.0, 50.0, size=(h, w)).clip(0, 255).astype(np.uint8)
    assert mask_iou(detect_fan(img).mask, fan) > 0.93


def test_envelope_counts_in_blocks_match_the_per_candidate_counts() -> None:
    """The RANSAC residual counts made a block of candidates at a time (issue 17) are those of
    each candidate's own residuals, whatever the block size (last block partly filled)."""
    from livus.preprocess.fan import _envelope_counts

    rng = np.random.default_rng(4)
    ys = np.arange(30, 260, dtype=np.float64)
    xs = 50 + 0.3 * ys + rng.normal(0, 2, ys.size)
    a, b = rng.normal(0.3, 0.05, 157), rng.normal(50, 3, 157)
    for outward in (-1.0, 1.0):
        resid = (xs[None, :] - (a[:, None] * ys[None, :] + b[:, None])) * outward
        want = ((resid > 1.5).sum(1), (np.abs(resid) <= 1.5).sum(1))
        for block in (1, 1000, 10**6):
            out, within = _envelope_counts(a, b, ys, xs, outward, 1.5, block)
            assert np.array_equal(out, want[0]) and np.array_equal(within, want[1])


def test_envelope_line_scores_every_candidate_like_the_plain_formula() -> None:
    """The vectorised RANSAC scoring (one in-place residual buffer, issue 17) picks the same
    line as the plain per-candidate formula: residual share outside ≤ 3 %, most inliers."""
    from livus.preprocess.fan import _envelope_line

    rng = np.random.default_rng(3)
    ys = np.arange(40, 300, dtype=np.float64)
    for outward in (-1.0, 1.0):
        xs = 100 + 0.4 * ys - outward * rng.exponential(2.0, ys.size)  # points on or inside the edge
        got = _envelope_line(ys, xs, outward, 1.5, np.random.default_rng(0))
        r = np.random.default_rng(0)  # the same candidate pairs, scored one at a time
        i = r.integers(0, ys.size, 3000)
        j = (i + r.integers(1, ys.size, 3000)) % ys.size
        best, best_score = None, -1
        for a_i, b_i in zip(i, j):
            if abs(ys[b_i] - ys[a_i]) < 5:
                continue
            a = (xs[b_i] - xs[a_i]) / (ys[b_i] - ys[a_i])
            b = xs[a_i] - a * ys[a_i]
            resid = (xs - (a * ys + b)) * outward
            if np.mean(resid > 1.5) <= 0.03 and (score := int(np.sum(np.abs(resid) <= 1.5))) > best_score:
                best, best_score = (a, b), score
        assert got is not None and best is not None and got[1] == best_score
