"""Grey-level standardisation inside the fan: percentile stretch or CLAHE, gamma, speckle filters.

All functions take/return images in any pixel frame; ``valid`` masks (0/1, same shape) restrict
statistics to the fan so the black background does not skew them. Outputs of
:func:`normalise` are ``float32`` in ``[0, 1]``.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

NORMALISERS = ("percentile", "clahe", "none")
SPECKLE_FILTERS = ("none", "median", "bilateral", "guided", "nlmeans", "srad")


def _uint8_percentiles(image: np.ndarray, valid: np.ndarray | None, low_pct: float, high_pct: float) -> tuple[float | None, float | None]:
    """``np.percentile`` (linear interpolation) of a ``uint8`` image inside ``valid``, computed
    from its 256-bin histogram: identical values, without sorting the pixels."""
    mask = (valid > 0).astype(np.uint8) if valid is not None and valid.any() else None
    cum = _cumulative_histogram(image, mask)
    n = int(cum[-1])
    if n == 0:
        return None, None
    out = []
    for q in (low_pct, high_pct):
        pos = q / 100.0 * (n - 1)
        k = int(np.floor(pos))
        frac = pos - k
        v_lo = _order_statistic(cum, k)
        v_hi = _order_statistic(cum, min(k + 1, n - 1))
        out.append(v_lo + frac * (v_hi - v_lo))
    return out[0], out[1]


def _cumulative_histogram(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Cumulative 256-bin histogram (exact ``int64`` counts) of a ``uint8`` image, inside
    ``mask`` (nonzero) when given. OpenCV counts in float32, exact below 2**24 pixels; larger
    images are counted by NumPy."""
    if image.size < 2**24:
        hist = cv2.calcHist([np.ascontiguousarray(image)], [0], mask, [256], [0, 256]).ravel().astype(np.int64)
    else:
        hist = np.bincount((image[mask > 0] if mask is not None else image).ravel(), minlength=256)
    return np.cumsum(hist)


def _order_statistic(cum: np.ndarray, k: int) -> float:
    """Value of the ``k``-th smallest (0-based) of the values counted by the cumulative
    histogram ``cum``."""
    return float(np.searchsorted(cum, k, side="right"))


def uint8_percentile(image: np.ndarray, q: float) -> float:
    """``float(np.percentile(image, q))`` of a ``uint8`` image, bit for bit. When the order
    statistics around the rank share one grey level (the usual case for the background level of a
    frame) it is that level, read from the 256-bin histogram without sorting; otherwise
    ``np.percentile`` itself."""
    n = image.size
    if n and image.dtype == np.uint8:
        cum = _cumulative_histogram(image.reshape(-1, 1))
        k = int(np.floor(q / 100.0 * (n - 1)))
        # ranks k and k+1 are what np.percentile interpolates; order statistics are sorted, so the
        # same level at k-1 and k+2 (a margin for rounding of the rank) means one level for all four
        v = {_order_statistic(cum, min(max(r, 0), n - 1)) for r in (k - 1, k + 2)}
        if len(v) == 1:
            return v.pop()
    return float(np.percentile(image, q))


def percentile_stretch(
    image: np.ndarray, valid: np.ndarray | None, low_pct: float = 1.0, high_pct: float = 99.0
) -> np.ndarray:
    """Linear stretch so the ``low_pct``/``high_pct`` grey percentiles inside ``valid`` map to 0/1
    (clipped). Returns ``float32`` in ``[0, 1]``."""
    img = image.astype(np.float32)
    if image.dtype == np.uint8:
        lo, hi = _uint8_percentiles(image, valid, low_pct, high_pct)
        if lo is None:
            return np.zeros_like(img)
    else:
        values = img[valid > 0] if valid is not None and valid.any() else img.ravel()
        if values.size == 0:
            return np.zeros_like(img)
        lo, hi = np.percentile(values, [low_pct, high_pct])
    if hi - lo < 1e-6:
        hi = lo + 1.0
    out = (img - lo) * (1.0 / (hi - lo))
    return np.clip(out, 0.0, 1.0, out=out)


def clahe(image: np.ndarray, valid: np.ndarray | None, clip_limit: float = 2.0, tiles: int = 8) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation (OpenCV) of a ``uint8`` image, then a
    1–99 % stretch inside ``valid``. Returns ``float32`` in ``[0, 1]``."""
    u8 = image if image.dtype == np.uint8 else np.clip(image * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    eq = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tiles, tiles)).apply(u8)
    return percentile_stretch(eq, valid, 1.0, 99.0)


def apply_gamma(image01: np.ndarray, gamma: float) -> np.ndarray:
    """``image ** gamma`` for a ``[0, 1]`` float image (``gamma == 1`` returns the input)."""
    if gamma == 1.0:
        return image01
    return np.power(image01, np.float32(gamma), dtype=np.float32)


def normalise(
    image: np.ndarray,
    valid: np.ndarray | None,
    method: str = "percentile",
    low_pct: float = 1.0,
    high_pct: float = 99.0,
    gamma: float = 1.0,
) -> np.ndarray:
    """Grey normalisation (``percentile`` | ``clahe`` | ``none``) + gamma; zero outside ``valid``.

    ``none`` only rescales ``uint8`` to ``[0, 1]``. Returns ``float32`` in ``[0, 1]``.
    """
    if method == "percentile":
        out = percentile_stretch(image, valid, low_pct, high_pct)
    elif method == "clahe":
        out = clahe(image, valid)
    elif method == "none":
        out = image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 1.0)
    else:
        raise ValueError(f"unknown normalisation {method!r}; choose from {NORMALISERS}")
    out = apply_gamma(out, gamma)
    if valid is not None:
        out = out * (valid > 0)
    return out.astype(np.float32, copy=False)


# --- speckle reduction ----------------------------------------------------------------------


def _to_u8(image: np.ndarray) -> np.ndarray:
    """Float ``[0, 1]`` → ``uint8`` (``uint8`` passes through)."""
    if image.dtype == np.uint8:
        return image
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _like(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Return a filter output (``uint8`` 0–255 or float 0–1) in the dtype/range of ``ref``."""
    if ref.dtype == np.uint8:
        return out if out.dtype == np.uint8 else _to_u8(out)
    if out.dtype == np.uint8:
        return out.astype(np.float32) / 255.0
    return out.astype(np.float32)


def median_filter(image: np.ndarray, ksize: int = 5) -> np.ndarray:
    """OpenCV median blur (fast, removes speckle, rounds corners)."""
    return _like(cv2.medianBlur(_to_u8(image), ksize), image)


def bilateral_filter(image: np.ndarray, d: int = 7, sigma_color: float = 40.0, sigma_space: float = 3.0) -> np.ndarray:
    """OpenCV bilateral filter (``sigma_color`` in 0–255 grey levels)."""
    return _like(cv2.bilateralFilter(_to_u8(image), d, sigma_color, sigma_space), image)


def guided_filter(image: np.ndarray, radius: int = 4, eps: float = 0.01) -> np.ndarray:
    """Self-guided filter (He et al. 2010), ``eps`` on the ``[0, 1]`` grey scale.

    Written with box filters because the OpenCV implementation lives in the contrib package
    (``cv2.ximgproc``), which the project does not depend on; it is six box filters.
    """
    i = image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 1.0)
    k = (2 * radius + 1, 2 * radius + 1)
    mean_i = cv2.boxFilter(i, -1, k)
    mean_ii = cv2.boxFilter(i * i, -1, k)
    var_i = mean_ii - mean_i * mean_i
    a = var_i / (var_i + eps)
    b = mean_i - a * mean_i
    out = cv2.boxFilter(a, -1, k) * i + cv2.boxFilter(b, -1, k)
    return _like(out, image)


def nlmeans_filter(image: np.ndarray, h: float = 12.0, template: int = 7, search: int = 21) -> np.ndarray:
    """OpenCV fast non-local means (``h`` in grey levels); slow, opt-in."""
    return _like(cv2.fastNlMeansDenoising(_to_u8(image), None, h, template, search), image)


def srad_filter(image: np.ndarray, iterations: int = 15, step: float = 0.15, q0_decay: float = 0.5) -> np.ndarray:
    """Speckle-reducing anisotropic diffusion (Yu & Acton 2002).

    Hand-written (vectorised NumPy): neither OpenCV nor scikit-image ships SRAD. ``q0`` (the
    speckle scale) decays as ``exp(-q0_decay * t)``, the usual choice.
    """
    img = image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 1.0)
    i = img + 1e-3
    for n in range(iterations):
        q0_sq = float(np.exp(-q0_decay * n * step)) ** 2
        p = np.pad(i, 1, mode="edge")
        dn = p[:-2, 1:-1] - i
        ds = p[2:, 1:-1] - i
        dw = p[1:-1, :-2] - i
        de = p[1:-1, 2:] - i
        g2 = (dn * dn + ds * ds + dw * dw + de * de) / (i * i)
        lap = (dn + ds + dw + de) / i
        num = 0.5 * g2 - (1.0 / 16.0) * lap * lap
        den = (1.0 + 0.25 * lap) ** 2
        q_sq = num / np.maximum(den, 1e-6)
        c = 1.0 / (1.0 + (q_sq - q0_sq) / (q0_sq * (1.0 + q0_sq)))
        c = np.clip(c, 0.0, 1.0)
        cp = np.pad(c, 1, mode="edge")
        div = cp[2:, 1:-1] * ds + c * dn + cp[1:-1, 2:] * de + c * dw
        i = i + (step / 4.0) * div
    return _like(np.clip(i - 1e-3, 0.0, 1.0), image)


_FILTERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "median": median_filter,
    "bilateral": bilateral_filter,
    "guided": guided_filter,
    "nlmeans": nlmeans_filter,
    "srad": srad_filter,
}


def speckle_filter(image: np.ndarray, method: str = "none") -> np.ndarray:
    """Apply the named edge-keeping speckle filter (see ``SPECKLE_FILTERS``); dtype is kept."""
    if method == "none":
        return image
    try:
        fn = _FILTERS[method]
    except KeyError as exc:
        raise ValueError(f"unknown speckle filter {method!r}; choose from {SPECKLE_FILTERS}") from exc
    return fn(image)
