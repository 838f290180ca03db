"""Model registry: versions, one active, history, rollback; and the `livus model` commands."""

from __future__ import annotations

import json

import pytest

from livus.cli import main
from livus.monitor.registry import ModelRegistry, RegistryError


@pytest.fixture()
def weights(tmp_path):
    w = tmp_path / "detector.pt"
    w.write_bytes(b"weights-v")
    o = tmp_path / "model.onnx"
    o.write_bytes(b"onnx")
    return w, o


def test_register_activate_rollback(tmp_path, weights):
    reg = ModelRegistry(tmp_path / "models")
    assert reg.models() == [] and reg.active("detector") is None
    v1 = reg.register("detector", "v1", list(weights), card="# card\ntrained on AUL", metrics={"ap": 0.5}, activate=True)
    assert v1.active and sorted(v1.files) == ["MODEL_CARD.md", "detector.pt", "metrics.json", "model.onnx"]
    assert (v1.path / "detector.pt").read_bytes() == b"weights-v" and v1.metrics == {"ap": 0.5} and v1.has_card
    reg.register("detector", "v2", [weights[0]])
    assert reg.active("detector").version == "v1"  # registering does not activate
    reg.activate("detector", "v2")
    assert reg.active("detector").version == "v2"
    assert [v.version for v in reg.versions("detector")] == ["v1", "v2"]
    assert [v.active for v in reg.versions("detector")] == [False, True]
    assert reg.rollback("detector").version == "v1"
    assert reg.active("detector").version == "v1"
    with pytest.raises(RegistryError):
        reg.rollback("detector")  # nothing earlier than v1
    assert json.loads((tmp_path / "models" / "detector" / "registry.json").read_text())["active"] == "v1"


def test_registry_refuses_bad_input(tmp_path, weights):
    reg = ModelRegistry(tmp_path / "models")
    reg.register("detector", "v1", [weights[0]])
    with pytest.raises(RegistryError):
        reg.register("detector", "v1", [weights[0]])  # versions are never overwritten
    for bad in ("../x", "a/b", "", ".hidden", "x" * 100):
        with pytest.raises(RegistryError):
            reg.register("detector", bad, [weights[0]])
        with pytest.raises(RegistryError):
            reg.activate(bad, "v1")
    with pytest.raises(RegistryError):
        reg.activate("detector", "v9")
    with pytest.raises(RegistryError):
        reg.register("detector", "v3", [tmp_path / "missing.pt"])
    assert not (tmp_path / "x").exists()


def test_model_cli(tmp_path, weights, capsys):
    d = ["--data-dir", str(tmp_path / "data")]
    metrics = tmp_path / "m.json"
    metrics.write_text('{"sensitivity": 0.9}')
    assert main(["model", "register", "detector", "v1", str(weights[0]), "--metrics", str(metrics), "--activate", *d]) == 0
    assert main(["model", "register", "detector", "v2", str(weights[0]), *d]) == 0
    assert main(["model", "activate", "detector", "v2", *d]) == 0
    capsys.readouterr()
    assert main(["model", "list", *d]) == 0
    out = capsys.readouterr().out
    assert "* detector     v2" in out and "  detector     v1" in out
    assert main(["model", "rollback", "detector", *d]) == 0
    assert "now v1" in capsys.readouterr().out
    assert main(["model", "rollback", "detector", *d]) == 2  # clean error, no traceback
