"""The model card: template packaging, Hub metadata, and the content people read."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
from huggingface_hub import ModelCard, ModelCardData

from glacier.artifacts import render_card
from glacier.artifacts.card import template_text
from glacier.artifacts.model_config import parse_config
from glacier.domain import CANONICAL_BANDS, CLASS_NAMES, CLASS_VALUES
from tests.conftest import REPO_ROOT

COMPETITION_BANDS = ["blue", "green", "red", "swir1", "tir"]
CONFIG = {
    "_model_class": "Unet",
    "encoder_name": "resnet34",
    "encoder_depth": 5,
    "encoder_weights": None,
    "decoder_channels": [256, 128, 64, 32, 16],
    "in_channels": 5,
    "classes": 4,
    "_glacier": {
        "format": "glacier-model",
        "format_version": 2,
        "boundary_head": True,
        "bands": COMPETITION_BANDS,
        "sensor_bands": ["B2", "B3", "B4", "B6", "B10"],
        "class_names": list(CLASS_NAMES),
        "class_values": list(CLASS_VALUES),
        "normalization": {
            "bands": COMPETITION_BANDS,
            "mean": [0.11, 0.12, 0.13, 0.14, 281.5],
            "std": [0.01, 0.02, 0.03, 0.04, 7.25],
        },
        "calibration": None,
        "metrics": {
            "mcc": 0.6321,
            "iou": {"background": 0.91, "glacier": 0.72, "debris": 0.33, "lake": 0.05},
            "miou": 0.5025,
        },
        "training": {
            "name": "finetune",
            "dataset": "competition",
            "training": {
                "epochs": 40,
                "batch_size": 8,
                "optimizer": {"name": "adamw", "lr": 0.0003},
                "seed": 42,
            },
            "data": {"crop_size": 256, "fold": 2},
        },
    },
}
HKH_BANDS = ["blue", "green", "red", "swir1", "tir"]


def meta_of(config: dict):
    return parse_config(config, Path("model/config.json"))


def hkh_pretrained() -> dict:
    config = copy.deepcopy(CONFIG)
    block = config["_glacier"]
    block["sensor_bands"] = ["B1", "B2", "B3", "B5", "B6_VCID_1"]
    block["training"] = {"name": "hkh_pretrain", "dataset": "hkh"}
    return config


def fine_tuned(init_from_hub: dict | None) -> dict:
    config = copy.deepcopy(CONFIG)
    config["_glacier"]["training"]["pretrain_dataset"] = "hkh"
    config["_glacier"]["training"]["provenance"] = {
        "init_from": "/runs/pretrain/best",
        "init_from_hub": init_from_hub,
    }
    return config


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", text, re.DOTALL)


def test_packaged_template_is_the_model_cards_template():
    """model_cards/ is the source of truth; the package ships an identical copy."""
    source = (REPO_ROOT / "model_cards" / "glacier_model_card.md").read_text(encoding="utf-8")
    assert template_text() == source, "copy model_cards/glacier_model_card.md to glacier/templates/"


def test_card_metadata_is_valid_hub_metadata():
    card = ModelCard(render_card(meta_of(CONFIG), repo_id="alice/glacier"))
    assert isinstance(card.data, ModelCardData)
    data = card.data.to_dict()
    assert data["pipeline_tag"] == "image-segmentation"
    assert data["library_name"] == "segmentation-models-pytorch" and data["license"] == "apache-2.0"
    assert {"segmentation-models-pytorch", "glacier", "remote-sensing", "landsat", "landsat-8"} <= set(
        data["tags"]
    )
    assert "landsat-7" not in data["tags"]
    assert "datasets" not in data  # neither dataset has a Hugging Face id
    assert "base_model" not in data  # trained from scratch
    assert set(data["metrics"]) == {"matthews_correlation", "iou", "mean_iou"}
    results = {(r.metric_type, r.metric_config): r.metric_value for r in card.data.eval_results}
    assert results[("matthews_correlation", None)] == pytest.approx(0.6321)
    assert results[("iou", "debris")] == pytest.approx(0.33)
    assert results[("mean_iou", None)] == pytest.approx(0.5025)
    assert len(results) == 2 + len(CLASS_NAMES)
    assert all(r.task_type == "image-segmentation" for r in card.data.eval_results)
    assert {r.dataset_type for r in card.data.eval_results} == {"glacierhack-2025"}
    # The metadata survives a round trip through huggingface_hub's own parser and writer.
    assert ModelCardData(**card.data.to_dict()).to_dict() == data


def test_card_describes_bands_normalisation_classes_and_use():
    text = render_card(meta_of(CONFIG), repo_id="alice/glacier")
    for band in COMPETITION_BANDS:
        assert f"| `{band}` |" in text and CANONICAL_BANDS[band] in text
    assert "| `tir` | 281.500000 | 7.250000 |" in text
    for index, (name, value) in enumerate(zip(CLASS_NAMES, CLASS_VALUES, strict=True)):
        assert f"| {index} | {name} | {value} |" in text
    assert "| MCC | 0.6321 |" in text and "| IoU lake | 0.0500 |" in text
    assert (
        'smp.from_pretrained("alice/glacier")' in text
        and 'hf_hub_download("alice/glacier", "config.json")' in text
    )
    assert "glacier pull alice/glacier --out model/" in text
    assert "export-submission" in text and "HF_HUB_OFFLINE=1" in text
    assert "resnet34" in text and "boundary head" in text and "multiples of 32" in text
    assert "| learning rate | 0.0003 |" in text and "| validation fold | 2 |" in text
    assert (
        "Trained on **Landsat 8/9 OLI/TIRS** data: B2 (blue), B3 (green), B4 (red), B6 (swir1), B10 (tir)"
        in text
    )
    limitations = text.split("## Limitations")[1]
    for limitation in ("Landsat 8/9", "Himalaya", "lake"):
        assert limitation in limitations
    assert "{{" not in text and "{%" not in text
    assert "Training states" not in text


def test_install_line_installs_this_project_never_the_pypi_namesake():
    text = render_card(meta_of(CONFIG), repo_id="alice/glacier")
    commands = [line.strip() for block in code_blocks(text) for line in block.splitlines()]
    installs = [c for c in commands if c.startswith("pip install")]
    assert installs == [
        "pip install ./glacier                     # the folder holding glacier's pyproject.toml"
    ]
    assert not any(re.match(r"pip install\s+glacier\b", c) for c in commands)
    assert "glacier-segmentation" in text
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert re.search(r'^name = "glacier-segmentation"$', pyproject, re.MULTILINE)


def test_an_hkh_pretrained_model_says_landsat_7():
    text = render_card(meta_of(hkh_pretrained()))
    card = ModelCard(text)
    assert "landsat-7" in card.data.tags and "landsat-8" not in card.data.tags
    assert (
        "Trained on **Landsat 7 ETM+** data: B1 (blue), B2 (green), B3 (red), B5 (swir1), B6_VCID_1 (tir)"
        in text
    )
    assert "trained on Landsat 7 ETM+ bands" in text.split("## Limitations")[1]
    assert "Landsat 8/9 OLI/TIRS data" not in text and "B10 (tir)" not in text
    assert {r.dataset_type for r in card.data.eval_results} == {"hkh-glacier-mapping"}
    assert "lila.science/datasets/hkh-glacier-mapping" in text


def test_sensor_from_the_dataset_or_unknown():
    config = hkh_pretrained()
    config["_glacier"]["sensor_bands"] = None
    assert "Trained on **Landsat 7 ETM+** data" in render_card(meta_of(config))
    config["_glacier"]["training"] = {}
    text = render_card(meta_of(config))
    assert "The sensor\nwas not recorded" in text and "Landsat 7 ETM+" not in text


def test_base_model_only_for_a_hub_source():
    from_hub = ModelCard(
        render_card(meta_of(fine_tuned({"repo_id": "alice/glacier-pretrain", "revision": None})))
    )
    assert from_hub.data.base_model == "alice/glacier-pretrain"
    assert "[alice/glacier-pretrain](https://huggingface.co/alice/glacier-pretrain)" in from_hub.text
    local_text = render_card(meta_of(fine_tuned(None)))
    assert ModelCard(local_text).data.base_model is None
    assert "a local model folder (`/runs/pretrain/best`, trained on HKH Glacier Mapping" in local_text
    assert "not a Hub model" in local_text
    assert "after pretraining on [HKH Glacier Mapping" in local_text


def test_states_are_marked_as_training_states():
    text = render_card(meta_of(CONFIG), repo_id="alice/run", states=True)
    section = text.split("### Training states")[1].split("## How to use")[0]
    assert "`states/`" in section and "training states only" in section
    assert "optimizer.bin" in section and "random_states_*.pkl" in section and "pickle scanner" in section


def test_card_cross_validation_and_ensemble_tables():
    cv = {
        "folds": [
            {"fold": 0, "mcc": 0.60, "iou": {"glacier": 0.70}},
            {"fold": 1, "metrics": {"mcc": 0.64, "iou": {"glacier": 0.74}}},
        ]
    }
    ensemble = {
        "format": "glacier-ensemble",
        "members": [
            {
                "name": "seed42_fold0",
                "path": "members/seed42_fold0",
                "seed": 42,
                "fold": 0,
                "metrics": {"mcc": 0.60},
            },
            {
                "name": "seed42_fold1",
                "path": "members/seed42_fold1",
                "seed": 42,
                "fold": 1,
                "metrics": {"mcc": 0.64},
            },
        ],
        "metrics": {"mcc": 0.665},
    }
    text = render_card(meta_of(CONFIG), ensemble=ensemble, cv_summary=cv, repo_id="alice/ens")
    assert "| **mean +/- std** | 0.6200 +/- 0.0200 | 0.7200 +/- 0.0200 |" in text
    assert "| `seed42_fold1` | 42 | 1 | 0.6400 |" in text
    assert "ensemble of 2 models" in text
    assert "Validation scores of the ensemble" in text and "| MCC | 0.6650 |" in text
    assert "for member in ['members/seed42_fold0', 'members/seed42_fold1']:" in text
    assert 'snapshot_download("alice/ens", allow_patterns=["members/*"])' in text
    card = ModelCard(text)
    assert card.data.eval_results[0].metric_value == pytest.approx(0.665)
    assert card.data.library_name == "segmentation-models-pytorch"


def test_ensemble_without_its_own_scores_reports_its_first_member():
    ensemble = {
        "members": [{"name": "a", "path": "members/a", "metrics": {"mcc": 0.6}}],
        "metrics": {"members": 1},
    }
    text = render_card(meta_of(CONFIG), ensemble=ensemble)
    assert "Validation scores of this model (first member)" in text and "| MCC | 0.6321 |" in text


def test_card_without_metrics_or_training():
    bare = copy.deepcopy(CONFIG)
    bare["_glacier"]["metrics"] = {}
    bare["_glacier"]["training"] = {}
    text = render_card(meta_of(bare))
    assert "No evaluation results were recorded" in text
    assert "model-index" not in text
    assert 'smp.from_pretrained("MODEL_DIR")' in text


def test_a_model_that_cannot_read_competition_folders_is_not_told_to():
    config = copy.deepcopy(CONFIG)
    seven = ["blue", "green", "red", "nir", "swir1", "tir", "swir2"]
    block = config["_glacier"]
    config["in_channels"] = 7
    block["bands"], block["sensor_bands"] = seven, ["B1", "B2", "B3", "B4", "B5", "B6_VCID_1", "B7"]
    block["normalization"] = {"bands": seven, "mean": [0.0] * 7, "std": [1.0] * 7}
    text = render_card(meta_of(config))
    assert "glacier predict MODEL_DIR" not in text and "glacier finetune --init-from MODEL_DIR" in text
    assert "Landsat 7 ETM+" in text
