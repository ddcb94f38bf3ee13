"""Publishing runs: a run's vocabularies are its truth, and only a run that deserves it is served."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfrs_irns.cli.main import main
from tfrs_irns.config import Config
from tfrs_irns.data.prepare import Catalogue
from tfrs_irns.data.vocab import Vocabulary
from tfrs_irns.runs.exporting import latest_metadata, publish_decision, record_export
from tfrs_irns.runs.serving_files import export_serving_files
from tfrs_irns.runs.training import Run

from helpers import TINY_CSV_OVERRIDES, with_tiny, write_tiny_csv


def val(value, monitor="val_hit_rate@100", higher=True):
    return {"monitor": monitor, "value": value, "epoch": 1, "higher_is_better": higher}


def publish_meta(model_dir, version, **meta):
    folder = model_dir / str(version) / "assets.extra"
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")


@pytest.mark.parametrize(
    "published, candidate, expected, reason",
    [
        (None, dict(data_fingerprint="a", validation=val(0.1)), True, "nothing published under"),
        # Other data and nothing to compare the two models with: not published (finding 1 of issue 25).
        (dict(data_fingerprint="a", validation=val(0.5)), dict(data_fingerprint="b", validation=val(0.9)), False,
         "trained on other data than"),
        # An identical model (same weights, vocabularies, settings) is never a new version, even on a tie.
        (dict(data_fingerprint="a", validation=val(0.5), model_fingerprint="f"),
         dict(data_fingerprint="a", validation=val(0.5), model_fingerprint="f"), False, "identical to"),
        (dict(data_fingerprint="a", validation=val(0.5), model_fingerprint="f"),
         dict(data_fingerprint="a", validation=val(0.5), model_fingerprint="g"), True, "0.5000 vs 0.5000"),
        (dict(data_fingerprint="a", validation=val(0.5)), dict(data_fingerprint="a", validation=val(0.5)), True,
         "val_hit_rate@100 0.5000 vs 0.5000"),
        (dict(data_fingerprint="a", validation=val(0.5)), dict(data_fingerprint="a", validation=val(0.4)), False,
         "val_hit_rate@100 0.4000 vs 0.5000"),
        (dict(data_fingerprint="a", validation=val(2.0, "loss", False)),
         dict(data_fingerprint="a", validation=val(1.5, "loss", False)), True, "loss 1.5000 vs 2.0000"),
        (dict(data_fingerprint="a", validation=val(2.0, "loss", False)),
         dict(data_fingerprint="a", validation=val(2.5, "loss", False)), False, "loss 2.5000 vs 2.0000"),
        (dict(data_fingerprint="a", validation=None), dict(data_fingerprint="a", validation=val(0.1)), True,
         "records no validation metric to beat"),
        (dict(data_fingerprint="a", validation=val(0.5)), dict(data_fingerprint="a", validation=None), False,
         "this run logged no val_hit_rate@100"),
        (dict(data_fingerprint="a", validation=val(0.5)),
         dict(data_fingerprint="a", validation=val(0.9, "val_mrr")), False, "logged val_mrr, not val_hit_rate@100"),
    ],
)
def test_auto_publishes_only_what_deserves_it(tmp_path, published, candidate, expected, reason):
    model_dir = tmp_path / "m"
    if published is not None:
        publish_meta(model_dir, 1, **{"data_fingerprint": "old", "validation": val(0.99)})
        publish_meta(model_dir, 2, **published)  # the latest is the one compared with
    decision, why = publish_decision("auto", candidate, str(model_dir))
    assert decision is expected and reason in why


class FakeComparison:
    def __init__(self, *rows):
        from tfrs_irns.runs.champion import Comparison

        self.inner = Comparison("val_hit_rate@100", list(rows))
        self.rows = self.inner.rows
        self.calls = []

    def __call__(self, latest, published):
        self.calls.append((latest, published["data_fingerprint"]))
        return self.inner


@pytest.mark.parametrize(
    "rows, tolerance, expected",
    [
        ([("on this run's validation split", 0.30, 0.10), ("on the served version's validation split", 0.05, 0.40)],
         0.0, False),  # better on its own data, much worse on the served users: the finding-1 experiment
        ([("on this run's validation split", 0.30, 0.10), ("on the served version's validation split", 0.41, 0.40)],
         0.0, True),
        ([("on this run's validation split", 0.30, 0.30)], 0.0, True),  # a tie publishes
        ([("on this run's validation split", 0.29, 0.30)], 0.0, False),
        ([("on this run's validation split", 0.29, 0.30)], 0.02, True),  # within export.publish_tolerance
        ([], 0.0, False),  # no validation split to compare on
    ],
)
def test_other_data_publishes_only_a_candidate_at_least_as_good_on_the_same_examples(tmp_path, rows, tolerance, expected):
    publish_meta(tmp_path / "m", 1, data_fingerprint="a", validation=val(0.9))
    compare = FakeComparison(*rows)
    decision, why = publish_decision("auto", dict(data_fingerprint="b", validation=val(0.2)), str(tmp_path / "m"),
                                     compare=compare, tolerance=tolerance)
    assert decision is expected
    assert compare.calls == [(str(tmp_path / "m" / "1"), "a")]
    assert "\n" not in why and "other data" in why
    for label, mine, theirs in rows:
        assert f"{mine:.4f} vs {theirs:.4f} {label}" in why


def test_a_served_version_that_cannot_be_scored_is_not_replaced(tmp_path):
    from tfrs_irns.errors import UserError

    publish_meta(tmp_path / "m", 1, data_fingerprint="a", validation=val(0.9))

    def broken(latest, published):
        raise UserError(f"{latest}: cannot be read as a SavedModel version (no saved_model.pb)")

    ok, why = publish_decision("auto", dict(data_fingerprint="b"), str(tmp_path / "m"), compare=broken)
    assert not ok and "could not be scored" in why and "no saved_model.pb" in why


def test_tolerance_on_the_same_data(tmp_path):
    publish_meta(tmp_path / "m", 1, data_fingerprint="a", validation=val(0.50))
    assert publish_decision("auto", dict(data_fingerprint="a", validation=val(0.49)), str(tmp_path / "m"))[0] is False
    ok, why = publish_decision("auto", dict(data_fingerprint="a", validation=val(0.49)), str(tmp_path / "m"),
                               tolerance=0.02)
    assert ok and "tolerance 0.02" in why


def test_always_and_never_do_not_look(tmp_path):
    publish_meta(tmp_path / "m", 1, data_fingerprint="a", validation=val(0.9))
    worse = dict(data_fingerprint="a", validation=val(0.1))
    assert publish_decision("always", worse, str(tmp_path / "m")) == (True, "export.publish=always")
    assert publish_decision("never", worse, str(tmp_path / "nothing")) == (False, "export.publish=never")


def test_latest_metadata_of_a_folder_without_versions(tmp_path):
    assert latest_metadata(str(tmp_path / "none")) == (None, None)
    (tmp_path / "m" / "3").mkdir(parents=True)  # a version without metadata: compared as "no record"
    assert latest_metadata(str(tmp_path / "m")) == (str(tmp_path / "m" / "3"), {})


def test_serving_files_return_what_metrics_json_records_and_only_record_export_writes_it(tmp_path):
    # Items 2 and 3 have no training interaction: served from their content, recorded under "catalogue".
    catalogue = Catalogue(
        user_vocab=Vocabulary(ids=np.array(["u1"])), item_vocab=Vocabulary(ids=np.array(["a", "b", "c"])),
        item_counts=np.array([0.0, 4.0, 0.0, 0.0]), item_titles=np.array(["", "A", "B", "C"]),
        item_genres=None, genre_names=[],
    )
    config = Config()
    config.export.embeddings = False  # nothing to write beside the version: no model needed
    run = Run(config, catalogue, model=None, directory=str(tmp_path), metrics={"hit_rate@10": 0.5})
    recorded = export_serving_files(run, str(tmp_path / "version"))
    assert recorded == {
        "catalogue": {"items": 3, "with_interactions": 1, "without_interactions": 2, "cold_items": 0}
    }
    assert not (tmp_path / "metrics.json").exists()  # no hidden write
    record_export(run, recorded)
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"hit_rate@10": 0.5, **recorded}
    assert run.metrics == {"hit_rate@10": 0.5, **recorded}
    (tmp_path / "metrics.json").unlink()
    record_export(run, {})  # nothing measured: nothing written
    assert not (tmp_path / "metrics.json").exists()


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def serve(version_dir, user_ids):
    module = tf.saved_model.load(str(version_dir))
    out = module.signatures["serving_default"](user_id=tf.constant(user_ids))
    emb = module.signatures["query_embedding"](user_id=tf.constant(user_ids))["embedding"].numpy()
    return out["item_ids"].numpy().astype(str), emb


@pytest.mark.slow
def test_a_renamed_user_is_served_its_own_list_and_export_needs_no_data(tmp_path, capsys):
    data = tmp_path / "log.csv"
    lines = write_tiny_csv(data)
    saved, run = tmp_path / "saved", tmp_path / "run"
    overrides = [*TINY_CSV_OVERRIDES, f"data.path={data}", "train.epochs=1", "export.enabled=true",
                 f"export.base_dir={saved}", "export.k=10"]
    code, out, err = cli(capsys, "train", "--config", "configs/quickstart.yaml", "--output", str(run), "--set",
                         *[p for p in overrides if p != "export.enabled=false"])
    assert code == 0, err
    users = [line.strip() for line in open(saved / "quickstart" / "1" / "assets" / "users.txt")]
    # Rename the first user everywhere in the file, and add a row for a brand-new user.
    first = users[0]
    renamed = [lines[0]] + [("zz-renamed" + line[len(first):]) if line.startswith(first + ",") else line
                            for line in lines[1:]] + ["zz-new,i1,1"]
    data.write_text("\n".join(renamed) + "\n", encoding="utf-8")

    code, out, _ = cli(capsys, "export", "--run", str(run))
    assert code == 0 and out.strip().endswith(os.path.join("quickstart", "2"))
    ids_1, emb_1 = serve(saved / "quickstart" / "1", users)
    ids_2, emb_2 = serve(saved / "quickstart" / "2", users)
    np.testing.assert_array_equal(ids_1, ids_2)  # every user keeps their own list
    np.testing.assert_allclose(emb_1, emb_2, rtol=0, atol=0)

    # Evaluating on changed data is refused in one line, unless asked for.
    code, _, err = cli(capsys, "evaluate", "--run", str(run))
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "changed since the run was trained" in line and "--allow-changed-data" in line
    assert not (run / "evaluations").exists()
    code, out, _ = cli(capsys, "evaluate", "--run", str(run), "--allow-changed-data")
    assert code == 0
    (record,) = os.listdir(run / "evaluations")
    assert json.loads((run / "evaluations" / record).read_text())["data_changed"] is True

    # Without the data at all, export still works: it never reads it.
    data.unlink()
    code, out, _ = cli(capsys, "export", "--run", str(run), "--set", "export.k=5")
    assert code == 0 and out.strip().endswith(os.path.join("quickstart", "3"))
    meta = json.loads((saved / "quickstart" / "3" / "assets.extra" / "metadata.json").read_text())
    assert meta["k"] == 5 and meta["config"]["train"]["epochs"] == 1
    assert meta["metrics"]["epochs_run"] == 1


@pytest.mark.slow
def test_a_worse_experiment_is_not_published(tmp_path, capsys):
    saved = tmp_path / "saved"
    base = ["train.epochs=2", "export.enabled=true", f"export.base_dir={saved}", "train.early_stopping.enabled=false"]

    def train(name, *extra):
        return cli(capsys, "train", "--config", "configs/quickstart.yaml", "--output", str(tmp_path / name),
                   "--set", *with_tiny(*base, *extra))

    code, out, _ = train("good")
    assert code == 0 and "exported to" in out and "(nothing published under" in out
    # Same data, a learning rate too small to learn: its validation hit rate is lower.
    code, out, _ = train("worse", "train.learning_rate=1e-6")
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("not published"))
    assert "val_hit_rate@100" in line and f"tfrs-irns export --run {tmp_path / 'worse'}" in line
    assert sorted(os.listdir(saved / "quickstart")) == ["1", "1.embeddings"]
    assert os.path.isdir(tmp_path / "worse" / "saved_model" / "1")  # the run keeps its model
    # Finding 1 of issue 25: a smaller experiment on other data (same export name) is scored against the
    # served version on both datasets; it loses on the served users, so nothing is published.
    code, out, _ = train("other-data", "data.synthetic.num_users=100", "data.synthetic.num_items=300",
                         "data.synthetic.num_interactions=3000", "train.epochs=1")
    assert code == 0
    (line,) = [line for line in out.splitlines() if line.startswith("not published")]
    assert "trained on other data" in line and "on the served version's validation split" in line
    code, out, _ = train("forced", "train.learning_rate=1e-6", "export.publish=always")
    assert code == 0 and "(export.publish=always)" in out
    assert sorted(os.listdir(saved / "quickstart")) == ["1", "1.embeddings", "2", "2.embeddings"]
    # Re-running a command that published trains the identical model: no new version.
    code, out, _ = train("forced-again", "train.learning_rate=1e-6")
    assert code == 0 and f"not published (identical to {saved / 'quickstart' / '2'}" in out
    code, out, _ = train("never", "export.publish=never")
    assert code == 0 and "not published (export.publish=never)" in out
    assert sorted(v for v in os.listdir(saved / "quickstart") if v.isdigit()) == ["1", "2"]
