"""Config loading: defaults, overrides, and one clear error per mistake."""

import dataclasses
import os
from dataclasses import dataclass
from typing import Optional

import pytest
import yaml

from tfrs_irns import config as config_module
from tfrs_irns._params import param as _f
from tfrs_irns.config import (
    Config,
    EvalConfig,
    absolute_paths,
    from_dict,
    iter_keys,
    load_config,
    monitor_names,
    parse_overrides,
    save_config,
    validate,
)
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
    c = load_config(path, [
        "train.epochs=7", "eval.ks=[1, 10]", "negatives.logq=false", "data.min_rating=null",
        "train.early_stopping.monitor=val_hit_rate@10",  # K must be one of eval.ks
    ])
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
    # The rule lives with the negatives' parameters (tasks/params.py), which the task asks too.
    assert from_dict({"negatives": {"mode": "mixed"}}).negatives.logq_on
    assert from_dict({"negatives": {"mode": "in_batch"}}).negatives.logq_on
    assert not from_dict({"negatives": {"mode": "random"}}).negatives.logq_on
    assert not from_dict({"negatives": {"mode": "mixed", "logq": False}}).negatives.logq_on


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


# ------------------------------------------------- every key's rule, at load


@pytest.mark.parametrize(
    "raw, message",
    [
        # The batching.gcbs rules (once also checked by the GCBS callback).
        ({"experimental": {"gcbs_threshold": "best"}},
         r"experimental\.gcbs_threshold: expected 'topk' or 'quantile', got 'best'$"),
        ({"batching": {"gcbs": {"every": 0}}}, r"batching\.gcbs\.every: must be > 0, got 0$"),
        ({"batching": {"gcbs": {"start_epoch": -1}}}, r"batching\.gcbs\.start_epoch: must be >= 0, got -1$"),
        ({"batching": {"gcbs": {"neighbors": 0}}}, r"batching\.gcbs\.neighbors: must be > 0, got 0$"),
        ({"experimental": {"gcbs_quantile": 1.0}}, r"experimental\.gcbs_quantile: must be in \(0, 1\), got 1\.0$"),
        ({"batching": {"gcbs": {"links_per_example": 0}}}, r"batching\.gcbs\.links_per_example: must be > 0, got 0$"),
        ({"batching": {"gcbs": {"graph_builder": "faiss"}}},
         r"batching\.gcbs\.graph_builder: expected one of 'auto', 'exact', 'ann', got 'faiss'"),
        ({"batching": {"gcbs": {"ann_nlist": -1}}}, r"batching\.gcbs\.ann_nlist: must be >= 0, got -1$"),
        ({"batching": {"gcbs": {"ann_nprobe": 0}}}, r"batching\.gcbs\.ann_nprobe: must be > 0, got 0$"),
        ({"batching": {"gcbs": {"max_scored_pairs": 0}}}, r"batching\.gcbs\.max_scored_pairs: must be > 0, got 0$"),
        ({"batching": {"gcbs": {"max_links": 0}}}, r"batching\.gcbs\.max_links: must be > 0, got 0$"),
        # The task's and the sampler's keys (the library objects now name their own arguments).
        ({"model": {"temperature": 0}}, r"model\.temperature: must be > 0, got 0$"),
        ({"model": {"temperature": -0.5}}, r"model\.temperature: must be > 0, got -0\.5$"),
        ({"negatives": {"num_hard_negatives": 0}}, r"negatives\.num_hard_negatives: must be > 0, got 0$"),
        ({"negatives": {"num_negatives": 0}}, r"negatives\.num_negatives: must be > 0, got 0$"),
        ({"negatives": {"alpha": -1}}, r"negatives\.alpha: must be >= 0, got -1$"),
        ({"negatives": {"sampler": "zipf"}}, r"negatives\.sampler: expected 'uniform' or 'unigram', got 'zipf'$"),
        ({"negatives": {"full_max_items": 0}}, r"negatives\.full_max_items: must be > 0, got 0$"),
        ({"eval": {"ks": [5, 0]}}, r"eval\.ks: must be a non-empty list of K > 0, got \[5, 0\]$"),
        ({"eval": {"ks": [2.5]}}, r"eval\.ks: expected an integer, got 2\.5$"),
    ],
)
def test_every_config_key_rule_is_checked_at_load(raw, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(raw)


def test_null_hard_negatives_and_zero_alpha_are_allowed():
    c = from_dict({"negatives": {"num_hard_negatives": None, "alpha": 0}})
    assert c.negatives.num_hard_negatives is None and c.negatives.alpha == 0.0


def test_every_range_rule_names_a_real_key():
    # A renamed field must not silently lose its rule.
    leaves = {key for key, tp, _ in iter_keys() if not dataclasses.is_dataclass(tp)}
    assert {key for keys, _, _ in config_module._CROSS_RULES for key in keys} <= leaves


# --------------------------------------------------- rules across keys


def test_monitor_must_name_a_metric_the_run_logs():
    ks = {"eval": {"ks": [1, 10]}}
    assert monitor_names(Config(eval=EvalConfig(ks=[1, 10]))) == [
        "loss", "val_hit_rate@1", "val_hit_rate@10", "val_recall@1", "val_recall@10",
        "val_ndcg@1", "val_ndcg@10", "val_coverage@1", "val_coverage@10", "val_mrr",
    ]
    for good in ("loss", "val_mrr", "val_ndcg@10", "val_coverage@1"):
        assert from_dict({**ks, "train": {"early_stopping": {"monitor": good}}}).train.early_stopping.monitor == good
    # K must come from eval.ks: the default monitor val_hit_rate@100 is wrong with ks [1, 10].
    with pytest.raises(ConfigError) as err:
        from_dict(ks)
    assert str(err.value) == (
        "train.early_stopping.monitor='val_hit_rate@100': expected one of loss, val_hit_rate@1, val_hit_rate@10, "
        "val_recall@1, val_recall@10, val_ndcg@1, val_ndcg@10, val_coverage@1, val_coverage@10, val_mrr "
        "(K from eval.ks)"
    )
    with pytest.raises(ConfigError, match=r"train.early_stopping.monitor='val_hitrate@100': expected one of .*val_hit_rate@100"):
        from_dict({"train": {"early_stopping": {"monitor": "val_hitrate@100"}}})


@pytest.mark.parametrize("split", ["random", "temporal", "leave_last_out"])
def test_early_stopping_needs_a_validation_fraction(split):
    with pytest.raises(ConfigError) as err:
        from_dict({"data": {"split": split, "validation_fraction": 0}})
    assert str(err.value) == (
        "train.early_stopping.enabled=true needs a validation split: set data.validation_fraction > 0 "
        "or train.early_stopping.enabled=false"
    )
    off = from_dict({"data": {"split": split, "validation_fraction": 0}, "train": {"early_stopping": {"enabled": False}}})
    assert off.data.validation_fraction == 0.0


def test_cross_replica_defaults_to_null_meaning_true_with_several_replicas():
    assert from_dict({}).negatives.cross_replica is None
    assert from_dict({"negatives": {"cross_replica": True}}).negatives.cross_replica is True
    assert from_dict({"negatives": {"cross_replica": False}}).negatives.cross_replica is False


def test_rules_across_keys_name_the_file_and_the_set_flags(tmp_path):
    path = write(tmp_path, "eval:\n  ks: [1, 10]\n", "ks.yaml")
    with pytest.raises(ConfigError, match=rf"^{path} \(with --set\): train.early_stopping.monitor='val_hit_rate@50'"):
        load_config(path, ["train.early_stopping.monitor=val_hit_rate@50"])
    with pytest.raises(ConfigError, match=rf"^{path}: train.early_stopping.monitor='val_hit_rate@50'"):
        write(tmp_path, "eval:\n  ks: [1, 10]\ntrain:\n  early_stopping:\n    monitor: val_hit_rate@50\n", "ks.yaml")
        load_config(path)


def test_validate_checks_a_config_built_in_python():
    c = Config()
    assert validate(c) == c
    c.train.early_stopping.monitor = "val_mrr@5"
    with pytest.raises(ConfigError, match="train.early_stopping.monitor='val_mrr@5'"):
        validate(c)
    c = Config()
    c.train.batch_size = 0
    with pytest.raises(ConfigError, match=r"^in code: train.batch_size: must be > 0, got 0$"):
        validate(c, "in code: ")
    c = Config()
    c.train.learning_rate = 1
    checked = validate(c)
    assert isinstance(checked.train.learning_rate, float) and c.train.learning_rate == 1


# ------------------------------------------------------ reading the file


def test_a_config_that_is_not_utf8_names_the_file_and_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("train:\n  epochs: 2\nname: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(err.value) == f"{path}: line 3: not UTF-8 text (save the config file as UTF-8)"


def test_a_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbftrain:\n  epochs: 3\n")
    assert load_config(str(path)).train.epochs == 3


def test_a_folder_is_not_a_config(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(str(tmp_path))
    assert str(err.value) == f"{tmp_path}: is a folder, expected a YAML config file"


def test_an_unreadable_config_names_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, "train:\n  epochs: 2\n")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    # Tests run as root, where chmod does not stop reads: fail the open itself.
    monkeypatch.setattr(config_module, "open", refuse, raising=False)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: cannot read the config file (Permission denied)"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_config_without_read_permission(tmp_path):
    path = write(tmp_path, "train:\n  epochs: 2\n")
    os.chmod(path, 0)
    with pytest.raises(ConfigError, match=rf"^{path}: cannot read the config file"):
        load_config(path)


# ------------------------------------------------------------ path keys


def test_the_path_keys():
    flagged = {key for key, _, f in iter_keys() if f.metadata.get("path")}
    assert flagged == {"data.path", "data.tfds_data_dir", "data.csv.items_path", "data.cache_dir"}


def test_absolute_paths_fixes_every_path_key_and_nothing_else(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = from_dict({
        "data": {"path": "ml/ratings.csv", "tfds_data_dir": "tfds", "csv": {"items_path": "../items.csv"}},
        "export": {"base_dir": "out"},
        "name": "relative",
    })
    fixed = absolute_paths(c)
    assert fixed.data.path == os.path.join(str(tmp_path), "ml", "ratings.csv")
    assert fixed.data.tfds_data_dir == os.path.join(str(tmp_path), "tfds")
    assert fixed.data.csv.items_path == os.path.join(os.path.dirname(str(tmp_path)), "items.csv")
    # Everything else is what it was; the input is not changed.
    restored = dataclasses.replace(
        fixed,
        data=dataclasses.replace(
            fixed.data, path="ml/ratings.csv", tfds_data_dir="tfds",
            csv=dataclasses.replace(fixed.data.csv, items_path="../items.csv"),
        ),
    )
    assert restored == c
    assert c.data.path == "ml/ratings.csv" and fixed.export.base_dir == "out"
    # Null paths stay null, absolute ones as they are.
    assert absolute_paths(Config()) == Config()
    assert absolute_paths(from_dict({"data": {"path": "/srv/ml"}})).data.path == "/srv/ml"


@dataclass
class _Inner:
    where: Optional[str] = _f(None, "a nested path", path=True)
    label: str = _f("x/y", "not a path")


@dataclass
class _Outer:
    inner: _Inner = _f(help="a section", factory=_Inner)
    top: Optional[str] = _f(None, "a path", path=True)


def test_absolute_paths_walks_any_depth(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fixed = absolute_paths(_Outer(_Inner(where="a/b", label="c/d"), top="e"))
    assert fixed == _Outer(_Inner(where=str(tmp_path / "a" / "b"), label="c/d"), top=str(tmp_path / "e"))
    assert absolute_paths(_Outer()) == _Outer()


@pytest.mark.parametrize("text, value", [("1e-3", 0.001), ("5E+2", 500.0), ("+.5e1", 5.0), ("2", 2.0)])
def test_yaml_1_1_exponent_floats_are_numbers(tmp_path, text, value):
    # YAML 1.1 reads 1e-3 (no dot) as a string; for a float key it is a number.
    assert load_config(None, [f"train.learning_rate={text}"]).train.learning_rate == value
    path = tmp_path / "c.yaml"
    path.write_text(f"model:\n  embedding_l2: {text}\n", encoding="utf-8")
    assert load_config(str(path)).model.embedding_l2 == value


def test_integer_column_positions_are_read_as_positions(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  source: csv\n  csv:\n    header: false\n    user_column: 0\n    item_column: 2\n"
                    "    timestamp_column: null\n", encoding="utf-8")
    csv = load_config(str(path)).data.csv
    assert (csv.user_column, csv.item_column) == ("0", "2")
    with pytest.raises(ConfigError, match="train.epochs: expected an integer, got '3'"):
        load_config(None, ["train.epochs='3'"])  # only column keys turn numbers into names


def test_evaluate_overrides_skip_rules_that_tie_eval_to_training():
    # eval.ks=[20] leaves the monitor val_hit_rate@100 unlogged: training's rule, not evaluation's.
    with pytest.raises(ConfigError, match="train.early_stopping.monitor"):
        load_config("configs/quickstart.yaml", ["eval.ks=[20]"])
    assert load_config("configs/quickstart.yaml", ["eval.ks=[20]"], sections=("eval",)).eval.ks == [20]


def test_refined_logq_rule_follows_the_tasks_logq_default():
    # The config's rule asks the task's logQ default (tasks/params.py): check them against each other.
    from tfrs_irns.tasks.irns import MODES, default_logq

    for mode in MODES:
        settings = {"negatives": {"mode": mode}, "experimental": {"logq_variant": "refined"}}
        if default_logq(mode) and mode != "full":
            assert from_dict(settings).negatives.logq_variant == "refined"
        else:
            with pytest.raises(ConfigError, match="experimental.logq_variant=refined"):
                from_dict(settings)
