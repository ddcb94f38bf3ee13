"""End to end through the CLI: content item towers train, evaluate and export, on the synthetic
data with the cold_items split and on the real ml-latest-small (the export's
``candidate_embedding_from_features``: tests/test_export_content.py)."""

import json
from pathlib import Path

import pytest

import tfrs_irns  # noqa: F401
from tfrs_irns.cli.main import main

from helpers import with_tiny

ML_LATEST_SMALL = Path(__file__).resolve().parents[1].parent / "shared/data/ml-latest-small"


@pytest.mark.slow
def test_synthetic_cold_items_with_an_id_title_genres_tower(tmp_path):
    code = main(["train", "--config", "configs/quickstart.yaml", "--output", str(tmp_path / "run"), "--set",
                 *with_tiny("model.item_features=[id,title,genres]", "data.split=cold_items", "train.epochs=2")])
    assert code == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    cold = metrics["cold_only"]
    assert cold["num_test_interactions"] == metrics["num_test_interactions"] > 0
    # Cold items have no training count: most-popular cannot rank them; content can.
    assert metrics["popular_baseline"]["hit_rate@10"] == 0.0
    assert cold["hit_rate@10"] > 1.5 * cold["protocol"]["random_hit_rate"]["@10"]


@pytest.mark.slow
@pytest.mark.skipif(not ML_LATEST_SMALL.is_dir(), reason="ml-latest-small not present")
def test_ml_latest_small_content_tower_trains(tmp_path):
    run = tmp_path / "run"
    code = main(["train", "--config", "configs/movielens-latest-small.yaml", "--output", str(run), "--set",
                 f"data.path={ML_LATEST_SMALL}", "data.min_rating=5", "model.item_features=[id,title,genres]",
                 "train.epochs=1", "train.batch_size=512", "negatives.num_negatives=500", "export.enabled=false",
                 "train.early_stopping.max_queries=200", "eval.ks=[10,100]"])
    assert code == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["hit_rate@100"] is not None and metrics["hit_rate@100"] > 0
