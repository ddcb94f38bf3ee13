"""Config loading: defaults, overrides, and one clear error per mistake."""

import pytest
import yaml

from tfrs_irns.config import Config, from_dict, load_config, parse_overrides, resolve_logq, save_config
from tfrs_irns.errors import ConfigError


def write(tmp_path, text, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_defaults_are_the_paper_setup():
    c = Config()
    assert c.train.batch_size == 600
    assert c.negatives.num_negatives == 3000
    assert c.negatives.mode == "mixed"
    assert c.eval.ks == [1, 5, 10, 50, 100]


def test_file_and_overrides(tmp_path):
    path = write(tmp_path, "train:\n  epochs: 2\nnegatives:\n  mode: in_batch\n")
    c = load_config(path, ["train.epochs=7", "eval.ks=[1, 10]", "negatives.logq=false", "data.min_rating=null"])
    assert c.name == "exp"
    assert c.train.epochs == 7
    assert c.negatives.mode == "in_batch"
    assert c.eval.ks == [1, 10]
    assert c.negatives.logq is False
    assert c.train.learning_rate == 0.1  # untouched default


def test_ints_accepted_for_floats_not_the_reverse(tmp_path):
    assert from_dict({"train": {"learning_rate": 1}}).train.learning_rate == 1.0
    with pytest.raises(ConfigError, match=r"train.epochs: expected an integer, got 2.5"):
        from_dict({"train": {"epochs": 2.5}})


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"train": {"batch_size": 0}}, r"train.batch_size: must be > 0, got 0"),
        ({"data": {"test_fraction": 1.0}}, r"data.test_fraction: must be in \(0, 1\), got 1.0"),
        ({"data": {"test_fraction": 0}}, r"data.test_fraction: must be in \(0, 1\)"),
        ({"train": {"batchsize": 10}}, r"train.batchsize: unknown key \(did you mean 'train.batch_size'\?\)"),
        ({"trian": {}}, r"trian: unknown key \(did you mean 'train'\?\)"),
        ({"negatives": {"mode": "hard"}}, r"negatives.mode: expected one of 'in_batch', 'random', 'mixed', 'full', got 'hard'"),
        ({"model": {"normalize": "yes"}}, r"model.normalize: expected true or false, got 'yes'"),
        ({"eval": {"ks": []}}, r"eval.ks: must be a non-empty list"),
        ({"eval": {"ks": 10}}, r"eval.ks: expected a list of an integer, got 10"),
        ({"train": 5}, r"train: expected a mapping of keys, got 5"),
    ],
)
def test_bad_values_name_the_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(raw)


def test_errors_name_the_file(tmp_path):
    path = write(tmp_path, "train:\n  batch_size: -1\n")
    with pytest.raises(ConfigError, match=rf"^{path}: train.batch_size: must be > 0, got -1$"):
        load_config(path)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.yaml: config file not found"):
        load_config(str(tmp_path / "nope.yaml"))
    path = write(tmp_path, "train:\n  epochs: [1,\n")
    with pytest.raises(ConfigError, match=r"exp.yaml: line \d+ invalid YAML"):
        load_config(path)
    path = write(tmp_path, "- a\n- b\n", "list.yaml")
    with pytest.raises(ConfigError, match=r"expected a mapping of sections"):
        load_config(path)


@pytest.mark.parametrize("pair", ["train.epochs", "=3", "train..epochs=3"])
def test_bad_set_syntax(pair):
    with pytest.raises(ConfigError, match=r"expected section.key=value"):
        parse_overrides([pair])


def test_set_bad_yaml_value():
    with pytest.raises(ConfigError, match=r"--set eval.ks: cannot parse value"):
        parse_overrides(["eval.ks=[1,"])


def test_save_round_trip(tmp_path):
    c = load_config(None, ["train.epochs=4", "data.synthetic.num_users=10"])
    out = tmp_path / "config.yaml"
    save_config(c, str(out))
    again = load_config(str(out))
    assert again == c
    assert yaml.safe_load(out.read_text())["train"]["epochs"] == 4


def test_logq_default_depends_on_mode():
    assert resolve_logq(from_dict({"negatives": {"mode": "mixed"}}).negatives)
    assert resolve_logq(from_dict({"negatives": {"mode": "in_batch"}}).negatives)
    assert not resolve_logq(from_dict({"negatives": {"mode": "random"}}).negatives)
    assert not resolve_logq(from_dict({"negatives": {"mode": "mixed", "logq": False}}).negatives)


def test_shipped_configs_load():
    import glob

    paths = sorted(glob.glob("configs/*.yaml"))
    assert {p.split("/")[-1] for p in paths} >= {
        "quickstart.yaml",
        "movielens-100k.yaml",
        "movielens-1m.yaml",
        "movielens-latest-small.yaml",
    }
    for path in paths:
        load_config(path)
