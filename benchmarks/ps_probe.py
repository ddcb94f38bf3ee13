"""Feasibility probe: the package's TwoTowerModel + IRNSRetrieval under ParameterServerStrategy.

Starts two parameter servers and two workers on 127.0.0.1 (fresh processes,
``tf.distribute.Server``), then acts as the coordinator (chief) in this
process: builds the tiny quickstart model in the strategy's scope with a
``MinSizePartitioner`` (at most 2 shards), and trains a few steps with
``model.fit`` on a ``DatasetCreator`` (``steps_per_epoch`` given). Prints how
every variable is placed, the losses, and a test hit rate; kills only the
servers it started (by PID).

Finding (2026-12-02, tf 2.21 / tf-keras 2.21 / TFRS 0.7.7): it works as is.
The id tables become ``ShardedVariable`` s of 2 parts, one per PS; the tf-keras
``Embedding`` gathers from them and its sparse gradients update them; TFRS's
``Model.train_step`` (the package's ``TwoTowerModel``) and ``IRNSRetrieval``'s
stateless sampling need no change; ``model.fit`` takes the
``DatasetCreator`` with ``steps_per_epoch``. ``--worker-tables`` makes the
sampler's and logQ's tables per-worker variables (``per_worker_variable=True``
through a variable creator scope). The one change the package needed:
``set_oov_row_to_mean`` assigned ``table[0]``, which a ``ShardedVariable``
has no view for (now a ``scatter_update``). The wired-in version is
``train.distribution.strategy: parameter_server`` (tests/test_parameter_server.py).

    TF_USE_LEGACY_KERAS=1 PYTHONPATH=. python benchmarks/ps_probe.py
    python benchmarks/ps_probe.py --steps 20 --epochs 3 --timeout 120
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import time


def free_ports(n: int) -> list[int]:
    """``n`` ports free on 127.0.0.1: all bound at once (so distinct), then released."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(n)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def serve(job: str, index: int, cluster: dict) -> None:
    """A PS or worker task: a gRPC server the coordinator dispatches to, forever."""
    import tensorflow as tf

    server = tf.distribute.Server(
        tf.train.ClusterSpec(cluster), job_name=job, task_index=index, protocol="grpc", start=True
    )
    server.join()


def start_servers(cluster: dict) -> list[subprocess.Popen]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    procs = []
    for job in ("ps", "worker"):
        for index in range(len(cluster[job])):
            procs.append(subprocess.Popen(
                [sys.executable, __file__, "--serve", job, str(index), json.dumps(cluster)],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
    return procs


def coordinate(cluster: dict, args: argparse.Namespace) -> dict:
    import numpy as np
    import tensorflow as tf

    from tfrs_irns.config import load_config
    from tfrs_irns.data.prepare import prepare_data
    from tfrs_irns.evaluation.evaluate import evaluate_model
    from tfrs_irns.runs.build import build_model, make_optimizer
    from tfrs_irns.runs.parameter_server import worker_tables

    overrides = [
        "data.synthetic.num_users=200", "data.synthetic.num_items=400", "data.synthetic.num_interactions=6000",
        "data.synthetic.num_clusters=4", "train.batch_size=128", "negatives.num_negatives=200",
        "export.enabled=false", *args.set,
    ]
    config = load_config("configs/quickstart.yaml", overrides)
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(cluster), task_type="chief", task_id=0, rpc_layer="grpc"
    )
    partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(
        min_shard_bytes=args.min_shard_bytes, max_shards=len(cluster["ps"])
    )
    strategy = tf.distribute.experimental.ParameterServerStrategy(resolver, variable_partitioner=partitioner)
    data = prepare_data(config.data)
    with strategy.scope():
        with worker_tables(strategy) if args.worker_tables else contextlib.nullcontext():
            model = build_model(config, data)
        model.compile(optimizer=make_optimizer(config), steps_per_execution=args.steps_per_execution)
    placement = {}
    for v in model.variables:
        shards = getattr(v, "variables", None)
        placement[v.name] = {
            "type": type(v).__name__,
            "shape": v.shape.as_list(),
            "devices": [s.device for s in shards] if shards else [v.device],
        }

    users, items = data.train.user, data.train.item
    batch = config.train.batch_size

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices({"user": users, "item": items})
        ds = ds.shard(context.num_input_pipelines, context.input_pipeline_id)
        return ds.shuffle(len(users), seed=0).repeat().batch(batch, drop_remainder=True).prefetch(2)

    start = time.time()
    history = model.fit(
        tf.keras.utils.experimental.DatasetCreator(dataset_fn),
        epochs=args.epochs, steps_per_epoch=args.steps, verbose=0,
    )
    seconds = time.time() - start
    metrics = evaluate_model(model, data, ks=[100]) if args.evaluate else None
    return {
        "placement": placement,
        "loss": [float(x) for x in history.history["loss"]],
        "fit_seconds": seconds,
        "test": metrics,
        "num_train": int(len(np.asarray(users))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", nargs=3, metavar=("JOB", "INDEX", "CLUSTER"), help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--min-shard-bytes", type=int, default=16 << 10)
    parser.add_argument("--worker-tables", action="store_true")
    parser.add_argument("--evaluate", action="store_true")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides, key=value")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), json.loads(args.serve[2]))
        return
    ports = free_ports(5)
    cluster = {
        "chief": [f"127.0.0.1:{ports[0]}"],
        "ps": [f"127.0.0.1:{p}" for p in ports[1:3]],
        "worker": [f"127.0.0.1:{p}" for p in ports[3:5]],
    }
    procs = start_servers(cluster)
    try:
        result = coordinate(cluster, args)
        print(json.dumps(result, indent=1, default=str))
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
