"""Weight averaging of detector checkpoints (livus.train.weight_average)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from livus.config import DetectorConfig
from livus.models.detector import LesionDetector, load_detector, save_detector
from livus.train.weight_average import average_detectors, average_state_dicts


def _tiny(seed: int, **kw: object) -> LesionDetector:
    torch.manual_seed(seed)
    cfg = DetectorConfig(encoder="resnet_lite", input_size_px=64, widths=(8, 16, 24, 32), stem_channels=8,
                         fpn_channels=16, head_channels=8, **kw)
    return LesionDetector(cfg).eval()


def test_state_dicts_are_averaged_with_normalised_weights() -> None:
    a = {"w": torch.tensor([0.0, 4.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([8.0, 0.0]), "n": torch.tensor(7)}
    out = average_state_dicts([a, b], [3, 1])
    assert torch.allclose(out["w"], torch.tensor([2.0, 3.0]))
    assert out["n"].item() == 3  # integer buffers from the first member
    with pytest.raises(ValueError, match="other parameters"):
        average_state_dicts([a, {"w": b["w"]}])
    with pytest.raises(ValueError, match="shapes"):
        average_state_dicts([a, {"w": torch.zeros(3), "n": b["n"]}])


def test_averaged_detector_loads_and_lies_between_its_members(tmp_path: Path) -> None:
    paths = [save_detector(_tiny(s), tmp_path / f"m{s}.pt", meta={"version": f"m{s}"}) for s in (0, 1)]
    dest = average_detectors(paths, tmp_path / "soup.pt", [0.25, 0.75], meta={"version": "soup"})
    soup, m0, m1 = load_detector(dest), load_detector(paths[0]), load_detector(paths[1])
    for k, v in soup.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(v, 0.25 * m0.state_dict()[k] + 0.75 * m1.state_dict()[k], atol=1e-6), k
    assert soup.meta["version"] == "soup"
    assert soup.meta["weight_average"]["weights"] == [0.25, 0.75]
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        out = soup(x)
    assert all(torch.isfinite(t).all() for t in out.values() if isinstance(t, torch.Tensor))


def test_members_of_other_architectures_are_refused(tmp_path: Path) -> None:
    a = save_detector(_tiny(0), tmp_path / "a.pt")
    b = save_detector(_tiny(0, use_cbam=False), tmp_path / "b.pt")
    with pytest.raises(ValueError, match="use_cbam"):
        average_detectors([a, b], tmp_path / "soup.pt")
    # a different report threshold is not a different architecture
    c = _tiny(1)
    c.cfg.score_threshold = 0.7
    average_detectors([a, save_detector(c, tmp_path / "c.pt")], tmp_path / "ok.pt")


def test_cv_runs_are_averaged_fold_by_fold_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from livus.cli import main

    for r, seed in (("a", 0), ("b", 1)):
        for f in (0, 1):
            save_detector(_tiny(seed + 10 * f), tmp_path / r / f"fold{f}" / "detector.pt")
        (tmp_path / r / "config.yaml").write_text(f"# run {r}\ntrain:\n  seed: 3\n")
        (tmp_path / r / "cache_64.npz").write_bytes(b"cache " + r.encode())
    assert main(["train", "average", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "soup"),
                 "--weights", "1,3"]) == 0
    for f in (0, 1):
        soup = load_detector(tmp_path / "soup" / f"fold{f}" / "detector.pt").state_dict()
        a = load_detector(tmp_path / "a" / f"fold{f}" / "detector.pt").state_dict()
        b = load_detector(tmp_path / "b" / f"fold{f}" / "detector.pt").state_dict()
        k = "head.heatmap.weight" if "head.heatmap.weight" in soup else next(k for k, v in soup.items() if v.is_floating_point())
        assert torch.allclose(soup[k], 0.25 * a[k] + 0.75 * b[k], atol=1e-6)
    assert (tmp_path / "soup" / "config.yaml").read_text().startswith("# run a\n")
    assert (tmp_path / "soup" / "cache_64.npz").read_bytes() == b"cache a"
    (tmp_path / "b" / "config.yaml").write_text("train:\n  seed: 4\n")
    assert main(["train", "average", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "soup1")]) == 2
    assert "split the data differently" in capsys.readouterr().err
    (tmp_path / "b" / "fold1" / "detector.pt").unlink()
    assert main(["train", "average", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "soup2")]) == 2
    assert "same fold models" in capsys.readouterr().err
    assert main(["train", "average", str(tmp_path / "a"), str(tmp_path / "a" / "fold0" / "detector.pt"),
                 "--out", str(tmp_path / "x.pt")]) == 2
    assert "all be detector checkpoints or all CV run folders" in capsys.readouterr().err
