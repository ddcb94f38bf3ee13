"""Parameter servers: ID tables partitioned across machines (``train.distribution.strategy: parameter_server``).

A two-tower model's memory is its ID tables: one row per user and per item.
Mirrored strategies copy every table to every device, so the largest
catalogue is what one machine holds. Under ``tf.distribute``'s
``ParameterServerStrategy`` the trainable variables live on parameter servers
(PS) instead, and a variable partitioner splits each large one by rows into
``ShardedVariable`` parts, one per PS: a step's lookups gather only the rows
its batch (and its sampled negatives) touch, from whichever PS holds them,
and the sparse gradient goes back to the same rows. Adding a PS adds table
memory.

The workers train asynchronously: the coordinator (the TF_CONFIG ``chief``,
the process that runs ``model.fit``) dispatches each step to a free worker,
which reads the rows it needs, computes a whole ``train.batch_size`` batch
(there is no all-reduce, so a step's in-batch negatives are its own batch's
positives) and pushes its gradients. The sampler's and logQ's tables (the
item counts, probabilities and CDF) are read-only data, not parameters: they
are per-worker variables (:func:`worker_tables`), a copy on each worker,
never fetched from a PS per step. The sampling step counter stays on a PS.

The PS and worker tasks only serve (:func:`serve`): they run
``tfrs-irns train`` with the same config and their own TF_CONFIG, load
nothing, and wait for the coordinator's ops until they are stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any, Callable, Iterator, Mapping, NoReturn, Optional

import numpy as np
import tensorflow as tf
from tensorflow.python.distribute.ps_values import PerWorkerVariable  # no public name (TF 2.21)

from tfrs_irns.errors import ConfigError
from tfrs_irns.layers.id_rows import IdRowsMixin

#: TF_CONFIG task types of a parameter-server cluster that serve (the ``chief`` coordinates).
SERVING_TASKS = ("ps", "worker")


def tf_config(strategy: str) -> dict[str, Any]:
    """The TF_CONFIG environment variable a cluster ``strategy`` reads, parsed."""
    if not os.environ.get("TF_CONFIG"):
        raise ConfigError(
            f"train.distribution.strategy={strategy} reads the cluster from the TF_CONFIG environment "
            "variable, which is not set"
        )
    try:
        parsed = json.loads(os.environ["TF_CONFIG"])
    except ValueError as exc:
        raise ConfigError(f"train.distribution.strategy={strategy}: TF_CONFIG is not JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise ConfigError(f"train.distribution.strategy={strategy}: TF_CONFIG is not a JSON object")
    return parsed


def check_cluster(parsed: Mapping[str, Any]) -> str:
    """The task type of a parameter-server TF_CONFIG, after checking the cluster has what it needs."""
    cluster = parsed.get("cluster") or {}
    task = parsed.get("task") or {}
    prefix = "train.distribution.strategy=parameter_server: TF_CONFIG"
    for job in ("chief", "ps", "worker"):
        if not cluster.get(job):
            raise ConfigError(f"{prefix} names no {job!r} task in its cluster (it needs a chief, ps and workers)")
    kind = task.get("type")
    if kind not in ("chief", *SERVING_TASKS):
        raise ConfigError(f"{prefix} task type is {kind!r}; expected 'chief', 'ps' or 'worker'")
    return str(kind)


def make_parameter_server_strategy(num_shards: Optional[int], min_shard_bytes: int) -> tf.distribute.Strategy:
    """The coordinator's ``ParameterServerStrategy`` over the TF_CONFIG cluster, whose
    partitioner splits every variable of at least ``2 × min_shard_bytes`` into up
    to ``num_shards`` row shards (None: one per PS). On a ``ps`` or ``worker``
    task this serves instead and never returns (:func:`serve`)."""
    kind = check_cluster(tf_config("parameter_server"))
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    if kind in SERVING_TASKS:
        serve(resolver)
    num_ps = len(resolver.cluster_spec().as_dict()["ps"])
    partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(
        min_shard_bytes=min_shard_bytes, max_shards=num_shards or num_ps
    )
    return tf.distribute.experimental.ParameterServerStrategy(resolver, variable_partitioner=partitioner)


def serve(resolver: tf.distribute.cluster_resolver.ClusterResolver) -> NoReturn:
    """Run this PS or worker task's gRPC server until the process is stopped."""
    server = tf.distribute.Server(
        resolver.cluster_spec(), job_name=resolver.task_type, task_index=resolver.task_id,
        protocol=resolver.rpc_layer or "grpc", start=True,
    )
    print(f"{resolver.task_type} {resolver.task_id} serving the parameter-server cluster", flush=True)
    server.join()
    raise SystemExit(0)  # join() returns only if the server is stopped


def cluster_jobs() -> dict[str, list[str]]:
    """The TF_CONFIG cluster by job (the strategy keeps its resolver private)."""
    return tf.distribute.cluster_resolver.TFConfigClusterResolver().cluster_spec().as_dict()


def is_parameter_server(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy)


def _per_worker(next_creator: Callable[..., tf.Variable], **kwargs: Any) -> tf.Variable:
    # Read-only data tables are non-trainable and unaggregated; the sampling step
    # (ONLY_FIRST_REPLICA) and trainable weights stay on the parameter servers.
    if not kwargs.get("trainable", True) and kwargs.get("aggregation") in (None, tf.VariableAggregation.NONE):
        kwargs["per_worker_variable"] = True
    return next_creator(**kwargs)


@contextlib.contextmanager
def worker_tables(strategy: tf.distribute.Strategy) -> Iterator[None]:
    """Within ``strategy``'s scope and under a parameter-server strategy: the
    model's non-trainable, unaggregated variables (the sampler's and logQ's
    tables, a candidate tower's feature table) become per-worker copies, not
    PS variables. Enter it around building the model only: the optimizer's
    slots are non-trainable too and belong with their variables on the PS."""
    if not is_parameter_server(strategy):
        yield
        return
    with tf.variable_creator_scope(_per_worker):
        yield


def worker_dataset(
    arrays: Mapping[str, np.ndarray], batch_size: int, seed: int
) -> tf.keras.utils.experimental.DatasetCreator:
    """Each worker's batches: its share of the training examples (tf.data
    sharding by worker), shuffled with its own seed, repeated without end
    (the coordinator counts the steps: ``steps_per_epoch``). ``arrays``:
    the batch features by name (``user``, ``item``, maybe ``history_position``)."""

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        data = tf.data.Dataset.from_tensor_slices(dict(arrays))
        data = data.shard(context.num_input_pipelines, context.input_pipeline_id)
        share = -(-len(next(iter(arrays.values()))) // context.num_input_pipelines)
        data = data.shuffle(share, seed=seed + context.input_pipeline_id, reshuffle_each_iteration=True)
        return data.repeat().batch(batch_size, drop_remainder=True).prefetch(2)

    return tf.keras.utils.experimental.DatasetCreator(dataset_fn)


def placement(strategy: tf.distribute.Strategy, model: tf.keras.Model) -> dict[str, Any]:
    """What ``metrics.json`` adds under ``distribution`` for a parameter-server run (nothing for
    another strategy): the PS count, the devices of each tower's id-table shards, and how many
    data tables are per-worker copies."""
    if not is_parameter_server(strategy):
        return {}
    num_ps = len(cluster_jobs().get("ps", []))
    shards = {name: _table_devices(getattr(model, name)) for name in ("query_tower", "candidate_tower")}
    copies = sum(isinstance(v, PerWorkerVariable) for v in model.variables)
    return {"num_ps": num_ps, "table_shards": shards, "worker_tables": copies}


def _table_devices(tower: Any) -> list[str]:
    """The devices of the shards of ``tower``'s id table (one when it is whole; none without one)."""
    table = tower.id_table() if isinstance(tower, IdRowsMixin) else None
    if table is None:
        return []
    variable = table.embeddings
    return [v.device for v in getattr(variable, "variables", [variable])]
