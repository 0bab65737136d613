"""The model card: template packaging, Hub metadata, and the content people read."""

from __future__ import annotations

import pytest

from glacier.domain import CANONICAL_BANDS, CLASS_NAMES, CLASS_VALUES
from glacier.hub import render_model_card
from glacier.hub.card import template_text
from tests.conftest import REPO_ROOT

CONFIG = {
    "format": "glacier-model",
    "format_version": 1,
    "architecture": "Unet",
    "boundary_head": True,
    "encoder": "resnet34",
    "encoder_depth": 5,
    "decoder_channels": [256, 128, 64, 32, 16],
    "in_channels": 5,
    "bands": ["blue", "green", "red", "swir1", "tir"],
    "sensor_bands": ["B2", "B3", "B4", "B6", "B10"],
    "classes": list(CLASS_NAMES),
    "class_values": list(CLASS_VALUES),
    "normalization": {
        "bands": ["blue", "green", "red", "swir1", "tir"],
        "mean": [0.11, 0.12, 0.13, 0.14, 281.5],
        "std": [0.01, 0.02, 0.03, 0.04, 7.25],
    },
    "metrics": {"mcc": 0.6321, "iou": {"background": 0.91, "glacier": 0.72, "debris": 0.33, "lake": 0.05}},
    "training": {
        "name": "finetune",
        "dataset": "competition",
        "training": {"epochs": 40, "batch_size": 8, "optimizer": {"name": "adamw", "lr": 0.0003}, "seed": 42},
        "data": {"crop_size": 256, "fold": 2},
    },
}


def test_packaged_template_is_the_model_cards_template():
    """model_cards/ is the source of truth; the package ships an identical copy."""
    source = (REPO_ROOT / "model_cards" / "glacier_model_card.md").read_text(encoding="utf-8")
    assert template_text() == source, "copy model_cards/glacier_model_card.md to glacier/templates/"


def test_card_metadata_is_valid_hub_metadata():
    from huggingface_hub import ModelCard

    card = ModelCard(render_model_card(CONFIG, repo_id="alice/glacier"))
    data = card.data.to_dict()
    assert data["pipeline_tag"] == "image-segmentation"
    assert data["library_name"] == "glacier" and data["license"] == "apache-2.0"
    assert {
        "segmentation",
        "glacier",
        "remote-sensing",
        "landsat",
        "pytorch",
        "segmentation-models-pytorch",
    } <= set(data["tags"])
    assert data["datasets"] == ["glacierhack-2025"]
    results = {(r.metric_type, r.metric_config): r.metric_value for r in card.data.eval_results}
    assert results[("mcc", None)] == pytest.approx(0.6321)
    assert results[("iou", "debris")] == pytest.approx(0.33)
    assert len(results) == 1 + len(CLASS_NAMES)
    assert all(r.task_type == "image-segmentation" for r in card.data.eval_results)


def test_card_describes_bands_normalisation_classes_and_use():
    text = render_model_card(CONFIG, repo_id="alice/glacier")
    for band in CONFIG["bands"]:
        assert f"| `{band}` |" in text and CANONICAL_BANDS[band] in text
    assert "| `tir` | 281.500000 | 7.250000 |" in text
    for index, (name, value) in enumerate(zip(CLASS_NAMES, CLASS_VALUES, strict=True)):
        assert f"| {index} | {name} | {value} |" in text
    assert "| MCC | 0.6321 |" in text and "| IoU lake | 0.0500 |" in text
    assert "glacier pull alice/glacier --out model/" in text
    assert "export-submission" in text and "HF_HUB_OFFLINE=1" in text
    assert "resnet34" in text and "boundary head" in text
    assert "| learning rate | 0.0003 |" in text and "| validation fold | 2 |" in text
    for limitation in ("Landsat 8/9", "Himalaya", "lake"):
        assert limitation in text.split("## Limitations")[1]
    assert "{{" not in text and "{%" not in text


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
    text = render_model_card(CONFIG, ensemble=ensemble, cv_summary=cv)
    assert "| **mean +/- std** | 0.6200 +/- 0.0200 | 0.7200 +/- 0.0200 |" in text
    assert "| `seed42_fold1` | 42 | 1 | 0.6400 |" in text
    assert "ensemble of 2 models" in text
    assert "Validation scores of the ensemble" in text and "| MCC | 0.6650 |" in text
    from huggingface_hub import ModelCard

    assert ModelCard(text).data.eval_results[0].metric_value == pytest.approx(0.665)


def test_card_without_metrics_or_training():
    bare = {k: v for k, v in CONFIG.items() if k not in ("metrics", "training")}
    text = render_model_card(bare)
    assert "No evaluation results were recorded" in text
    assert "model-index" not in text
