"""The typed config: presets, overrides, flags and clear errors."""

import re

import pytest
import yaml
from pydantic import ValidationError

from glacier import config as config_module
from glacier.config import load_config, preset_chain, preset_names, save_config
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


def _flat(data, prefix=""):
    out = {}
    for key, value in data.items():
        if isinstance(value, dict) and key != "target_shares":
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize(
    ("preset", "base", "changed"),
    [
        (
            "competition_finetune_kaggle",
            "competition_finetune",
            {"name", "out", "data.path", "data.num_workers", "model.init_from", "training.batch_size"}
            | {"training.max_hours", "checkpoints.keep_last"},
        ),
        (
            "hkh_pretrain_kaggle",
            "hkh_pretrain",
            {"name", "out", "data.path", "data.num_workers", "training.batch_size", "training.max_hours"},
        ),
    ],
)
def test_kaggle_presets_are_short_overrides_of_their_base(preset, base, changed):
    chain = preset_chain(preset)
    assert [p.stem for p in chain] == [base, preset]
    text = chain[-1].read_text()
    assert f"base: {base}\n" in text
    assert len(text.splitlines()) <= 15
    kaggle, plain = _flat(load_config(preset).to_dict()), _flat(load_config(base).to_dict())
    assert {k for k in plain if kaggle[k] != plain[k]} == changed
    assert kaggle["out"].startswith("/kaggle/working") and kaggle["training.max_hours"] == 11.0


def test_a_chain_of_bases_merges_sections_key_by_key(tmp_path):
    (tmp_path / "lr.yaml").write_text(
        "base: competition_finetune\nname: lr\ntraining:\n  optimizer: {lr: 0.01}\n"
        "  sampler: {target_shares: {glacier: 1.0}}\n"
    )
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "mine.yaml").write_text("base: ../lr.yaml\ntraining:\n  loss: {mcc_weight: 0.0}\n")
    cfg = load_config(sub / "mine.yaml")
    assert [p.name for p in preset_chain(sub / "mine.yaml")] == [
        "competition_finetune.yaml",
        "lr.yaml",
        "mine.yaml",
    ]
    base = load_config("competition_finetune")
    assert cfg.name == "lr" and cfg.training.optimizer.lr == 0.01 and cfg.training.loss.mcc_weight == 0.0
    # Keys the chain does not mention keep the base's value, section by section...
    assert cfg.training.optimizer.weight_decay == base.training.optimizer.weight_decay
    assert cfg.training.loss.focal_weight == base.training.loss.focal_weight
    assert cfg.training.epochs == base.training.epochs and cfg.data == base.data
    # ...while a value (here a mapping of shares) replaces the base's value whole.
    assert cfg.training.sampler.target_shares == {"glacier": 1.0}
    # The resolved config written into a run folder is complete: no base left to follow.
    save_config(cfg, tmp_path / "run" / "config.yaml")
    written = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert "base" not in written and written["training"]["epochs"] == base.training.epochs
    assert load_config(tmp_path / "run" / "config.yaml") == cfg


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"a.yaml": "base: b.yaml\nname: a\n", "b.yaml": "base: a.yaml\n"},
            r"b.yaml: presets inherit in a cycle: a.yaml -> b.yaml -> a.yaml",
        ),
        ({"a.yaml": "base: a.yaml\n"}, r"a.yaml: presets inherit in a cycle: a.yaml -> a.yaml"),
        (
            {
                "a.yaml": "base: parent.yaml\ntraining: {epochs: 3}\n",
                "parent.yaml": "training: {epochz: 3}\n",
            },
            r"parent.yaml: invalid config: unknown key 'training.epochz'",
        ),
        (
            {"a.yaml": "base: parent.yaml\n", "parent.yaml": "base: tiny\ntraining: {batch_size: many}\n"},
            r"parent.yaml: invalid config: training.batch_size",
        ),
        ({"a.yaml": "base: no_such_preset\n"}, r"a.yaml: base 'no_such_preset' is neither a file"),
        ({"a.yaml": "training: {base: tiny}\n"}, r"a.yaml: invalid config: unknown key 'training.base'"),
    ],
)
def test_base_errors_name_the_file_where_they_are(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(tmp_path / "a.yaml", ["training.epochs=4"])
    assert "--set" not in str(err.value)


def test_a_bad_set_is_blamed_on_the_set_not_the_preset():
    with pytest.raises(ConfigError) as err:
        load_config("tiny", ["training.batch_size=many"])
    assert str(err.value).startswith("--set training.batch_size=many: ") and "tiny.yaml" not in str(err.value)
    with pytest.raises(ConfigError, match=r"^--epochs: .*training.epochs"):
        load_config("tiny", epochs=0)


@pytest.mark.parametrize(
    "item",
    [
        "training.epochs=true",
        "training.epochs='3'",
        "training.epochs=2.5",
        "training.optimizer.lr='1e-3'",
        "data.use_all_for_training=1",
        "data.use_all_for_training=yes please",
        "data.bands=blue",
        "name=7",
    ],
)
def test_overrides_are_strictly_typed(item):
    with pytest.raises(ConfigError, match=r"^--set "):
        load_config("tiny", [item])


def test_overrides_read_numbers_as_numbers():
    cfg = load_config(
        "tiny",
        ["training.optimizer.lr=1e-4", "training.max_hours=2", "data.use_all_for_training=true"],
    )
    assert cfg.training.optimizer.lr == 1e-4 and cfg.training.max_hours == 2.0
    assert cfg.data.use_all_for_training is True
    assert load_config("tiny", ["data.bands=[blue, swir1]"]).data.bands == ["blue", "swir1"]
    assert load_config("tiny", ["model.decoder_channels="]).model.decoder_channels is None


def test_bad_override_syntax_is_one_clear_error():
    with pytest.raises(ConfigError, match=r"--set name=\[unclosed: .* is not a valid YAML value"):
        load_config("tiny", ["name=[unclosed"])
    with pytest.raises(ConfigError, match="goes through 'epochs', which is a value"):
        load_config("tiny", ["training.epochs.x=1"])
    with pytest.raises(
        ConfigError, match=r"set the whole value instead \(training.sampler.target_shares=\.\.\.\)"
    ):
        load_config("tiny", ["training.sampler.target_shares.lake=0.2"])
    with pytest.raises(
        ConfigError, match=r"unknown key 'training.lr' \(did you mean 'training.optimizer.lr'\?\)"
    ):
        load_config("tiny", ["training.lr=1e-4"])


def test_the_examples_in_hints_and_docstring_are_accepted():
    with pytest.raises(ConfigError) as err:
        load_config("tiny", ["nonsense"])
    example = re.search(r"e\.g\. (\S+)", str(err.value)).group(1)
    key, value = example.split("=")
    assert _flat(load_config("tiny", [example]).to_dict())[key] == float(value)
    call = re.search(r"cfg = (load_config\(.*\))", config_module.__doc__).group(1)
    cfg = eval(call, {"load_config": load_config})  # the docstring's example, run as written
    assert cfg.training.optimizer.lr == 1e-4 and cfg.training.epochs == 3


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("training.epochs=true", "error: --set training.epochs=true: invalid config: training.epochs"),
        ("name=[x", "error: --set name=[x: '[x' is not a valid YAML value"),
    ],
)
def test_cli_reports_a_bad_set_in_one_line(cli, capsys, tmp_path, item, message):
    code = cli(
        "finetune", "--config", "tiny", "--data", tmp_path / "none", "--out", tmp_path / "o", "--set", item
    )
    err = capsys.readouterr().err
    assert code == 1 and err.startswith(message) and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
