"""runs/build.py: the one place that turns a config into objects, in the config's words."""

import tfrs_irns  # noqa: F401,I001  (first: pins Keras 2 before anything touches tf.keras)

import numpy as np
import pytest

from tfrs_irns.config import Config, ExportConfig, NegativesConfig
from tfrs_irns.errors import ConfigError, UserError
from tfrs_irns.runs.build import export_name, irns_task_from_config
from tfrs_irns.sampling import UnigramSampler

from helpers import make_counts, make_tower


def test_task_from_config():
    counts, p = make_counts()
    neg = NegativesConfig(mode="mixed", num_negatives=7, sampler="unigram", alpha=0.5, seed=4, mask_same_user=True)
    task = irns_task_from_config(neg, make_tower(), counts, temperature=0.2)
    assert isinstance(task.sampler, UnigramSampler) and task.sampler.alpha == 0.5
    assert task.logq and task.mask_same_user and task.num_negatives == 7 and task.seed == 4
    assert task.temperature == 0.2
    np.testing.assert_allclose(task._item_probabilities.numpy(), p, rtol=1e-6)
    full = irns_task_from_config(NegativesConfig(mode="full", logq=True), make_tower(), counts)
    assert not full.logq and full.sampler is None
    cfg = task.get_config()
    assert cfg["mode"] == "mixed" and cfg["sampler"]["class_name"] == "UnigramSampler"


def test_config_rules_that_need_the_data_name_config_keys():
    # The task and sampler say it in their arguments' words (below); building
    # from a config says it in the config's, before anything trains.
    with pytest.raises(ConfigError) as err:
        irns_task_from_config(NegativesConfig(mode="full"), make_tower(), np.ones(1_000_001))
    assert "1000000 items" in str(err.value) and "negatives.full_max_items=200000" in str(err.value)
    assert isinstance(err.value, UserError)
    neg = NegativesConfig(mode="mixed", num_negatives=5000, replacement=False, logq=False)
    with pytest.raises(ConfigError, match="negatives.num_negatives=5000 exceeds the 1682 items in the catalogue"):
        irns_task_from_config(neg, make_tower(), np.ones(1683))


def test_export_name_falls_back_to_the_config_name_and_names_the_key():
    assert export_name(Config(name="quickstart")) == "quickstart"
    assert export_name(Config(name="quickstart", export=ExportConfig(name="prod"))) == "prod"
    with pytest.raises(ConfigError, match=r"^export.name: 'a/b' is not a valid model name"):
        export_name(Config(export=ExportConfig(name="a/b")))
    with pytest.raises(ConfigError, match=r"^name: '\.\.' is not a valid model name"):
        export_name(Config(name=".."))
