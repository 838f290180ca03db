"""Loading of livus' own small checkpoints: ``{"kind", "config", "state_dict", "meta"}``.

One reader for every model file the project writes (classifier, CEUS heads): check the
``kind`` tag, rebuild the model from its typed config, restore float32 weights (files may store
float16), attach ``.meta`` and return it in eval mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, TypeVar

import torch
from torch import nn

from livus.config import from_dict

M = TypeVar("M", bound=nn.Module)


def load_kind_checkpoint(path: str | Path, kind: str, what: str, config_cls: type, build: Callable[[Any], M],
                         legacy_defaults: dict[str, Any] | None = None) -> M:
    """Read ``path``, refuse it unless its ``kind`` is ``kind`` (``what`` names the model in the
    error), build the model with ``build(config)`` and load the weights as float32.
    ``legacy_defaults``: config values for fields that files written before those fields existed
    lack (instead of today's defaults)."""
    ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
    if ckpt.get("kind") != kind:
        raise ValueError(f"{path}: not a livus {what} checkpoint (kind={ckpt.get('kind')!r})")
    model = build(from_dict(config_cls, {**(legacy_defaults or {}), **ckpt["config"]}))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()})
    model.meta = ckpt.get("meta", {})
    return model.eval()
