"""The parameter objects (``tfrs_irns/*/params.py``): each setting and its rule written once.

A rule beside its field is checked in the library's words when the object is
built (``ValueError`` naming the argument) and in the config's words when a
file is loaded (``ConfigError`` naming the file and the dotted key), with the
same rule text; the experimental options live under ``experimental`` only.
"""

import dataclasses

import pytest
import yaml

from tfrs_irns._params import check_fields, param
from tfrs_irns.batching.params import GcbsParams
from tfrs_irns.config import Config, experimental_keys, from_dict, iter_keys, load_config, save_config
from tfrs_irns.data.params import SOURCES, CsvParams, DataParams, SyntheticParams, streaming_sources
from tfrs_irns.errors import ConfigError
from tfrs_irns.evaluation.params import metric_names, monitor_mode, monitor_names, validation_keys
from tfrs_irns.export.params import AnnParams
from tfrs_irns.layers.params import HistoryParams
from tfrs_irns.tasks.params import NegativesParams, full_softmax_fits, logq_on

PARAMS = [GcbsParams, NegativesParams, AnnParams, HistoryParams, DataParams, CsvParams, SyntheticParams]

# (config section, params class, field, a value its rule refuses)
OUT_OF_RANGE = [
    ("batching.gcbs", GcbsParams, "neighbors", 0),
    ("batching.gcbs", GcbsParams, "start_epoch", -1),
    ("negatives", NegativesParams, "num_hard_negatives", 0),
    ("negatives", NegativesParams, "alpha", -0.5),
    ("export.ann", AnnParams, "pq_bits", 17),
    ("export.ann", AnnParams, "target_recall", 1.5),
    ("model.history", HistoryParams, "dropout", 1.0),
    ("data", DataParams, "validation_fraction", 1.0),
    ("data.synthetic", SyntheticParams, "affinity", 2.0),
    ("negatives", NegativesParams, "mode", "exact"),  # a choice is a rule too
]


def _nested(key, value):
    out = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


@pytest.mark.parametrize("section, cls, name, value", OUT_OF_RANGE)
def test_one_rule_checked_by_the_library_and_by_config_loading_in_the_same_words(section, cls, name, value):
    with pytest.raises(ValueError) as library:
        cls(**{name: value})
    assert str(library.value).startswith(f"{name}: ")
    with pytest.raises(ConfigError) as loading:
        from_dict(_nested(f"{section}.{name}", value), "exp.yaml: ")
    assert str(loading.value) == f"exp.yaml: {section}.{name}: " + str(library.value)[len(name) + 2:]


def test_rules_are_checked_on_every_copy_and_the_objects_are_frozen():
    gcbs = GcbsParams(neighbors=10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        gcbs.neighbors = 0  # type: ignore[misc]
    with pytest.raises(ValueError, match=r"^neighbors: must be > 0, got 0$"):
        dataclasses.replace(gcbs, neighbors=0)
    assert dataclasses.replace(gcbs, neighbors=20).neighbors == 20
    for cls in PARAMS:
        assert cls.__dataclass_params__.frozen, cls.__name__
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.negatives.mode = "full"  # type: ignore[misc]


@pytest.mark.parametrize("cls", PARAMS)
def test_defaults_pass_their_own_rules(cls):
    check_fields(cls())  # a default out of its range would make every config invalid


def test_a_field_without_a_rule_takes_any_value_of_its_type():
    @dataclasses.dataclass(frozen=True)
    class Plain:
        size: int = param(3, "no rule")
        low: int = param(1, "a rule", check=(lambda v: v >= 1, "must be >= 1"))

    check_fields(Plain(size=-7))
    with pytest.raises(ValueError, match=r"^low: must be >= 1, got 0$"):
        check_fields(Plain(low=0))


# ----------------------------------------------------------------- experimental


def test_each_experimental_option_sets_its_library_field():
    keys = experimental_keys()
    assert set(keys) == {
        "logq_variant", "mask_same_user", "gcbs_threshold", "gcbs_quantile", "gcbs_similarity", "gcbs_graph",
        "gcbs_exclude_above_positive",
    }
    config = from_dict({"experimental": {"mask_same_user": True, "gcbs_similarity": "cosine", "gcbs_quantile": 0.5}})
    assert config.negatives.mask_same_user is True
    assert config.batching.gcbs.similarity == "cosine" and config.batching.gcbs.quantile == 0.5
    assert config.batching.gcbs.neighbors == GcbsParams().neighbors  # the rest of the section: defaults
    # With the section given too, both land in it.
    config = from_dict({"batching": {"gcbs": {"neighbors": 7}}, "experimental": {"gcbs_graph": "item_item"}})
    assert (config.batching.gcbs.neighbors, config.batching.gcbs.graph) == (7, "item_item")


@pytest.mark.parametrize("name", sorted(experimental_keys()))
def test_an_old_key_names_its_new_home(tmp_path, name):
    home, _, f = experimental_keys()[name]
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(_nested(home, f.default)))
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(err.value) == f"{path}: {home}: moved to experimental.{name}"
    with pytest.raises(ConfigError, match=rf"{home}: moved to experimental\.{name}$"):
        load_config(None, [f"{home}={yaml.safe_dump(f.default).splitlines()[0]}"])


def test_unknown_experimental_key_and_bad_section():
    with pytest.raises(ConfigError, match=r"^experimental\.mask_same_users: unknown key "
                                          r"\(did you mean 'experimental\.mask_same_user'\?\)$"):
        from_dict({"experimental": {"mask_same_users": True}})
    with pytest.raises(ConfigError, match=r"^experimental: expected a mapping of keys, got 3$"):
        from_dict({"experimental": 3})
    with pytest.raises(ConfigError, match=r"^experimental\.mask_same_user: expected true or false, got 'yes'$"):
        from_dict({"experimental": {"mask_same_user": "yes"}})


def test_saved_config_keeps_experimental_settings_under_experimental(tmp_path):
    config = load_config(None, ["experimental.logq_variant=refined", "experimental.gcbs_graph=item_item"])
    path = tmp_path / "config.yaml"
    save_config(config, str(path))
    saved = yaml.safe_load(path.read_text())
    assert saved["experimental"]["logq_variant"] == "refined" and saved["experimental"]["gcbs_graph"] == "item_item"
    assert "logq_variant" not in saved["negatives"] and "graph" not in saved["batching"]["gcbs"]
    assert load_config(str(path)) == config
    # The reference lists them once, under experimental.
    keys = [key for key, _, _ in iter_keys()]
    assert "experimental.logq_variant" in keys and "negatives.logq_variant" not in keys


# ------------------------------------------------------- rules asked, not restated


def test_logq_default_and_full_softmax_limit_are_one_rule():
    from tfrs_irns.tasks import irns

    assert irns.logq_on is logq_on and irns.full_softmax_fits is full_softmax_fits
    assert [logq_on(m, None) for m in ("in_batch", "random", "mixed", "full")] == [True, False, True, False]
    assert logq_on("random", True) and not logq_on("full", True) and not logq_on("mixed", False)
    assert NegativesParams(mode="in_batch").logq_on and not NegativesParams(mode="full", logq=True).logq_on
    assert full_softmax_fits("full", 10, 10) and not full_softmax_fits("full", 11, 10)
    assert full_softmax_fits("mixed", 11, 10)


def test_metric_names_follow_one_grammar():
    assert metric_names([1, 10]) == [
        "hit_rate@1", "hit_rate@10", "recall@1", "recall@10", "ndcg@1", "ndcg@10", "coverage@1", "coverage@10", "mrr",
    ]
    assert monitor_names([5]) == ["loss", "val_hit_rate@5", "val_recall@5", "val_ndcg@5", "val_coverage@5", "val_mrr"]
    assert validation_keys([10], "val_ndcg@10") == ["hit_rate@10", "mrr", "ndcg@10"]
    assert validation_keys([10], "loss") == validation_keys([10], "val_mrr") == ["hit_rate@10", "mrr"]
    assert (monitor_mode("loss"), monitor_mode("val_loss"), monitor_mode("val_mrr")) == ("min", "min", "max")


def test_sources_declare_what_they_provide():
    from tfrs_irns._params import type_hints

    assert set(SOURCES) == set(type_hints(DataParams)["source"].__args__)
    assert streaming_sources() == ("csv", "parquet")
    movielens = DataParams(source="movielens")
    assert movielens.has_item_feature("title") and movielens.has_item_feature("genres")
    bare = DataParams(source="csv")
    assert not bare.has_item_feature("title")
    items = DataParams(source="csv", csv=CsvParams(items_path="items.csv", item_columns={"brand": "categorical"}))
    assert items.has_item_feature("title")  # title_column defaults to "title"
    assert not items.has_item_feature("genres")  # genres_column defaults to null
    assert items.has_item_feature("brand") and not DataParams(source="synthetic").has_item_feature("brand")


def test_a_run_config_saved_before_the_move_loads_with_its_settings_at_their_new_place(tmp_path):
    # A run folder's config.yaml holds every key; one written before the experimental section
    # holds the moved keys at their old places. It is the run's own config: read, not refused.
    old = Config().to_dict()
    old.pop("experimental", None)
    old["negatives"]["logq_variant"] = "refined"
    old["negatives"]["mask_same_user"] = True
    old["batching"]["gcbs"]["similarity"] = "cosine"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(old))
    with pytest.raises(ConfigError, match=r": moved to experimental\."):
        load_config(str(path))
    config = load_config(str(path), saved=True)
    assert config.negatives.logq_variant == "refined" and config.negatives.mask_same_user is True
    assert config.batching.gcbs.similarity == "cosine"
    assert config.batching.gcbs.graph == GcbsParams().graph  # untouched keys keep their defaults
