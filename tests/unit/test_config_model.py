"""Dataset settings: typed and frozen, every one filled in; readable as the registration's plain values."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sdlf_cli.config.loader import load_config
from sdlf_cli.config.model import Batch, DatasetSettings

ROOT = Path(__file__).resolve().parents[2]


def test_settings_of_a_loaded_dataset_are_typed_and_frozen():
    cfg = load_config("dev", ROOT / "parameters")
    dataset = cfg.dataset("engineering", "legislators")
    settings = dataset.settings
    assert isinstance(settings, DatasetSettings) and isinstance(settings.batch, Batch)
    assert settings.engine in ("python", "spark") and isinstance(settings.partition_by, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.engine = "spark"
    assert cfg.dataset("engineering", "nope") is None and cfg.dataset("nobody", "legislators") is None


def test_the_mapping_view_is_the_plain_registration_values():
    settings = DatasetSettings.from_dict({"engine": "spark", "batch": {"min_items": 2, "max_items": 50},
                                          "quality": [{"rule": "uniqueness", "column": "id", "severity": "warn"}]})
    assert settings.batch == Batch(2, 50) and settings.schedule == "rate(5 minutes)"
    assert settings == {"transform": "default", "engine": "spark", "schedule": "rate(5 minutes)",
                        "batch": {"min_items": 2, "max_items": 50}, "partition_by": ["ingestion_date"],
                        "quality": [{"rule": "uniqueness", "column": "id", "severity": "warn"}], "stage_b": None}
    assert settings["batch"]["max_items"] == 50 and "quality" in settings and settings["stage_b"] is None


def test_unknown_settings_are_refused_by_name():
    with pytest.raises(TypeError, match="unknown dataset setting\\(s\\) engin; expected: transform, engine"):
        DatasetSettings.from_dict({"engin": "spark"})
