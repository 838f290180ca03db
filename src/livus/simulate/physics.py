"""B-mode image formation: scatterers → PSF → attenuation/TGC → envelope → log compression →
scan conversion (convex sector or linear).

Everything is simulated on a polar grid (depth sample × beam) that is then scan-converted to
the exported image with ``cv2.remap``. The PSF is separable and Gaussian in the complex
baseband (so convolving complex Gaussian scatterers gives a complex Gaussian field, i.e. fully
developed speckle with a Rayleigh envelope); its lateral width grows away from the focus and
is applied as a few depth bands blended row by row (OpenCV's Gaussian blur is used because it
is separable and far faster than a general space-variant convolution).

Coordinate frames:

* phantom frame ``(X, Z)`` in mm: X lateral (0 on the probe's centre line, + to the image's
  right), Z depth below the skin at the centre line (+ down);
* image frame ``(u, v)`` in pixels of the exported image (u right, v down):
  ``u = u0 + X / spacing``, ``v = v_skin + Z / spacing`` — the scan conversion is a pure
  scaling, so shapes defined in mm map linearly to pixels;
* polar grid ``(i, j)``: row i = depth sample along the beam, column j = beam.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from livus.simulate.profiles import ScannerProfile

NOMINAL_LIVER_ATTEN_DB_CM_MHZ = 0.5
"""Attenuation the scanner's TGC compensates (normal liver)."""


@dataclass
class ScanGeometry:
    """Probe geometry and the precomputed maps between polar grid, phantom and image."""

    profile: ScannerProfile
    width: int
    height: int
    spacing_mm: float  # isotropic mm per pixel of the exported image
    u0: float  # image column of the centre line
    v_skin: float  # image row of the skin at the centre line
    depth_mm: np.ndarray  # (n_r,) depth of each polar row below the skin, along the beam
    beam: np.ndarray  # (n_b,) beam angle (rad, convex) or lateral position (mm, linear)
    X: np.ndarray  # (n_r, n_b) phantom X of each polar sample (mm)
    Z: np.ndarray  # (n_r, n_b) phantom Z of each polar sample (mm)
    map_x: np.ndarray  # (H, W) float32 polar column for each image pixel
    map_y: np.ndarray  # (H, W) float32 polar row for each image pixel
    fan_mask: np.ndarray  # (H, W) uint8 0/1
    fan_polygon: list[list[float]]

    @property
    def convex(self) -> bool:
        return self.profile.probe == "convex"

    @property
    def shape_polar(self) -> tuple[int, int]:
        return self.X.shape

    def mm_to_px(self, X: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Phantom mm → image pixel coordinates (u, v)."""
        return self.u0 + np.asarray(X) / self.spacing_mm, self.v_skin + np.asarray(Z) / self.spacing_mm

    def px_to_mm(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image pixel coordinates (u, v) → phantom mm (X, Z)."""
        return (np.asarray(u) - self.u0) * self.spacing_mm, (np.asarray(v) - self.v_skin) * self.spacing_mm

    def in_fan_mm(self, X: np.ndarray, Z: np.ndarray, margin_mm: float = 0.0) -> np.ndarray:
        """Whether phantom points lie inside the imaged region (shrunk by ``margin_mm``)."""
        p = self.profile
        X = np.asarray(X, float)
        Z = np.asarray(Z, float)
        if self.convex:
            r = np.hypot(X, Z + p.radius_mm) - p.radius_mm
            th = np.arctan2(X, Z + p.radius_mm)
            half = np.radians(p.fan_angle_deg) / 2
            lat = (half - np.abs(th)) * (r + p.radius_mm)
            return (r > margin_mm) & (r < p.depth_mm - margin_mm) & (lat > margin_mm)
        return (Z > margin_mm) & (Z < p.depth_mm - margin_mm) & (np.abs(X) < p.width_mm / 2 - margin_mm)


def build_geometry(profile: ScannerProfile, size: tuple[int, int] | None = None, u_offset_frac: float = 0.0,
                   polar_scale: float = 1.0) -> ScanGeometry:
    """Lay the probe's field of view into a ``(width, height)`` image and precompute the maps.

    ``u_offset_frac`` shifts the fan horizontally (fraction of the width); ``polar_scale``
    scales the polar grid resolution (1 = about one polar sample per output pixel in depth).
    """
    W, H = size or profile.image_size
    p = profile
    if p.probe == "convex":
        half = np.radians(p.fan_angle_deg) / 2
        fan_w_mm = 2 * (p.radius_mm + p.depth_mm) * np.sin(half)
        fan_h_mm = p.radius_mm + p.depth_mm - p.radius_mm * np.cos(half)
    else:
        fan_w_mm, fan_h_mm = p.width_mm, p.depth_mm
    spacing = max(p.depth_mm / (p.fan_height_frac * H), fan_w_mm / (0.88 * W), fan_h_mm / (0.92 * H))
    v_skin = p.fan_top_frac * H
    u0 = W / 2 + u_offset_frac * W

    # polar grid
    n_r = int(np.clip(round(p.depth_mm / spacing * polar_scale), 64, 1200))
    depth = (np.arange(n_r) + 0.5) * (p.depth_mm / n_r)
    if p.probe == "convex":
        arc_mid = (p.radius_mm + 0.6 * p.depth_mm) * 2 * half
        n_b = int(np.clip(round(arc_mid / max(p.lateral_res_mm / 2.2, 1.5 * spacing) * polar_scale), 64, 600))
        beam = np.linspace(-half, half, n_b)
        rr = p.radius_mm + depth[:, None]
        X = rr * np.sin(beam[None, :])
        Z = rr * np.cos(beam[None, :]) - p.radius_mm
    else:
        n_b = int(np.clip(round(p.width_mm / max(p.lateral_res_mm / 2.2, 1.5 * spacing) * polar_scale), 64, 600))
        beam = np.linspace(-p.width_mm / 2, p.width_mm / 2, n_b)
        X = np.broadcast_to(beam[None, :], (n_r, n_b)).copy()
        Z = np.broadcast_to(depth[:, None], (n_r, n_b)).copy()

    uu, vv = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    Xi = (uu - u0) * spacing
    Zi = (vv - v_skin) * spacing
    dd = p.depth_mm / n_r
    if p.probe == "convex":
        r = np.hypot(Xi, Zi + p.radius_mm) - p.radius_mm
        th = np.arctan2(Xi, Zi + p.radius_mm)
        map_y = r / dd - 0.5
        map_x = (th - beam[0]) / (beam[1] - beam[0])
    else:
        map_y = Zi / dd - 0.5
        map_x = (Xi - beam[0]) / (beam[1] - beam[0])
    inside = (map_y >= -0.5) & (map_y <= n_r - 0.5) & (map_x >= 0) & (map_x <= n_b - 1)
    map_x = np.where(inside, map_x, -10).astype(np.float32)
    map_y = np.where(inside, np.clip(map_y, 0, n_r - 1), -10).astype(np.float32)
    fan_mask = inside.astype(np.uint8)
    fan_polygon = _fan_polygon(p, u0, v_skin, spacing)
    return ScanGeometry(p, W, H, spacing, u0, v_skin, depth, beam, X.astype(np.float32), Z.astype(np.float32),
                        map_x, map_y, fan_mask, fan_polygon)


def _fan_polygon(p: ScannerProfile, u0: float, v_skin: float, spacing: float, n_arc: int = 24) -> list[list[float]]:
    """Outline of the imaged region in image pixels (clockwise from the top-left corner)."""
    if p.probe == "convex":
        half = np.radians(p.fan_angle_deg) / 2
        t = np.linspace(-half, half, n_arc)
        top = [(p.radius_mm * np.sin(a), p.radius_mm * np.cos(a) - p.radius_mm) for a in t]
        bot = [((p.radius_mm + p.depth_mm) * np.sin(a), (p.radius_mm + p.depth_mm) * np.cos(a) - p.radius_mm) for a in t[::-1]]
        pts = top + bot
    else:
        w = p.width_mm / 2
        pts = [(-w, 0.0), (w, 0.0), (w, p.depth_mm), (-w, p.depth_mm)]
    return [[round(float(u0 + x / spacing), 2), round(float(v_skin + z / spacing), 2)] for x, z in pts]


@dataclass
class EchoMaps:
    """Tissue properties on the polar grid (all ``(n_r, n_b)`` float32).

    ``echo``: backscatter amplitude (normal liver = 1); ``atten``: attenuation in dB/cm/MHz;
    ``extra``: amplitude added after attenuation (reverberation artefacts; may be None).
    """

    echo: np.ndarray
    atten: np.ndarray
    extra: np.ndarray | None = None


def gaussian_sigma_samples(fwhm_mm: float, step_mm: float) -> float:
    """Gaussian sigma in samples for a PSF of full width at half maximum ``fwhm_mm``."""
    return max(fwhm_mm / 2.3548 / step_mm, 0.35)


def lateral_fwhm_mm(profile: ScannerProfile, depth_mm: np.ndarray) -> np.ndarray:
    """Lateral PSF width: narrowest at the focus, widening with the distance from it
    (Gaussian-beam like, with a depth of field proportional to the focal width)."""
    f = profile.lateral_res_mm
    dof = 8.0 * f * f / (1.54 / profile.freq_mhz) / 4.0  # ≈ 2 λ F#² style, in mm
    return f * np.sqrt(1.0 + ((depth_mm - profile.focus_mm) / max(dof, 5.0)) ** 2)


def scatterers(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Complex Gaussian scatterer field as a float32 ``(n_r, n_b, 2)`` array (re, im), unit
    variance per component."""
    return rng.standard_normal((*shape, 2), dtype=np.float32)


def beamform(geom: ScanGeometry, field: np.ndarray, n_bands: int = 4) -> np.ndarray:
    """Convolve a complex field ``(n_r, n_b, 2)`` with the depth-dependent PSF.

    The output is normalised so that unit-variance white scatterers give unit-variance output
    per component (so a homogeneous region of echo amplitude ``a`` has E|env|² = 2a²).
    """
    p = geom.profile
    n_r, n_b = geom.shape_polar
    dd = p.depth_mm / n_r
    s_ax = gaussian_sigma_samples(p.axial_res_mm, dd)
    lat_mm = lateral_fwhm_mm(p, geom.depth_mm)
    if geom.convex:
        beam_mm = (p.radius_mm + geom.depth_mm) * (geom.beam[1] - geom.beam[0])
    else:
        beam_mm = np.full(n_r, geom.beam[1] - geom.beam[0])
    s_lat_rows = np.maximum(lat_mm / 2.3548 / beam_mm, 0.35)
    bands = np.geomspace(s_lat_rows.min(), s_lat_rows.max() * 1.0001, n_bands)
    out = np.zeros_like(field)
    idx = np.clip(np.searchsorted(bands, s_lat_rows) - 1, 0, n_bands - 2)
    w_hi = np.clip((np.log(s_lat_rows) - np.log(bands[idx])) / (np.log(bands[idx + 1]) - np.log(bands[idx])), 0, 1)
    for k, s_lat in enumerate(bands):
        rows = np.nonzero((idx == k) | (idx + 1 == k))[0]
        if rows.size == 0:
            continue
        lo = max(rows[0] - int(4 * s_ax) - 2, 0)
        hi = min(rows[-1] + int(4 * s_ax) + 3, n_r)
        blurred = cv2.GaussianBlur(field[lo:hi], (0, 0), sigmaX=float(s_lat), sigmaY=float(s_ax),
                                   borderType=cv2.BORDER_REFLECT)
        blurred *= np.float32(np.sqrt(4 * np.pi * s_lat * s_ax))
        w = np.where(idx[rows] == k, 1 - w_hi[rows], w_hi[rows]).astype(np.float32)
        # linear blend of two neighbouring bands (strongly correlated fields, so the
        # variance stays ≈ 1)
        out[rows] += blurred[rows - lo] * w[:, None, None]
    return out


def envelope(field: np.ndarray) -> np.ndarray:
    """Envelope |re + i·im| of a complex field ``(..., 2)``."""
    return np.sqrt(field[..., 0] ** 2 + field[..., 1] ** 2)


def two_way_attenuation(geom: ScanGeometry, atten_db_cm_mhz: np.ndarray) -> np.ndarray:
    """Two-way amplitude factor along each beam: exp of the integrated attenuation above."""
    p = geom.profile
    dd_cm = p.depth_mm / geom.shape_polar[0] / 10.0
    one_way_db = np.cumsum(atten_db_cm_mhz * (p.freq_mhz * dd_cm), axis=0, dtype=np.float32)
    return np.power(np.float32(10.0), -2.0 * one_way_db / 20.0).astype(np.float32)


def tgc_gain(geom: ScanGeometry) -> np.ndarray:
    """Time-gain compensation (amplitude factor per depth row): undoes the nominal liver
    attenuation plus the profile's TGC error (dB/cm)."""
    p = geom.profile
    d_cm = geom.depth_mm / 10.0
    db = 2 * NOMINAL_LIVER_ATTEN_DB_CM_MHZ * p.freq_mhz * d_cm + p.tgc_error_db_per_cm * d_cm
    return np.power(10.0, db / 20.0).astype(np.float32)


def rf_envelope(geom: ScanGeometry, maps: EchoMaps, rng: np.random.Generator,
                scat: np.ndarray | None = None) -> np.ndarray:
    """Envelope on the polar grid (linear amplitude, TGC applied, before log compression)."""
    p = geom.profile
    if scat is None:
        scat = scatterers(rng, geom.shape_polar)
    amp = maps.echo * two_way_attenuation(geom, maps.atten)
    if maps.extra is not None:
        amp = amp + maps.extra
    field = beamform(geom, scat * amp[..., None])
    tgc = tgc_gain(geom)
    noise = rng.standard_normal(field.shape, dtype=np.float32) * np.float32(p.noise_level)
    field += noise / tgc[:, None, None]
    return envelope(field) * tgc[:, None]


DISPLAY_DR_SCALE = 0.75
"""Displayed dynamic range as a fraction of the preset's nominal one (scanners' grey maps are
steeper than a linear dB map); tuned toward AUL's grey-level spread."""


def log_compress(env: np.ndarray, dynamic_range_db: float, gain_db: float, liver_grey: float = 80.0) -> np.ndarray:
    """Log compression to 0–255 (float32): normal liver speckle (E|env|² = 2) maps to a mean
    grey of about ``liver_grey``; ``dynamic_range_db`` spans the 256 grey levels."""
    dynamic_range_db = dynamic_range_db * DISPLAY_DR_SCALE
    db = 20.0 * np.log10(env + 1e-6)
    offset = liver_grey * dynamic_range_db / 255.0 - 0.5  # mean 20log10 Rayleigh(E R²=2) ≈ +0.5 dB
    return np.clip((db + gain_db + offset) * (255.0 / dynamic_range_db), 0, 255).astype(np.float32)


def scan_convert(geom: ScanGeometry, polar: np.ndarray) -> np.ndarray:
    """Polar grid image → exported image (float32, 0 outside the fan), bilinear."""
    return cv2.remap(polar, geom.map_x, geom.map_y, interpolation=cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)


SPECKLE_REDUCTION_SIGMA = 2.0
"""Gaussian sigma (polar samples) of the scanner's speckle-reduction filter applied to the
log-compressed image; tuned so the displayed speckle SNR moves toward real exports (AUL)."""


def display(geom: ScanGeometry, env: np.ndarray, liver_grey: float = 80.0,
            speckle_reduction: float = SPECKLE_REDUCTION_SIGMA) -> np.ndarray:
    """Envelope (polar) → 8-bit grey exported image (fan only; overlays are added later)."""
    p = geom.profile
    logc = log_compress(env, p.dynamic_range_db, p.gain_db, liver_grey)
    if speckle_reduction > 0:
        logc = cv2.GaussianBlur(logc, (0, 0), speckle_reduction)
    grey = scan_convert(geom, logc)
    if p.smoothing_px > 0:
        grey = cv2.GaussianBlur(grey, (0, 0), p.smoothing_px)
    if p.grey_gamma != 1.0:
        grey = 255.0 * np.power(grey / 255.0, p.grey_gamma)
    grey *= geom.fan_mask
    return np.clip(grey + 0.5, 0, 255).astype(np.uint8)
