"""Label vocabularies shared by the dataset format, the simulator, the networks and the reports.

The order of each tuple is the order of the matching network outputs (e.g. the classifier's
feature head, the detector's image head); changing it changes what the weights mean.
"""

from __future__ import annotations

# Image-level classes (dataset ``image_class``, the detector's image head, the fused image label).
IMAGE_CLASSES = ("normal", "benign", "malignant")

# B-mode lesion features (dataset ``features``, the classifier's feature head, reports).
FEATURE_NAMES = (
    "echo_hypo",
    "echo_iso",
    "echo_hyper",
    "echo_anechoic",
    "margin_ill_defined",
    "halo",
    "posterior_enhancement",
    "posterior_shadowing",
    "heterogeneous",
    "target_sign",
)

# CEUS lesion features (dataset ``ceus``); ``washout`` takes one of ``WASHOUT_VALUES``.
CEUS_FEATURE_NAMES = ("arterial_phase_hyperenhancement", "washout", "capsule_enhancement")
WASHOUT_VALUES = ("none", "late", "early")
