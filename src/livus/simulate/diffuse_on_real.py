"""Diffuse liver disease drawn onto REAL liver images (model space).

The simulator's diseased livers carry the simulator's own speckle. A detector that learns from
them, or is tested on them, may learn "simulated texture: no lesion" instead of "septa, networks
and coarse texture are not lesions" (the shipped detector finds only a tenth of the simulated
lesions it was trained on, but three quarters of real lesions pasted into simulated livers:
docs/liver_background.md §3). This module draws one liver's diffuse-disease settings
(:func:`livus.simulate.diffuse.draw_diffuse`: coarse echotexture, fibrous septa or the
schistosomal network, darker regenerative cells, steatotic brightness and extra attenuation) and
adds them to a real image's liver as a grey-level offset, so the real speckle stays underneath.

Display model (as ``livus.simulate.physics.log_compress``): an amplitude factor ``a`` is
``20·log10(a)`` dB, and the display maps its dynamic range linearly to grey, so the offset is
``grey_per_db · dB`` in the image's [0, 1] grey. Steatosis' extra attenuation (above the nominal
liver's, which the TGC undoes) darkens with depth below the liver's top: two-way
``(atten - nominal) · f_MHz · depth_cm`` dB, of which the operator's TGC undoes a drawn share.
The fields are blurred by a resolution cell before they are added. Not drawn (they need the scene's geometry): the
nodular surface, the blunted edge and the vessel-wall changes.

Written here because no imaging library models diffuse liver disease; the fields are the
simulator's own, so simulated and real-background livers share one definition of each grade.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from livus.simulate.diffuse import DiffuseSpec, draw_diffuse
from livus.simulate.physics import NOMINAL_LIVER_ATTEN_DB_CM_MHZ


@dataclass(frozen=True)
class RealDisplayRange:
    """Ranges the unknown acquisition of a real model-space image is drawn from."""

    mm_per_px: tuple[float, float] = (0.5, 0.85)  # model pixel size (256 px over a 13-22 cm field)
    grey_per_db: tuple[float, float] = (0.018, 0.026)  # [0, 1] grey per dB: 38-55 dB displayed
    freq_mhz: tuple[float, float] = (2.5, 5.0)  # abdominal convex probes
    field_shift_mm: float = 300.0  # where in the (unbounded) random fields the liver sits
    tgc_compensation: tuple[float, float] = (0.2, 0.7)  # share of the extra attenuation the operator's TGC undoes
    psf_sigma_px: tuple[float, float] = (1.2, 0.7)  # lateral, axial blur of the drawn fields (resolution cell)
    edge_feather_px: float = 2.0  # the offset fades out over the liver outline and lesion borders


def diffuse_grey_offset(
    rng: np.random.Generator, spec: DiffuseSpec, liver_mask: np.ndarray, keep_mask: np.ndarray | None = None,
    beam_mask: np.ndarray | None = None, display: RealDisplayRange = RealDisplayRange(),
) -> np.ndarray:
    """Grey offset (float32, same shape as ``liver_mask``, model pixels, [0, 1] grey units) that
    gives the liver inside ``liver_mask`` the diffuse disease ``spec``. The echotexture and
    brightness change the liver only, and not inside ``keep_mask`` (e.g. annotated lesions, which
    keep their own appearance); the extra attenuation darkens everything below the liver's top
    inside ``beam_mask`` (the fan; default the liver), lesions included, as a beam would."""
    liver = (np.asarray(liver_mask) > 0).astype(np.float32)
    if not liver.any():
        return np.zeros(liver.shape, np.float32)
    d = draw_diffuse(rng, spec)
    mm = float(rng.uniform(*display.mm_per_px))
    grey_per_db = float(rng.uniform(*display.grey_per_db))
    freq = float(rng.uniform(*display.freq_mhz))
    compensated = float(rng.uniform(*display.tgc_compensation))
    sx, sz = rng.uniform(-display.field_shift_mm, display.field_shift_mm, 2)
    h, w = liver.shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    X, Z = cols * mm + np.float32(sx), rows * mm + np.float32(sz)
    texture_db = 20.0 * np.log10(np.maximum(d.parenchyma_echo_factor(X, Z) * d.liver_echo, 1e-3)).astype(np.float32)
    lateral, axial = display.psf_sigma_px
    texture_db = cv2.GaussianBlur(texture_db, (0, 0), sigmaX=lateral, sigmaY=axial)
    top = float(np.nonzero(liver.any(axis=1))[0][0])
    depth_cm = np.clip(rows - top, 0, None) * mm / 10.0
    atten_db = (1.0 - compensated) * 2.0 * (d.liver_atten - NOMINAL_LIVER_ATTEN_DB_CM_MHZ) * freq * depth_cm
    sigma = display.edge_feather_px

    def feathered(mask: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(mask, (0, 0), sigma) if sigma > 0 else mask

    soft_liver = feathered(liver) * liver
    outside_keep = np.ones_like(liver)
    if keep_mask is not None and np.any(keep_mask):
        keep = (np.asarray(keep_mask) > 0).astype(np.float32)
        outside_keep = 1.0 - np.clip(feathered(keep) + keep, 0, 1)
    beam = liver if beam_mask is None else (np.asarray(beam_mask) > 0).astype(np.float32)
    return (grey_per_db * (soft_liver * outside_keep * texture_db - beam * atten_db)).astype(np.float32)


def with_diffuse_disease(
    rng: np.random.Generator, image: np.ndarray, spec: DiffuseSpec, liver_mask: np.ndarray, valid_mask: np.ndarray,
    keep_mask: np.ndarray | None = None, display: RealDisplayRange = RealDisplayRange(),
) -> np.ndarray:
    """``image`` (float [0, 1], model pixels) with ``spec`` drawn onto its liver (inside the fan
    ``valid_mask`` only); see :func:`diffuse_grey_offset`."""
    fan = np.asarray(valid_mask) > 0
    offset = diffuse_grey_offset(rng, spec, np.asarray(liver_mask) * fan, keep_mask, fan, display)
    return np.clip(np.asarray(image, np.float32) + offset, 0.0, 1.0).astype(np.float32)
