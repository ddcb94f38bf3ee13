"""The one short line a training run prints per epoch."""

import tensorflow as tf

from tfrs_irns.runs.console import EpochLine


def line(logs, monitor="val_hit_rate@100", epochs=12):
    callback = EpochLine(monitor, ("val_hit_rate@100", "val_mrr"))
    callback.set_params({"epochs": epochs, "steps": 34})
    return callback.line(2, logs, 4.2)


def test_loss_with_its_l2_part_then_the_monitor():
    logs = {"loss": 5.41191, "l2_loss": 0.0312, "val_hit_rate@100": 0.85833, "val_mrr": 0.0891, "val_hit_rate@1": 0.1}
    assert line(logs) == "epoch 3/12  4s  loss 5.4119 (l2 0.0312)  val_hit_rate@100 0.8583  val_mrr 0.0891"


def test_a_monitor_other_than_the_hit_rate_comes_first_and_gcbs_is_one_word():
    logs = {"loss": 1.0, "l2_loss": 0.0, "val_ndcg@10": 0.25, "val_hit_rate@100": 0.5, "gcbs_active": 1.0,
            "gcbs_seconds": 0.046, "gcbs_neg_sim": 0.3, "gcbs_bandwidth": 3680.0}
    assert line(logs, "val_ndcg@10") == (
        "epoch 3/12  4s  loss 1.0000  val_ndcg@10 0.2500  val_hit_rate@100 0.5000  gcbs order 0.05s"
    )


def test_without_validation_only_the_loss():
    assert line({"loss": 2.0, "l2_loss": 0.5}, "loss") == "epoch 3/12  4s  loss 2.0000 (l2 0.5000)"


def test_batch_hooks_are_left_alone_without_a_progress_bar():
    # Keras warns about slow batch hooks when a callback overrides them; ours must not, off a terminal.
    assert not EpochLine("loss")._implements_train_batch_hooks()
    assert EpochLine("loss", progress_bar=True)._implements_train_batch_hooks()
    assert isinstance(EpochLine("loss"), tf.keras.callbacks.Callback)
