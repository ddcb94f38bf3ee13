"""The whole train step compiles with XLA, and gives the same losses as without.

A GPU step should run as one compiled program: no data-dependent shape (the
accidental-hit mask is a dense compare of ids, the embedding gradients are
dense before the optimizer, which would otherwise deduplicate them with
``tf.unique``). XLA compiles for the CPU too, so this is checked here: for
each configuration the package offers (the default, ``in_batch``, the
unigram sampler, hard negatives, a ``[history]`` user tower, content items,
GCBS batches, bf16 towers), Keras's train function is built with
``jit_compile=True`` and ``False`` from the same weights, and three steps on
the same batches give the same losses.
"""

import tfrs_irns  # noqa: F401,I001  (first: pins Keras 2 before anything touches tf.keras)

import numpy as np
import pytest
import tensorflow as tf

from tfrs_irns.batching.pipeline import TrainPipeline
from tfrs_irns.config import ConfigError, load_config
from tfrs_irns.data.prepare import prepare_data
from tfrs_irns.models.two_tower import dense_gradients
from tfrs_irns.runs.build import build_model, compile_options, jit_compile_on, make_optimizer, pipeline_extras, user_history

from helpers import TINY_OVERRIDES, with_tiny

SMALL = ["train.batch_size=64", "negatives.num_negatives=50"]

VARIANTS = {
    "default": [],
    "in_batch": ["negatives.mode=in_batch"],
    "unigram": ["negatives.sampler=unigram"],
    "hard-negatives": ["negatives.num_hard_negatives=10"],
    "history": ["model.user_features=[history]"],
    "content-items": ["model.item_features=[id,title,genres]", "model.candidate_hidden=[16]"],
    "gcbs": ["batching.strategy=gcbs"],
    "bf16": ["train.precision=mixed_bfloat16"],
}
STEPS = 3


@pytest.fixture(scope="module")
def data():
    return prepare_data(load_config("configs/quickstart.yaml", TINY_OVERRIDES).data)


def batches(data, config, steps):
    """``steps`` training batches, as a dataset a train function can iterate."""
    extras = pipeline_extras(user_history(config, data))
    pipeline = TrainPipeline(data.train.user, data.train.item, config.train.batch_size, seed=0, extras=extras)
    if config.batching.strategy == "gcbs":  # an explicit order: the pipeline's other branch
        pipeline.set_epoch_order(np.random.default_rng(0).permutation(pipeline.num_examples))
    taken = list(pipeline.dataset.take(steps))
    stacked = {key: tf.stack([batch[key] for batch in taken]) for key in taken[0]}
    return tf.data.Dataset.from_tensor_slices(stacked)


def losses(config, data, dataset, weights, jit_compile):
    """The losses of ``STEPS`` Keras train steps from ``weights``."""
    tf.keras.utils.set_random_seed(0)
    model = build_model(config, data)
    model.set_weights(weights)
    model.compile(optimizer=make_optimizer(config), jit_compile=jit_compile)
    train = model.make_train_function()
    iterator = iter(dataset)
    out = [float(train(iterator)["loss"]) for _ in range(STEPS)]
    tf.keras.mixed_precision.set_global_policy("float32")
    return out, model


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VARIANTS))
def test_the_train_step_compiles_with_xla_and_gives_the_same_losses(data, name):
    config = load_config("configs/quickstart.yaml", with_tiny(*SMALL, *VARIANTS[name]))
    dataset = batches(data, config, STEPS)
    tf.keras.utils.set_random_seed(0)
    weights = build_model(config, data).get_weights()
    tf.keras.mixed_precision.set_global_policy("float32")
    plain, _ = losses(config, data, dataset, weights, jit_compile=False)
    compiled, model = losses(config, data, dataset, weights, jit_compile=True)
    # The step really ran through XLA (a failure to compile raises, it never falls back).
    assert model.jit_compile is True
    np.testing.assert_allclose(compiled, plain, rtol=1e-4)
    assert len(set(plain)) == STEPS  # three different steps, not one loss thrice


def test_dense_gradients_give_the_same_weights_as_sparse_ones():
    # tf-keras's Adagrad, Adam and AdamW update the same rows by the same
    # amounts whether an embedding's gradient is IndexedSlices or dense.
    rng = np.random.default_rng(0)
    initial = rng.normal(size=(20, 4)).astype(np.float32)
    batches = [rng.integers(0, 20, 12) for _ in range(3)]  # duplicates included
    targets = rng.normal(size=(3, 12, 4)).astype(np.float32)

    def train(optimizer, dense):
        table = tf.Variable(initial)
        for rows, target in zip(batches, targets):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum((tf.gather(table, rows) - target) ** 2)
            (gradient,) = tape.gradient(loss, [table])
            assert isinstance(gradient, tf.IndexedSlices)
            if dense:
                (gradient,) = dense_gradients([gradient], [table])
                assert isinstance(gradient, tf.Tensor)
            optimizer.apply_gradients([(gradient, table)])
        return table.numpy()

    makers = {
        "adagrad": lambda: tf.keras.optimizers.Adagrad(0.1, initial_accumulator_value=1e-6),
        "adam": lambda: tf.keras.optimizers.Adam(0.05),
        "adamw": lambda: tf.keras.optimizers.AdamW(0.05, weight_decay=0.01),
    }
    for name, make in makers.items():
        sparse, dense = train(make(), False), train(make(), True)
        assert not np.allclose(sparse, initial), name
        np.testing.assert_allclose(dense, sparse, rtol=1e-5, atol=1e-7, err_msg=name)


def test_config_keys_reach_model_compile(monkeypatch):
    config = load_config("configs/quickstart.yaml", ["train.jit_compile=true", "train.steps_per_execution=4"])
    assert compile_options(config) == {"jit_compile": True, "steps_per_execution": 4}
    config = load_config("configs/quickstart.yaml", [])
    assert config.train.jit_compile == "auto" and config.train.steps_per_execution == 1
    # auto: on exactly when TensorFlow lists a GPU.
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["gpu"] if kind == "GPU" else [])
    assert jit_compile_on("auto") is True
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    assert jit_compile_on("auto") is False
    assert jit_compile_on(False) is False


@pytest.mark.parametrize(
    "pair,message",
    [
        ("train.jit_compile=maybe", r"train\.jit_compile: expected one of 'auto', True, False, got 'maybe'"),
        ("train.steps_per_execution=0", r"train\.steps_per_execution.*must be >= 1"),
        ("train.steps_per_execution=1.5", r"train\.steps_per_execution: expected an integer"),
    ],
)
def test_bad_values_of_the_keys_are_one_clear_error(pair, message):
    with pytest.raises(ConfigError, match=message):
        load_config("configs/quickstart.yaml", [pair])
