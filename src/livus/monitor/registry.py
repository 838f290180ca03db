"""Model registry: versions of each model (weights, ONNX, model card, metrics) under a folder
(the service keeps it in ``<data_dir>/models``), one active version per model, rollback.

Layout::

    <root>/<model>/<version>/        weights (e.g. detector.pt), model.onnx, MODEL_CARD.md, metrics.json, meta.json
    <root>/<model>/registry.json     {"active": "v2", "history": ["v1", "v2"]}  (activation order)

A version folder is a ``model_dir`` for :class:`livus.infer.pipeline.FrameAnalyzer`. Writes of
``registry.json`` are atomic (write + rename), so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CARD_FILE = "MODEL_CARD.md"
METRICS_FILE = "metrics.json"
META_FILE = "meta.json"


class RegistryError(ValueError):
    pass


@dataclass
class ModelVersion:
    name: str
    version: str
    path: Path
    files: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    registered_at: str = ""
    active: bool = False
    has_card: bool = False

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "files": self.files, "metrics": self.metrics,
            "registered_at": self.registered_at, "active": self.active, "has_card": self.has_card,
        }


def _check_name(value: str, what: str) -> str:
    if not NAME_RE.match(value or ""):
        raise RegistryError(f"{what} {value!r}: use 1-64 characters of A-Z a-z 0-9 . _ - (not starting with . _ -)")
    return value


class ModelRegistry:
    """Versions of models under ``root`` (created on first write)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ state file
    def _state_path(self, name: str) -> Path:
        return self.root / _check_name(name, "model") / "registry.json"

    def _state(self, name: str) -> dict[str, Any]:
        p = self._state_path(name)
        if not p.is_file():
            return {"active": None, "history": []}
        return json.loads(p.read_text(encoding="utf-8"))

    def _write_state(self, name: str, state: dict[str, Any]) -> None:
        p = self._state_path(name)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".registry-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=1)
        os.replace(tmp, p)

    # ------------------------------------------------------------------ queries
    def models(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and NAME_RE.match(p.name))

    def versions(self, name: str) -> list[ModelVersion]:
        folder = self.root / _check_name(name, "model")
        if not folder.is_dir():
            return []
        active = self._state(name).get("active")
        out = []
        for d in sorted(folder.iterdir()):
            if d.is_dir() and NAME_RE.match(d.name):
                out.append(self._load_version(name, d, active))
        out.sort(key=lambda v: v.registered_at)
        return out

    def _load_version(self, name: str, d: Path, active: str | None) -> ModelVersion:
        meta = json.loads((d / META_FILE).read_text(encoding="utf-8")) if (d / META_FILE).is_file() else {}
        metrics = json.loads((d / METRICS_FILE).read_text(encoding="utf-8")) if (d / METRICS_FILE).is_file() else {}
        files = sorted(f.name for f in d.iterdir() if f.is_file() and f.name != META_FILE)
        return ModelVersion(name, d.name, d, files, metrics, meta.get("registered_at", ""), d.name == active,
                            (d / CARD_FILE).is_file())

    def get(self, name: str, version: str) -> ModelVersion:
        d = self.root / _check_name(name, "model") / _check_name(version, "version")
        if not d.is_dir():
            raise RegistryError(f"model {name!r} has no version {version!r}")
        return self._load_version(name, d, self._state(name).get("active"))

    def active(self, name: str) -> ModelVersion | None:
        v = self._state(name).get("active")
        return self.get(name, v) if v else None

    def history(self, name: str) -> list[str]:
        return list(self._state(name).get("history", []))

    # ------------------------------------------------------------------ changes
    def register(self, name: str, version: str, files: list[str | Path], card: str | Path | None = None,
                 metrics: dict[str, Any] | None = None, activate: bool = False) -> ModelVersion:
        """Copy ``files`` (weights, ONNX...) into a new version folder; a version is never overwritten."""
        d = self.root / _check_name(name, "model") / _check_name(version, "version")
        with self._lock:
            if d.exists():
                raise RegistryError(f"model {name!r} version {version!r} exists already")
            for f in files:
                if not Path(f).is_file():
                    raise RegistryError(f"{f}: no such file")
            tmp = Path(tempfile.mkdtemp(dir=self._ensure(d.parent), prefix=".new-"))
            for f in files:
                shutil.copy2(f, tmp / Path(f).name)
            if card is not None:
                card_path = Path(card)
                text = card_path.read_text(encoding="utf-8") if card_path.is_file() else str(card)
                (tmp / CARD_FILE).write_text(text, encoding="utf-8")
            (tmp / METRICS_FILE).write_text(json.dumps(metrics or {}, indent=1), encoding="utf-8")
            meta = {"registered_at": datetime.now(timezone.utc).isoformat(timespec="microseconds")}
            (tmp / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
            os.replace(tmp, d)
        if activate:
            self.activate(name, version)
        return self.get(name, version)

    @staticmethod
    def _ensure(p: Path) -> Path:
        p.mkdir(parents=True, exist_ok=True)
        return p

    def activate(self, name: str, version: str) -> ModelVersion:
        mv = self.get(name, version)
        with self._lock:
            state = self._state(name)
            if state.get("active") != version:
                state["active"] = version
                state["history"] = [*state.get("history", []), version]
                self._write_state(name, state)
        return self.get(name, mv.version)

    def rollback(self, name: str) -> ModelVersion:
        """Activate the version that was active before the current one."""
        with self._lock:
            state = self._state(name)
            hist = list(state.get("history", []))
            current = state.get("active")
            while hist and hist[-1] == current:
                hist.pop()
            if not hist:
                raise RegistryError(f"model {name!r}: no earlier version to roll back to")
            previous = hist[-1]
            state["active"] = previous
            state["history"] = hist
            self._write_state(name, state)
        return self.get(name, previous)

    def version_key(self, name: str) -> str | None:
        """The active version (cheap; the service checks it before each analysis)."""
        return self._state(name).get("active")
