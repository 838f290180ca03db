"""Named scanner profiles: probe geometry, imaging settings and export image size.

Robustness to a new device can be tested by training on some profiles and testing on others.
All lengths are millimetres, frequencies MHz, image sizes pixels ``(width, height)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class ScannerProfile:
    """One simulated scanner + probe + preset.

    ``probe`` is ``"convex"`` (sector fan from a virtual apex ``radius_mm`` above the skin,
    opening ``fan_angle_deg``) or ``"linear"`` (rectangle ``width_mm`` wide). ``depth_mm`` is the
    imaged depth below the skin. ``lateral_res_mm``/``axial_res_mm`` are PSF FWHM at the focus.
    """

    name: str
    vendor: str
    probe: str
    freq_mhz: float
    depth_mm: float
    focus_mm: float
    dynamic_range_db: float
    gain_db: float
    image_size: tuple[int, int]
    fan_angle_deg: float = 70.0
    radius_mm: float = 50.0
    width_mm: float = 40.0
    axial_res_mm: float = 0.6
    lateral_res_mm: float = 1.6
    noise_level: float = 0.02
    tgc_error_db_per_cm: float = 0.0
    fan_top_frac: float = 0.08
    fan_height_frac: float = 0.86
    smoothing_px: float = 0.0
    grey_gamma: float = 1.0

    def with_size(self, width: int, height: int) -> "ScannerProfile":
        """The same profile exporting ``width × height`` pixel images."""
        return replace(self, image_size=(int(width), int(height)))


PROFILES: dict[str, ScannerProfile] = {
    p.name: p
    for p in (
        ScannerProfile("sonora_c5", "SONORA", "convex", 3.5, 160.0, 70.0, 60.0, 0.0, (1024, 768),
                       fan_angle_deg=68.0, radius_mm=50.0, axial_res_mm=0.7, lateral_res_mm=1.8),
        ScannerProfile("meditone_c3", "MEDITONE", "convex", 2.5, 200.0, 90.0, 55.0, 2.0, (720, 576),
                       fan_angle_deg=60.0, radius_mm=60.0, axial_res_mm=0.9, lateral_res_mm=2.4,
                       noise_level=0.03, tgc_error_db_per_cm=0.15, smoothing_px=0.8),
        ScannerProfile("vistara_c6", "VISTARA", "convex", 5.0, 120.0, 50.0, 66.0, -1.0, (800, 600),
                       fan_angle_deg=75.0, radius_mm=40.0, axial_res_mm=0.5, lateral_res_mm=1.3,
                       noise_level=0.015, grey_gamma=1.15),
        ScannerProfile("echowave_c4m", "ECHOWAVE", "convex", 4.0, 140.0, 60.0, 60.0, 1.0, (640, 480),
                       fan_angle_deg=90.0, radius_mm=22.0, axial_res_mm=0.6, lateral_res_mm=1.7,
                       noise_level=0.025, tgc_error_db_per_cm=-0.1),
        ScannerProfile("sonora_l9", "SONORA", "linear", 9.0, 50.0, 22.0, 62.0, 0.0, (800, 600),
                       width_mm=40.0, axial_res_mm=0.25, lateral_res_mm=0.6, fan_height_frac=0.8,
                       noise_level=0.015),
        ScannerProfile("vistara_l6", "VISTARA", "linear", 6.0, 70.0, 30.0, 58.0, 1.0, (1024, 768),
                       width_mm=45.0, axial_res_mm=0.35, lateral_res_mm=0.9, fan_height_frac=0.82,
                       smoothing_px=0.6),
    )
}

DEFAULT_PROFILE_NAMES: tuple[str, ...] = tuple(PROFILES)


def get_profile(name: str) -> ScannerProfile:
    """Profile by name; ``ValueError`` listing the known names otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown scanner profile {name!r}; known: {', '.join(PROFILES)}") from None
