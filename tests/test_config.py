import pytest

from livus.config import LivusConfig, load_config, save_config


def test_yaml_roundtrip_and_partial(tmp_path):
    cfg = LivusConfig()
    cfg.detector.widths = (16, 32, 64, 128)
    path = tmp_path / "c.yaml"
    save_config(cfg, path)
    back = load_config(path)
    assert back.detector.widths == (16, 32, 64, 128)
    assert back == cfg
    path.write_text("preprocess:\n  input_size_px: 384\n")
    part = load_config(path)
    assert part.preprocess.input_size_px == 384
    assert part.detector == LivusConfig().detector


def test_unknown_key_and_bad_type(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("detector:\n  widht: 3\n")
    with pytest.raises(KeyError):
        load_config(path)
    path.write_text("detector:\n  use_cbam: 'yes'\n")
    with pytest.raises(TypeError):
        load_config(path)
