"""Run by tests/test_irns_distributed.py in a fresh process.

Splits the one CPU into two logical devices (possible only before TensorFlow
initialises its devices, hence the fresh process), then computes the IRNS loss
and gradients for the same global batch on one replica and on two replicas,
and trains two steps with Keras ``fit`` both ways. Prints one JSON object.
"""

import tfrs_irns  # noqa: F401,I001  (first: pins Keras 2 before anything touches tf.keras)

import json
import sys

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfrs_irns.sampling import UniformSampler, UnigramSampler
from tfrs_irns.tasks import IRNSRetrieval

NUM_USERS, NUM_ITEMS, DIM, BATCH, NEGATIVES = 6, 15, 4, 8, 9


def setup_devices() -> list[str]:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    return [d.name for d in tf.config.list_logical_devices("CPU")]


class Model(tfrs.models.Model):
    def __init__(self, mode: str, cross_replica: bool, weights: tuple[np.ndarray, np.ndarray]) -> None:
        super().__init__()
        self.query_tower = tf.keras.layers.Embedding(NUM_USERS + 1, DIM)
        self.candidate_tower = tf.keras.layers.Embedding(NUM_ITEMS + 1, DIM)
        self.query_tower.build((None,))
        self.candidate_tower.build((None,))
        self.query_tower.set_weights([weights[0]])
        self.candidate_tower.set_weights([weights[1]])
        counts = np.arange(NUM_ITEMS + 1, dtype=np.float64) % 4 + 1
        counts[0] = 0
        # `mixed` draws from a unigram sampler: its tables are mirrored weights.
        sampler = UnigramSampler(counts) if mode == "mixed" else UniformSampler(NUM_ITEMS)
        self.task = IRNSRetrieval(
            self.candidate_tower,
            NUM_ITEMS,
            mode=mode,
            num_negatives=NEGATIVES,
            sampler=sampler,
            item_probabilities=counts / counts.sum(),
            mask_same_user=mode != "random",
            temperature=0.5,
            cross_replica=cross_replica,
            seed=5,
        )

    def compute_loss(self, features, training=False):
        q = self.query_tower(features["user"])
        c = self.candidate_tower(features["item"])
        return self.task(q, c, candidate_ids=features["item"], query_ids=features["user"], training=training)


def loss_and_grads(strategy, mode, cross_replica, weights, batch):
    with strategy.scope():
        model = Model(mode, cross_replica, weights)
    replicas = strategy.num_replicas_in_sync
    share = BATCH // replicas

    def local(ctx):
        start = ctx.replica_id_in_sync_group * share
        return {k: v[start : start + share] for k, v in batch.items()}

    inputs = strategy.experimental_distribute_values_from_function(local)

    @tf.function
    def run(features):
        def replica_fn(f):
            with tf.GradientTape() as tape:
                loss = model.compute_loss(f, training=True)
            grads = tape.gradient(loss, model.trainable_variables)
            return loss, [tf.convert_to_tensor(g) for g in grads]

        loss, grads = strategy.run(replica_fn, args=(features,))
        total = strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
        return total, [strategy.reduce(tf.distribute.ReduceOp.SUM, g, axis=None) for g in grads]

    loss, grads = run(inputs)
    return float(loss), [g.numpy().tolist() for g in grads]


def fit_two_steps(strategy, mode, cross_replica, weights, batch):
    with strategy.scope():
        model = Model(mode, cross_replica, weights)
        model.compile(optimizer=tf.keras.optimizers.SGD(1.0))
    data = tf.data.Dataset.from_tensors(batch).repeat(2)
    history = model.fit(data, epochs=1, verbose=0)
    return {
        "loss": float(history.history["loss"][-1]),
        "weights": [w.tolist() for w in model.get_weights()],
        "step": int(model.task.step.numpy()),
    }


def main() -> None:
    devices = setup_devices()
    rng = np.random.default_rng(0)
    weights = (
        rng.normal(size=(NUM_USERS + 1, DIM)).astype(np.float32),
        rng.normal(size=(NUM_ITEMS + 1, DIM)).astype(np.float32),
    )
    batch = {
        "user": tf.constant([1, 2, 2, 3, 1, 4, 5, 2], tf.int32),
        "item": tf.constant([3, 7, 3, 9, 12, 7, 1, 14], tf.int32),
    }
    one = tf.distribute.MirroredStrategy(devices[:1])
    two = tf.distribute.MirroredStrategy(devices[:2])
    out = {"devices": devices, "modes": {}}
    for mode in ("in_batch", "mixed", "random"):
        single = loss_and_grads(one, mode, False, weights, batch)
        double = loss_and_grads(two, mode, True, weights, batch)
        local_only = loss_and_grads(two, mode, False, weights, batch)
        out["modes"][mode] = {
            "one_replica": single,
            "two_replicas": double,
            "two_replicas_local_negatives": local_only[0],
            "fit_one": fit_two_steps(one, mode, False, weights, batch),
            "fit_two": fit_two_steps(two, mode, True, weights, batch),
        }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
