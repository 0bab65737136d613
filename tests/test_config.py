"""The typed config: presets, overrides, flags and clear errors."""

import pytest
import yaml
from pydantic import ValidationError

from glacier.config import load_config, preset_names, save_config
from glacier.errors import ConfigError


def test_presets_load_and_are_named():
    names = preset_names()
    for name in [
        "tiny",
        "hkh_pretrain",
        "hkh_pretrain_kaggle",
        "competition_finetune",
        "competition_finetune_kaggle",
    ]:
        assert name in names
        assert load_config(name).name == name
    assert load_config("competition_finetune_kaggle").out.startswith("/kaggle/working")


def test_overrides_and_flags_apply_in_order(tmp_path):
    cfg = load_config(
        "tiny",
        ["training.loss.mcc_weight=0.25", "model.encoder=resnet34"],
        epochs=7,
        lr=0.01,
        fold=3,
        seed=5,
        out=tmp_path / "o",
        data=tmp_path / "d",
        batch_size=2,
    )
    assert cfg.training.loss.mcc_weight == 0.25
    assert cfg.model.encoder == "resnet34"
    assert (cfg.training.epochs, cfg.training.optimizer.lr, cfg.data.fold, cfg.training.seed) == (
        7,
        0.01,
        3,
        5,
    )
    assert cfg.out == str(tmp_path / "o") and cfg.data.path == str(tmp_path / "d")
    assert cfg.training.batch_size == 2


def test_unknown_key_names_key_and_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("training:\n  epochz: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*unknown key 'training.epochz'"):
        load_config(path)
    with pytest.raises(ConfigError, match="unknown key 'data.foo'"):
        load_config("tiny", ["data.foo=1"])


def test_wrong_type_is_a_clear_error():
    with pytest.raises(ConfigError, match="training.batch_size"):
        load_config("tiny", ["training.batch_size=many"])
    with pytest.raises(ConfigError, match="class_weights"):
        load_config("tiny", ["training.loss.class_weights=[1, 2]"])
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config("tiny", ["nonsense"])
    with pytest.raises(ConfigError, match="neither a file nor a packaged config"):
        load_config("no_such_preset")


def test_config_is_frozen_and_round_trips(tmp_path):
    cfg = load_config("tiny", epochs=3)
    with pytest.raises(ValidationError):
        cfg.training.epochs = 4  # type: ignore[misc]
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == cfg
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["training"]["epochs"] == 3
    assert cfg.updated(**{"training.epochs": 9}).training.epochs == 9
