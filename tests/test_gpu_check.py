"""`benchmarks/gpu_check.py`: the one command for a GPU machine runs here on the CPU, and says so.

`--quick --json` runs every part at small sizes in seconds and writes the keys
the lead reads; the placement check names an op without a GPU kernel and an
int32 variable (what would stay on the host on a GPU) in a toy step.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tfrs_irns  # noqa: F401
from tfrs_irns import gpu_kernels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", os.path.join(ROOT, "benchmarks", "gpu_check.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.subprocess
def test_quick_json_on_the_cpu_has_every_part(tmp_path):
    # A fresh process, as a user runs it: the placement window records every function the process
    # instantiates, so a pytest process full of other tests' functions would be judged too.
    out = tmp_path / "gpu_check.json"
    script = os.path.join(ROOT, "benchmarks", "gpu_check.py")
    proc = subprocess.run([sys.executable, script, "--quick", "--json", str(out)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert set(result) == {"config", "device", "placement", "steps", "ranking", "tf32"}
    assert result["device"]["gpu"] is False and "no GPU found" in result["device"]["note"]
    placement = result["placement"]
    assert placement["num_ops"] > 50 and list(placement["by_device"]) == ["CPU:0"]
    assert sum(placement["by_device"]["CPU:0"].values()) == placement["num_ops"]
    assert placement["no_gpu_kernel"] == [] and placement["variables_not_on_gpu"] == []
    b = result["config"]["batch_size"]
    assert [row["batch_size"] for row in result["steps"]] == [b, 8 * b]
    for row in result["steps"]:
        assert row["no_xla"]["step_ms"] > 0
        assert row["no_xla"]["examples_per_second"] == round(row["batch_size"] / (row["no_xla"]["step_ms"] / 1000), 1)
        # The step compiles with XLA (a failure would be recorded as {"error": ...}, never a crash).
        assert "step_ms" in row["xla"] and "error" not in row["xla"], row["xla"]
    assert result["ranking"]["users_per_second"] > 0 and result["ranking"]["num_items"] == result["config"]["rank_items"]
    tf32 = result["tf32"]
    assert tf32["abs_diff"] == 0.0 and tf32["loss_tf32_on"] == tf32["loss_tf32_off"]  # no TF32 on a CPU
    report = proc.stdout
    assert "CPU only" in report and "placement:" in report and "ranking" in report


def test_the_ranking_adapter_gives_the_package_ranks():
    check = gpu_check()
    rng = np.random.default_rng(0)
    items = rng.normal(size=(51, 4)).astype(np.float32)
    queries = rng.normal(size=(6, 4)).astype(np.float32)
    targets = rng.integers(1, 51, 6)
    ranks, top = check.rank_users(queries, items, targets, k=5)
    scores = queries @ items[1:].T
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :5] + 1
    np.testing.assert_array_equal(top, expected)
    # 0-based rank: the items scoring higher than the target (random floats: no ties).
    target_scores = scores[np.arange(6), targets - 1]
    np.testing.assert_array_equal(ranks, (scores > target_scores[:, None]).sum(axis=1))


class Toy(tf.keras.Model):
    """A step with a CPU-only op (RaggedRange) and an int32 table: what the check must name."""

    def __init__(self):
        super().__init__()
        self.dense = tf.keras.layers.Dense(1)
        self.table = tf.Variable(tf.zeros([3], tf.int32), trainable=False, name="int_table")

    def train_step(self, data):
        x = data["x"]
        with tf.GradientTape() as tape:
            flat = tf.ragged.range(tf.cast(x[:, 0], tf.int64)).flat_values  # data-dependent: not folded away
            extra = tf.cast(tf.reduce_sum(self.table) + tf.cast(tf.size(flat), tf.int32), tf.float32)
            loss = tf.reduce_mean(self.dense(x)) + 0.0 * extra
        grads = tape.gradient(loss, self.dense.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.dense.trainable_variables))
        return {"loss": loss}


def test_placement_names_cpu_only_ops_and_variables():
    check = gpu_check()
    model = Toy()
    model.compile(optimizer="sgd")
    model.dense(tf.zeros([1, 2]))
    data = iter(tf.data.Dataset.from_tensors({"x": tf.ones([4, 2])}).repeat())
    found = check.placement(model, data)
    assert any(op.startswith("RaggedRange(") for op in found["no_gpu_kernel"]), found["no_gpu_kernel"]
    assert [v for v in found["variables_not_on_gpu"] if "int_table" in v and "int32" in v]
    assert found["by_device"]["CPU:0"]["RaggedRange"] == 1
    assert gpu_kernels.has_gpu_kernel("MatMul", {"T": [tf.float32.as_datatype_enum]})
    assert not gpu_kernels.has_gpu_kernel(
        "RaggedRange", {"T": [tf.int64.as_datatype_enum], "Tsplits": [tf.int64.as_datatype_enum]}
    )
