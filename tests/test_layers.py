"""Layering: the runtime side (io, preprocess, models, infer) never imports the training package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "livus"
LOWER = ("io", "preprocess", "models", "infer")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


@pytest.mark.parametrize("package", LOWER)
def test_runtime_packages_do_not_import_training(package: str):
    offenders = {str(p.relative_to(SRC)): sorted(n for n in _imports(p) if n == "livus.train" or n.startswith("livus.train."))
                 for p in (SRC / package).rglob("*.py")}
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"{package} imports livus.train: {offenders}"
