"""GCBSCallback inside model.fit: which epochs get GCBS batches, logs, errors."""

import dataclasses
import glob
import inspect
import math
import time

import numpy as np
import pytest
import tensorflow as tf

import tfrs_irns  # noqa: F401
from tfrs_irns.batching import gcbs_callback
from tfrs_irns.batching.gcbs_ann import PoolBuilder
from tfrs_irns.batching.gcbs_callback import LOG_KEYS, GCBSCallback
from tfrs_irns.batching.pipeline import TrainPipeline
from tfrs_irns.config import GcbsConfig

NUM_USERS, NUM_ITEMS, BATCH = 30, 60, 40


def data(seed=0):
    """Distinct (user, item) pairs, so a pair identifies its example."""
    rng = np.random.default_rng(seed)
    keys = rng.choice(NUM_USERS * NUM_ITEMS, 230, replace=False)
    return (keys // NUM_ITEMS + 1).astype(np.int32), (keys % NUM_ITEMS + 1).astype(np.int32)


class RecordingPipeline(TrainPipeline):
    """Remembers every order set, in call order."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def set_epoch_order(self, order):
        self.calls.append(None if order is None else np.array(order))
        super().set_epoch_order(order)


class TinyModel(tf.keras.Model):
    """Dot-product two-tower with an in-batch softmax; records its batches."""

    def __init__(self):
        super().__init__()
        self.query_tower = tf.keras.layers.Embedding(NUM_USERS + 1, 4)
        self.candidate_tower = tf.keras.layers.Embedding(NUM_ITEMS + 1, 4)
        self.seen = []

    def train_step(self, batch):
        self.seen.append((batch["user"].numpy(), batch["item"].numpy()))
        with tf.GradientTape() as tape:
            q = self.query_tower(batch["user"])
            c = self.candidate_tower(batch["item"])
            logits = tf.matmul(q, c, transpose_b=True)
            labels = tf.range(tf.shape(logits)[0])
            loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return {"loss": loss}


def fit(epochs=3, **kw):
    users, items = data()
    pipe = RecordingPipeline(users, items, BATCH, seed=1)
    model = TinyModel()
    model.compile(optimizer=tf.keras.optimizers.SGD(0.1), run_eagerly=True)
    callback = GCBSCallback(pipe, **kw)
    history = model.fit(pipe.dataset, epochs=epochs, verbose=0, callbacks=[callback])
    index = {(u, i): k for k, (u, i) in enumerate(zip(users, items))}
    steps = pipe.steps_per_epoch
    epochs_seen = [model.seen[e * steps : (e + 1) * steps] for e in range(epochs)]
    batches = [
        {frozenset(index[p] for p in zip(u, i)) for u, i in epoch} for epoch in epochs_seen
    ]
    return pipe, history, batches


def runs(order):
    return {frozenset(order[s : s + BATCH]) for s in range(0, len(order), BATCH)}


@pytest.mark.slow
@pytest.mark.parametrize("start, every, due", [(2, 1, [2, 3]), (1, 2, [1, 3]), (4, 1, [])])
def test_only_due_epochs_get_gcbs_batches(start, every, due):
    pipe, history, batches = fit(start_epoch=start, every=every, neighbors=10)
    # One call before each epoch (none after the last), then the reset.
    assert len(pipe.calls) == 3 + 1 and pipe.calls[-1] is None
    for epoch in (1, 2, 3):
        order = pipe.calls[epoch - 1]
        if epoch in due:
            assert order is not None
            assert batches[epoch - 1] == runs(order)
        else:
            assert order is None
            # A random epoch matches no GCBS order that was set.
            assert all(batches[epoch - 1] != runs(o) for o in pipe.calls if o is not None)
    assert history.history["gcbs_active"] == [1.0 if e in due else 0.0 for e in (1, 2, 3)]


@pytest.mark.slow
def test_logs_hold_every_key_every_epoch():
    _, history, _ = fit(start_epoch=2, neighbors=10, diagnostics=True)
    for key in LOG_KEYS:
        values = history.history[key]
        assert len(values) == 3
    assert math.isnan(history.history["gcbs_neg_sim"][0])
    for key in ("gcbs_seconds", "gcbs_neg_sim", "gcbs_neg_sim_random", "gcbs_gap", "gcbs_gap_random"):
        assert all(np.isfinite(history.history[key][1:])), key
    assert history.history["gcbs_links_per_example"][1] > 0


@pytest.mark.slow
def test_tensorboard_scalars_for_gcbs_epochs(tmp_path):
    fit(start_epoch=2, neighbors=10, log_dir=str(tmp_path), diagnostics=True)
    files = glob.glob(str(tmp_path / "gcbs" / "events.out.tfevents.*"))
    assert files
    steps = {}
    for event in tf.compat.v1.train.summary_iterator(files[0]):
        for value in event.summary.value:
            steps.setdefault(value.tag, set()).add(event.step)
    assert steps["gcbs_neg_sim"] == {2, 3}
    assert steps["gcbs_seconds"] == {2, 3}


def test_towers_may_be_given_as_functions():
    users, items = data()
    pipe = TrainPipeline(users, items, BATCH)
    rng = np.random.default_rng(0)
    q = rng.normal(size=(NUM_USERS + 1, 3)).astype(np.float32)
    c = rng.normal(size=(NUM_ITEMS + 1, 3)).astype(np.float32)
    towers = (lambda u: tf.gather(q, u), lambda v: tf.gather(c, v))
    callback = GCBSCallback(pipe, towers, neighbors=10)
    order, stats = callback.order_for(2)
    np.testing.assert_array_equal(np.sort(order), np.arange(len(users)))
    assert stats["gcbs_active"] == 1.0
    again, _ = GCBSCallback(pipe, towers, neighbors=10).order_for(2)
    np.testing.assert_array_equal(order, again)


def test_towers_of_the_wrong_kind_are_named():
    users, items = data()
    callback = GCBSCallback(TrainPipeline(users, items, BATCH), towers=object())
    with pytest.raises(TypeError, match="query_tower and candidate_tower"):
        callback.order_for(2)


@pytest.mark.parametrize(
    "argument, value, message",
    [
        ("threshold", "best", r"threshold: expected 'topk' or 'quantile', got 'best'"),
        ("every", 0, r"every: must be > 0, got 0"),
        ("start_epoch", -1, r"start_epoch: must be >= 0, got -1"),
        ("neighbors", 0, r"neighbors: must be > 0, got 0"),
        ("quantile", 1.0, r"quantile: must be in \(0, 1\), got 1\.0"),
        ("links_per_example", 0, r"links_per_example: must be > 0, got 0"),
        ("holder_tries", 0, r"holder_tries: must be > 0, got 0"),
    ],
)
def test_bad_arguments_are_named_at_construction(argument, value, message):
    users, items = data()
    with pytest.raises(ValueError, match=message):
        GCBSCallback(TrainPipeline(users, items, BATCH), **{argument: value})


def test_a_config_section_is_exactly_the_keyword_arguments():
    # runs/build.py passes **asdict(config.batching.gcbs): every key must be an
    # argument, with the same default, so a YAML default means what the library's does.
    parameters = inspect.signature(GCBSCallback).parameters
    for name, default in dataclasses.asdict(GcbsConfig()).items():
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert parameters[name].default == default, name


def test_every_graph_argument_reaches_gcbs_order(monkeypatch):
    seen = {}
    real = gcbs_callback.gcbs_order

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(gcbs_callback, "gcbs_order", spy)
    users, items = data()
    pipe = TrainPipeline(users, items, BATCH)
    towers = (lambda u: tf.one_hot(u % 3, 3), lambda v: tf.one_hot(v % 3, 3))
    given = dict(neighbors=7, threshold="quantile", quantile=0.5, seed=5, links_per_example=3, holder_tries=8,
                 similarity="cosine", graph="item_item", exclude_above_positive=True)
    builder = dict(graph_builder="exact", ann_nlist=2, ann_nprobe=3, max_scored_pairs=99, max_links=50)
    GCBSCallback(pipe, towers, **given, **builder).order_for(4)
    assert seen == {**given, "epoch": 4, "builder": PoolBuilder("exact", 2, 3, 99, 50)}
    seen.clear()
    GCBSCallback(pipe, towers, **dataclasses.asdict(GcbsConfig(holder_tries=8))).order_for(2)
    assert seen["holder_tries"] == 8


def test_resumed_training_plans_from_initial_epoch():
    users, items = data()
    pipe = RecordingPipeline(users, items, BATCH)
    model = TinyModel()
    model.compile(optimizer=tf.keras.optimizers.SGD(0.1), run_eagerly=True)
    callback = GCBSCallback(pipe, start_epoch=2, every=2, neighbors=10, initial_epoch=1)
    history = model.fit(pipe.dataset, epochs=3, initial_epoch=1, verbose=0, callbacks=[callback])
    # Keras runs epochs 2 and 3: GCBS is due for 2 only.
    assert history.history["gcbs_active"] == [1.0, 0.0]
    assert pipe.calls[0] is not None and pipe.calls[1] is None


def test_diagnostics_are_off_by_default_and_slow_recomputes_print_progress():
    import io

    users, items = data()
    pipe = TrainPipeline(users, items, BATCH)

    def slow(ids):  # a recompute that outlasts the tiny threshold
        time.sleep(0.3)
        return tf.one_hot(ids % 3, 3)

    out = io.StringIO()
    callback = GCBSCallback(pipe, (slow, slow), neighbors=10, progress_after=0.05, progress_out=out)
    callback.on_train_begin()  # plans epoch 1: not due (start_epoch 2), nothing printed
    assert out.getvalue() == ""
    callback._plan(2)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"GCBS: ordering {len(users):,} examples for epoch 2... ")
    assert lines[-1].startswith(f"GCBS: ordering {len(users):,} examples for epoch 2: done in ")
    assert "gcbs_neg_sim" not in callback._planned[1]  # no diagnostics by default
    quiet = io.StringIO()
    GCBSCallback(pipe, (slow, slow), neighbors=10, progress_out=quiet)._plan(2)  # under 5 s: silent
    assert quiet.getvalue() == ""
