"""`train.profile_steps: [first, last]` writes a TensorBoard profiler trace under the run's logs/."""

import glob
import os

import pytest

import tfrs_irns  # noqa: F401
from tfrs_irns.config import load_config
from tfrs_irns.errors import ConfigError

from helpers import with_tiny


def tiny(*extra):
    overrides = with_tiny("train.epochs=1", "train.early_stopping.enabled=false", *extra)
    return load_config("configs/quickstart.yaml", overrides)


def traces(run_dir):
    return glob.glob(os.path.join(run_dir, "logs", "plugins", "profile", "*", "*.xplane.pb"))


def test_a_short_run_with_profile_steps_writes_a_trace(tmp_path):
    from tfrs_irns.runs.training import train

    train(tiny("train.profile_steps=[2, 3]"), str(tmp_path / "run"), verbose=0)
    found = traces(str(tmp_path / "run"))
    assert len(found) == 1 and os.path.getsize(found[0]) > 0


def test_without_profile_steps_no_trace(tmp_path):
    from tfrs_irns.runs.training import train

    train(tiny(), str(tmp_path / "run"), verbose=0)
    assert traces(str(tmp_path / "run")) == []
    assert os.listdir(tmp_path / "run" / "logs")  # TensorBoard's event files still


@pytest.mark.parametrize("value, problem", [
    ("[3, 2]", "must be \\[first, last\\] with 1 <= first <= last, got \\[3, 2\\]"),
    ("[0, 2]", "must be \\[first, last\\] with 1 <= first <= last, got \\[0, 2\\]"),
    ("[4]", "must be \\[first, last\\] with 1 <= first <= last, got \\[4\\]"),
    ("5", "expected a list of an integer, got 5"),
])
def test_profile_steps_must_be_a_range_of_steps(value, problem):
    with pytest.raises(ConfigError, match=f"train.profile_steps: {problem}"):
        tiny(f"train.profile_steps={value}")


def test_a_first_step_the_run_never_reaches_is_an_error_before_training(tmp_path):
    from tfrs_irns.runs.training import train

    with pytest.raises(ConfigError, match=r"train.profile_steps=\[5000, 5001\]: the run has \d+ training steps "
                                          r"\(train.epochs=1 × \d+ per epoch\)"):
        train(tiny("train.profile_steps=[5000, 5001]"), str(tmp_path / "run"), verbose=0)
    assert not (tmp_path / "run").exists()
