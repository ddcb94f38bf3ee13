"""Library errors name their own arguments; a run rewords them as config keys, the CLI as flags.

The oracle is the hand-written line a user of each layer should read.
"""

import pytest

import tfrs_irns  # noqa: F401
from tfrs_irns.config import iter_keys, load_config
from tfrs_irns.errors import ConfigError, DataError, DivergedError, UserError, reword
from tfrs_irns.runs.wording import DATA_KEYS, DIVERGED_ADVICE, config_words, in_config_words

KEYS = {"min_rating": "data.min_rating", "header": "data.csv.header", "k": "-k", "index": "--index",
        "output": "--output", "item_columns": "data.csv.item_columns"}


@pytest.mark.parametrize("message,arguments,expected", [
    # A key takes key=value, with YAML's spelling of True/False/None.
    ("no interactions left after min_rating=4.5 (ratings range from 2 to 3)", ["min_rating"],
     "no interactions left after data.min_rating=4.5 (ratings range from 2 to 3)"),
    ("user_column: with header=False, columns", ["header"], "user_column: with data.csv.header=false, columns"),
    ("set min_rating=None", ["min_rating"], "set data.min_rating=null"),
    # A flag takes "flag value", and a bare flag for =True.
    ("k=4: m/1 returns at most 3 items (its top-k size)", ["k"], "-k 4: m/1 returns at most 3 items (its top-k size)"),
    ("index=True: m/1 has no folder", ["index"], "--index: m/1 has no folder"),
    ("output=/tmp/a b/r.csv: expected a .jsonl", ["output"], "--output /tmp/a b/r.csv: expected a .jsonl"),
    ("k: must be at least 1, got 0", ["k"], "-k: must be at least 1, got 0"),
    # A dotted child of an argument keeps its tail.
    ("no column 'brand' (item_columns.brand)", ["item_columns"], "no column 'brand' (data.csv.item_columns.brand)"),
    # Only whole words, only the arguments the error declares.
    ("/data/min_rating/x.csv: bad (min_rating_x, header)", ["min_rating"], "/data/min_rating/x.csv: bad (min_rating_x, header)"),
    ("min_rating: see header", ["min_rating", "nope"], "data.min_rating: see header"),
])
def test_reword_spells_each_declared_argument(message, arguments, expected):
    assert reword(message, arguments, KEYS) == expected


def test_reworded_keeps_the_type_and_only_touches_errors_that_name_arguments():
    err = ConfigError("min_rating: bad", arguments=["min_rating"])
    new = err.reworded(KEYS)
    assert type(new) is ConfigError and str(new) == "data.min_rating: bad" and new.arguments == ()
    assert str(err) == "min_rating: bad"  # the original is left as it was
    plain = DataError("x.csv, line 3: expected 3 columns")
    assert plain.reworded(KEYS) is plain and plain.arguments == ()
    assert UserError("k: x", arguments=["k"]).reworded({"other": "y"}).arguments == ("k",)


def test_every_data_argument_maps_to_its_key():
    data_keys = {key for key, _, _ in iter_keys() if key.startswith("data.")}
    assert set(DATA_KEYS.values()) == data_keys  # every data key, each from its own field name
    assert DATA_KEYS["user_column"] == "data.csv.user_column" and DATA_KEYS["data_dir"] == "data.tfds_data_dir"
    assert DATA_KEYS["num_items"] == "data.synthetic.num_items" and DATA_KEYS["split"] == "data.split"


def test_config_words_rewords_data_errors_and_adds_the_divergence_advice_once():
    with pytest.raises(DataError, match=r"^split=cold_users needs at least 2 users$"):
        raise DataError("split=cold_users needs at least 2 users", arguments=["split"])
    with pytest.raises(DataError, match=r"^data\.split=cold_users needs at least 2 users$"):
        with config_words():
            raise DataError("split=cold_users needs at least 2 users", arguments=["split"])

    @config_words()
    @config_words()  # run functions call each other: the advice is said once
    def diverge():
        raise DivergedError("evaluation: query_emb contains NaN or inf values; training probably diverged")

    with pytest.raises(DivergedError) as err:
        diverge()
    assert str(err.value) == (
        "evaluation: query_emb contains NaN or inf values; training probably diverged (try a lower train.learning_rate)"
    )
    assert str(in_config_words(err.value)).count(DIVERGED_ADVICE) == 1
    with pytest.raises(ValueError, match="a bug"):  # not a user's mistake: untouched
        with config_words():
            raise ValueError("a bug")


@pytest.mark.slow
def test_a_python_train_call_reads_the_config_keys(tmp_path):
    """``tfrs_irns.train`` from Python, no CLI: a data error names the YAML key, before any folder is written."""
    from tfrs_irns.runs import train

    data = tmp_path / "events.csv"
    data.write_text("user_id,item_id\nu1,a\nu2,b\n")
    config = load_config(None, ["data.source=csv", f"data.path={data}", "export.enabled=false"])
    with pytest.raises(DataError) as err:
        train(config, str(tmp_path / "run"), verbose=0)
    assert str(err.value) == (
        f"{data}: no column 'timestamp' (data.csv.timestamp_column); the header has 'user_id', 'item_id'; "
        "set data.csv.timestamp_column=null to use the row order as time"
    )
    assert not (tmp_path / "run").exists()
