"""Install Debian packages a test needs (chromium, orthanc) from a session fixture: idempotent,
quick when already installed, bounded by timeouts; the caller skips when it fails."""

from __future__ import annotations

import os
import shutil
import subprocess

_UPDATED = {"done": False}


def ensure_debian_package(binary: str, package: str, timeout_s: float = 600) -> str | None:
    """Path of ``binary`` after installing ``package`` if needed; ``None`` (with the reason
    printed) when it cannot be installed here."""
    found = shutil.which(binary)
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(f"cannot install {package}: not root or no apt-get")
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        if not _UPDATED["done"]:
            subprocess.run(["apt-get", "update", "-q"], env=env, timeout=timeout_s, check=True, capture_output=True)
            _UPDATED["done"] = True
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", package], env=env,
                       timeout=timeout_s, check=True, capture_output=True)
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"cannot install {package}: {exc}")
        return None
    return shutil.which(binary)
