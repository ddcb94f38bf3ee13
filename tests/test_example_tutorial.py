"""examples/basic_irns_retrieval.py runs end to end and learns something."""

import tfrs_irns  # noqa: F401,I001  (first: pins Keras 2 before anything touches tf.keras)

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "ml-latest-small"


def load_example():
    spec = importlib.util.spec_from_file_location("basic_irns_retrieval", ROOT / "examples" / "basic_irns_retrieval.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # autograph looks functions' modules up here
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_tutorial_learns_on_synthetic_clusters():
    result = load_example().main(
        ["--synthetic", "--epochs", "3", "--num-negatives", "300", "--batch-size", "256", "--k", "10"]
    )
    assert result["source"] == "synthetic clusters"
    assert result["losses"][-1] < result["losses"][0]
    # 85% of a user's movies come from 25 of 400: top-10 should find them.
    assert result["hit_rate"] > 5 * result["chance"]


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.skipif(not (SHARED / "ratings.csv").is_file(), reason=f"MovieLens data not found at {SHARED}")
def test_tutorial_learns_on_movielens_sample():
    result = load_example().main(["--data", str(SHARED), "--max-rows", "15000", "--epochs", "2", "--k", "100"])
    assert result["source"].endswith("ratings.csv")
    assert result["losses"][-1] < result["losses"][0]
    assert result["hit_rate"] > 3 * result["chance"]


def test_a_missing_data_folder_is_an_error_not_synthetic_data(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        load_example().main(["--data", str(tmp_path / "missing")])
    assert stop.value.code == 2
    assert f"--data {tmp_path / 'missing'}: no ratings.csv there" in capsys.readouterr().err
