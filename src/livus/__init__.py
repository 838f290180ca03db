"""livus: find, outline and diagnose focal liver lesions in B-mode ultrasound.

Decision support only: the bundled models are trained on the AUL images (one centre) and
simulated images, and are not validated for clinical use.
"""

__version__ = "0.1.0"
