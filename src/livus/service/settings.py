"""Service settings: :class:`livus.config.ServiceConfig` from YAML, environment and CLI flags."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from livus.config import ServiceConfig, load_config
from livus.service.auth import validate_department

DATA_DIR_ENV = "LIVUS_DATA_DIR"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def load_service_config(path: str | Path | None = None, **overrides: object) -> ServiceConfig:
    """YAML file (or defaults) → ``$LIVUS_DATA_DIR`` → non-``None`` ``overrides`` (CLI flags).

    The data directory may not lie inside the installed package (``ValueError``).
    """
    cfg = load_config(path, ServiceConfig)
    env_dir = os.environ.get(DATA_DIR_ENV)
    if env_dir:
        cfg.data_dir = env_dir
    given = {k: v for k, v in overrides.items() if v is not None}
    cfg = dataclasses.replace(cfg, **given)
    data = Path(cfg.data_dir).resolve()
    if data == PACKAGE_DIR or PACKAGE_DIR in data.parents:
        raise ValueError(f"data directory {data} lies inside the livus package; choose another (--data-dir)")
    if cfg.language not in ("zh", "en"):
        raise ValueError("service language must be zh or en")
    for department in (cfg.pacs_department or "", cfg.dicom_default_department, *cfg.dicom_departments.values()):
        validate_department(department)
    return cfg
