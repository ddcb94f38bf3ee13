"""`train.precision`: towers in bfloat16 / float16, the loss in float32.

Mixed precision keeps the variables float32 and computes the towers in the
low precision (the Keras policy); the task casts the [B, C] logits to float32
right after the matmul, so logQ, masking, logsumexp and the loss never see
bfloat16. Exports and evaluation read float32 embeddings.
"""

import numpy as np
import pytest
import tensorflow as tf

import tfrs_irns  # noqa: F401
from tfrs_irns.config import load_config
from tfrs_irns.data.prepare import prepare_data
from tfrs_irns.runs.build import build_model, make_optimizer
from tfrs_irns.runs.training import train

from helpers import with_tiny


def tiny(*extra):
    return load_config("configs/quickstart.yaml", with_tiny(*extra))


@pytest.fixture(scope="module")
def data():
    return prepare_data(tiny().data)


@pytest.mark.parametrize("precision,low", [("mixed_bfloat16", tf.bfloat16), ("mixed_float16", tf.float16)])
def test_towers_compute_low_the_loss_stays_float32(data, precision, low):
    config = tiny(f"train.precision={precision}")
    model = build_model(config, data)
    assert tf.keras.mixed_precision.global_policy().name == "float32"  # put back after building
    users, items = tf.constant([1, 2, 3], tf.int32), tf.constant([4, 5, 6], tf.int32)
    assert model.query_tower(users).dtype == low and model.candidate_tower(items).dtype == low
    assert {v.dtype for v in model.trainable_variables} == {tf.float32}
    loss = model.compute_loss({"user": users, "item": items}, training=True)
    assert loss.dtype == tf.float32 and np.isfinite(loss.numpy())
    logits, _, _ = model.task.logits_and_labels(
        model.query_tower(users), model.candidate_tower(items), candidate_ids=items, query_ids=users
    )
    assert logits.dtype == tf.float32
    # Evaluation and export read float32 embeddings.
    assert model.user_embeddings().dtype == np.float32 and model.item_embeddings().dtype == np.float32


def test_mixed_float16_scales_the_loss(data):
    config = tiny("train.precision=mixed_float16")
    model = build_model(config, data)
    model.compile(optimizer=make_optimizer(config))
    assert isinstance(model.optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
    batch = {"user": tf.constant(data.train.user[:64]), "item": tf.constant(data.train.item[:64])}
    before = [v.numpy().copy() for v in model.trainable_variables]
    logs = model.train_step(batch)
    assert np.isfinite(float(logs["loss"]))
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(before, model.trainable_variables))


@pytest.mark.slow
def test_bfloat16_results_within_2_percent_of_float32(tmp_path):
    results = {}
    for precision in ("float32", "mixed_bfloat16"):
        run = train(tiny("train.epochs=3", f"train.precision={precision}"), str(tmp_path / precision), verbose=0)
        results[precision] = run.metrics
    f32, bf16 = results["float32"], results["mixed_bfloat16"]
    assert f32["hit_rate@100"] > 1.5 * f32["popular_baseline"]["hit_rate@100"]  # it learned something
    assert abs(bf16["hit_rate@100"] - f32["hit_rate@100"]) <= 0.02 * f32["hit_rate@100"]
    assert abs(bf16["history"]["loss"][-1] - f32["history"]["loss"][-1]) <= 0.02 * f32["history"]["loss"][-1]
