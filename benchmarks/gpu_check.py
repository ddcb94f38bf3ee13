"""One command for a machine with a GPU: where the train step runs, and how fast.

    python benchmarks/gpu_check.py --json gpu_check.json     # the full check, a few minutes
    python benchmarks/gpu_check.py --quick --json -          # small sizes, seconds; JSON on stdout

It builds the default recipe (``configs/quickstart.yaml``: ID towers, d = 64,
IRNS ``mixed`` with M = 3000 uniform negatives, Adagrad) on random ids and
reports, on the first GPU TensorFlow finds (on the CPU when there is none, and
it says so):

1. **placement**: the device of every op of the train step ``model.fit`` runs,
   read from the runtime's partition graphs (what the placer decided, not what
   the graph asked for). Ops on the CPU are named. Independently of the machine,
   every op whose dtypes have no GPU kernel in TensorFlow's registry, and every
   variable whose dtype cannot live on a GPU, is named too: on a CPU-only machine
   that is what *would* stay on the host.
2. **step**: median step time and examples/s at B = 600 and 8 × 600, without and
   with XLA (``model.compile(jit_compile=True)``). A step XLA cannot compile is
   recorded as ``{"error": ...}``, not a crash.
3. **ranking**: users/s of the package's exact full-catalogue ranking (top-100 and
   target ranks) at 1M items (:func:`rank_users`: an adapter, so another ranking
   function is a one-line change).
4. **tf32**: the loss of one batch with TensorFloat-32 matmuls on and off (same
   weights, same negatives). TF32 exists on Ampere and newer GPUs only; elsewhere
   the difference is 0.

``--json PATH`` writes one JSON object (``-``: to stdout, the report then goes to
stderr) with the keys ``device``, ``placement``, ``steps``, ``ranking``, ``tf32``,
``config``. Timings on a shared machine are noisy: compare ratios of one run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tfrs_irns  # noqa: E402,F401  (pins Keras 2 before tf.keras)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfrs_irns import gpu_kernels  # noqa: E402

FULL = {"num_users": 100_000, "num_items": 100_000, "batch_size": 600, "num_negatives": 3000, "big_factor": 8,
        "warmup": 3, "steps": 20, "rank_items": 1_000_000, "rank_users": 2048, "dim": 64}
QUICK = {"num_users": 500, "num_items": 2000, "batch_size": 64, "num_negatives": 200, "big_factor": 8,
         "warmup": 2, "steps": 3, "rank_items": 20_000, "rank_users": 256, "dim": 16}
# Ops that belong on the host in any step: the input iterator, function plumbing, transfers.
HOST_OPS = {"IteratorGetNext", "_Arg", "_Retval", "_Send", "_Recv", "_HostSend", "_HostRecv", "NoOp",
            "_DeviceArg", "_DeviceRetval", "OptionalFromValue", "OptionalGetValue", "OptionalHasValue"}


def say(*parts: Any) -> None:
    print(*parts, file=REPORT, flush=True)


REPORT = sys.stdout


# ------------------------------------------------------------------ the model


def build(settings: dict[str, Any], batch_size: int, jit_compile: bool) -> tuple[Any, Any]:
    """The default recipe's model, compiled, and an iterator of random batches."""
    from tfrs_irns.config import load_config
    from tfrs_irns.layers.towers import CandidateTower, QueryTower
    from tfrs_irns.models.two_tower import TwoTowerModel
    from tfrs_irns.runs.build import irns_task_from_config, make_optimizer

    config = load_config(
        str(ROOT / "configs" / "quickstart.yaml"), [f"negatives.num_negatives={settings['num_negatives']}"]
    )
    users, items, d = settings["num_users"], settings["num_items"], settings["dim"]
    tf.keras.utils.set_random_seed(0)
    candidate_tower = CandidateTower(items + 1, d, name="candidate_tower")
    query_tower = QueryTower(users + 1, d, name="query_tower")
    counts = np.ones(items + 1)
    counts[0] = 0.0
    task = irns_task_from_config(config.negatives, candidate_tower, counts, temperature=config.model.temperature)
    model = TwoTowerModel(query_tower, candidate_tower, task, embedding_l2=config.model.embedding_l2)
    query_tower(tf.zeros([1], tf.int32))
    candidate_tower(tf.zeros([1], tf.int32))
    model.compile(optimizer=make_optimizer(config), jit_compile=jit_compile)
    rng = np.random.default_rng(0)
    batches = {
        "user": rng.integers(1, users + 1, (8, batch_size)).astype(np.int32),
        "item": rng.integers(1, items + 1, (8, batch_size)).astype(np.int32),
    }
    return model, iter(tf.data.Dataset.from_tensor_slices(batches).repeat().prefetch(2))


# ------------------------------------------------------------------ placement


def _short_device(device: str) -> str:
    return device.rsplit("device:", 1)[-1] if "device:" in device else (device or "unplaced")


def placement(model: Any, data: Any) -> dict[str, Any]:
    """Run the train step once with run metadata on: the device of every op."""
    from tensorflow.python.eager import context

    train_function = model.make_train_function(force=True)
    # The window records every function instantiated in the process: let pending
    # finalizers (a garbage summary writer closing itself) run before it opens.
    gc.collect()
    # Partition graphs are recorded when a function is instantiated: on before its first call.
    context.enable_run_metadata()
    try:
        train_function(data)["loss"].numpy()
        metadata = context.export_run_metadata()
    finally:
        context.disable_run_metadata()
    by_device: dict[str, dict[str, int]] = {}
    on_cpu, no_gpu_kernel = [], set()
    count = 0
    functions = {f.signature.name for fg in metadata.function_graphs for pg in fg.partition_graphs
                 for f in pg.library.function}
    for fg in metadata.function_graphs:
        if fg.pre_optimization_graph.node and not _is_step(fg.pre_optimization_graph):
            continue
        for graph in fg.partition_graphs:
            for node in graph.node:
                if node.op in functions:
                    continue
                count += 1
                device = _short_device(node.device)
                ops = by_device.setdefault(device, {})
                ops[node.op] = ops.get(node.op, 0) + 1
                types = gpu_kernels.type_attrs(node)
                if node.op not in HOST_OPS and gpu_kernels.needs_gpu_kernel(node):
                    if "CPU" in device:
                        on_cpu.append(f"{node.op} {node.name}")
                    if not gpu_kernels.has_gpu_kernel(node.op, types):
                        no_gpu_kernel.add(gpu_kernels.describe(node.op, types))
    variables = sorted(gpu_kernels.variables_without_gpu_kernel(model.variables))
    return {
        "num_ops": count,
        "by_device": {device: dict(sorted(ops.items())) for device, ops in sorted(by_device.items())},
        "on_cpu": sorted(on_cpu),
        "no_gpu_kernel": sorted(no_gpu_kernel),
        "variables_not_on_gpu": variables,
    }


def _is_step(graph: Any) -> bool:
    """Whether a recorded function belongs to the train step (it reads the input
    iterator or a variable), not to an eager op that ran meanwhile in the process."""
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    return any(n.op in ("IteratorGetNext", "ReadVariableOp", "ResourceGather") for n in nodes)


# ------------------------------------------------------------------ timing


def time_step(model: Any, data: Any, warmup: int, steps: int) -> dict[str, float]:
    """Median seconds of the compiled train step (each step waited for)."""
    train_function = model.make_train_function(force=True)
    for _ in range(warmup):
        train_function(data)["loss"].numpy()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        train_function(data)["loss"].numpy()
        times.append(time.perf_counter() - start)
    return {"step_ms": round(float(np.median(times)) * 1000, 3)}


def step_row(settings: dict[str, Any], batch_size: int) -> dict[str, Any]:
    row: dict[str, Any] = {"batch_size": batch_size, "num_negatives": settings["num_negatives"],
                           "num_items": settings["num_items"]}
    for key, jit in (("no_xla", False), ("xla", True)):
        try:
            model, data = build(settings, batch_size, jit)
            timing = time_step(model, data, settings["warmup"], settings["steps"])
            timing["examples_per_second"] = round(batch_size / (timing["step_ms"] / 1000), 1)
            row[key] = timing
        except Exception as exc:  # noqa: BLE001  (an XLA failure is a finding, recorded for the lead)
            row[key] = {"error": f"{type(exc).__name__}: {_first_lines(str(exc))}"}
    if "step_ms" in row["no_xla"] and "step_ms" in row["xla"]:
        row["xla_speedup"] = round(row["no_xla"]["step_ms"] / row["xla"]["step_ms"], 3)
    return row


def _first_lines(text: str, limit: int = 600) -> str:
    """The error's message without TF's "Detected at node ... <stack traces unavailable>" preamble."""
    text = " ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    marker = "<stack traces unavailable>"
    if marker in text:
        text = text.split(marker, 1)[1].strip() or text
    text = text.split("Stack trace for op definition", 1)[0].strip()
    return text[:limit]


# ------------------------------------------------------------------ ranking


def rank_users(queries: np.ndarray, items: np.ndarray, targets: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Ranks of the targets and the top ``k`` items of each query: the package's
    evaluation ranking. The adapter to switch when the ranking function changes."""
    from tfrs_irns.evaluation.ranking import rank_and_top_k

    ranks, top, _ = rank_and_top_k(queries, items, targets=targets, k=k)
    return ranks, top


RANKING_FUNCTION = "tfrs_irns.evaluation.ranking.rank_and_top_k"


def ranking(settings: dict[str, Any]) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    n, users, d = settings["rank_items"], settings["rank_users"], settings["dim"]
    items = rng.normal(size=(n + 1, d)).astype(np.float32)
    queries = rng.normal(size=(users, d)).astype(np.float32)
    targets = rng.integers(1, n + 1, users)
    rank_users(queries[:8], items, targets[:8], 100)  # warm up (TF functions, allocations)
    start = time.perf_counter()
    rank_users(queries, items, targets, 100)
    seconds = time.perf_counter() - start
    return {"function": RANKING_FUNCTION, "num_items": n, "num_users": users, "dim": d, "k": 100,
            "seconds": round(seconds, 3), "users_per_second": round(users / seconds, 1)}


# ------------------------------------------------------------------ TF32


def tf32(settings: dict[str, Any]) -> dict[str, Any]:
    """The loss of one batch with TF32 on and off: same weights, same sampled negatives."""
    model, data = build(settings, settings["batch_size"], False)
    batch = next(data)
    weights = model.get_weights()  # the task's sampling step counter among them

    def loss(enabled: bool) -> float:
        tf.config.experimental.enable_tensor_float_32_execution(enabled)
        model.set_weights(weights)
        return float(model.compute_loss(batch, training=True).numpy())

    before = tf.config.experimental.tensor_float_32_execution_enabled()
    try:
        on, off = loss(True), loss(False)
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(before)
    return {"loss_tf32_on": on, "loss_tf32_off": off, "abs_diff": abs(on - off),
            "rel_diff": abs(on - off) / max(abs(off), 1e-30), "tf32_enabled_by_default": bool(before)}


# ------------------------------------------------------------------ driver


def device_info() -> dict[str, Any]:
    gpus = tf.config.list_physical_devices("GPU")
    names = []
    for gpu in gpus:
        details = tf.config.experimental.get_device_details(gpu)
        names.append(details.get("device_name", gpu.name) + (f" (compute {details['compute_capability']})"
                                                             if "compute_capability" in details else ""))
    return {"gpu": bool(gpus), "gpus": names, "tensorflow": tf.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "note": "" if gpus else "no GPU found: everything ran on the CPU (the placement lists what would "
            "stay on the host on a GPU: no_gpu_kernel, variables_not_on_gpu)"}


def check(settings: dict[str, Any], sections: Optional[set[str]] = None) -> dict[str, Any]:
    result: dict[str, Any] = {"config": settings, "device": device_info()}
    dev = result["device"]
    say(f"device: {', '.join(dev['gpus']) if dev['gpu'] else 'CPU only'} | TensorFlow {dev['tensorflow']}")
    if dev["note"]:
        say(f"  {dev['note']}")

    def wanted(name: str) -> bool:
        return sections is None or name in sections

    if wanted("placement"):
        model, data = build(settings, settings["batch_size"], False)
        result["placement"] = p = placement(model, data)
        say(f"\nplacement: {p['num_ops']} ops in the train step")
        for device, ops in p["by_device"].items():
            say(f"  {device}: {sum(ops.values())} ops ({', '.join(f'{k} {v}' for k, v in list(ops.items())[:12])}"
                f"{', ...' if len(ops) > 12 else ''})")
        if dev["gpu"]:
            say(f"  on the CPU (besides the input iterator and transfers): {len(p['on_cpu'])}")
            for name in p["on_cpu"]:
                say(f"    {name}")
        say(f"  ops with no GPU kernel for their dtypes: {', '.join(p['no_gpu_kernel']) or 'none'}")
        say(f"  variables that cannot live on a GPU: {', '.join(p['variables_not_on_gpu']) or 'none'}")
    if wanted("steps"):
        b = settings["batch_size"]
        result["steps"] = [step_row(settings, b), step_row(settings, b * settings["big_factor"])]
        say(f"\nsteps (M = {settings['num_negatives']}, {settings['num_items']:,} items, median of "
            f"{settings['steps']}):")
        for row in result["steps"]:
            parts = []
            for key in ("no_xla", "xla"):
                r = row[key]
                parts.append(f"{key} " + (f"{r['step_ms']:.2f} ms ({r['examples_per_second']:,.0f} ex/s)"
                                          if "step_ms" in r else f"failed: {r['error'][:200]}"))
            speedup = f" | XLA {row['xla_speedup']:.2f}x" if "xla_speedup" in row else ""
            say(f"  B = {row['batch_size']}: " + " | ".join(parts) + speedup)
    if wanted("ranking"):
        result["ranking"] = r = ranking(settings)
        say(f"\nranking ({r['function']}): {r['users_per_second']:,.0f} users/s at {r['num_items']:,} items "
            f"({r['num_users']} users, d = {r['dim']}, top-{r['k']} and target ranks)")
    if wanted("tf32"):
        result["tf32"] = t = tf32(settings)
        say(f"\ntf32: loss {t['loss_tf32_on']:.6f} on, {t['loss_tf32_off']:.6f} off, relative difference "
            f"{t['rel_diff']:.2e}" + ("" if dev["gpu"] else " (no GPU: TF32 does not apply)"))
    return result


def main(argv: Optional[list[str]] = None) -> int:
    global REPORT
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: seconds, to check the script runs")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON (- for stdout)")
    parser.add_argument("--only", nargs="+", choices=["placement", "steps", "ranking", "tf32"],
                        help="run only these parts")
    args = parser.parse_args(argv)
    if args.json == "-":
        REPORT = sys.stderr
    result = check(dict(QUICK if args.quick else FULL), set(args.only) if args.only else None)
    if args.json == "-":
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
