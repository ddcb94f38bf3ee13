"""IRNSRetrieval under MirroredStrategy: 1 replica x B == 2 replicas x B/2.

The two logical CPU devices can only be configured before TensorFlow
initialises its devices, so the comparison runs in a fresh process
(tests/irns_distributed_check.py) and is checked here.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent / "irns_distributed_check.py"


@pytest.fixture(scope="module")
def results():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.slow
@pytest.mark.subprocess
def test_two_logical_devices(results):
    assert len(results["devices"]) == 2


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("mode", ["in_batch", "mixed", "random"])
def test_cross_replica_gives_the_single_replica_loss_and_gradients(results, mode):
    r = results["modes"][mode]
    (loss_one, grads_one), (loss_two, grads_two) = r["one_replica"], r["two_replicas"]
    np.testing.assert_allclose(loss_two, loss_one, rtol=1e-5)
    assert len(grads_one) == len(grads_two) == 2  # query and candidate tables
    for a, b in zip(grads_one, grads_two):
        assert np.abs(np.asarray(a)).max() > 0
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-6)


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("mode", ["in_batch", "mixed"])
def test_without_cross_replica_each_replica_sees_only_its_half(results, mode):
    # The check is sensitive: local in-batch negatives change the loss.
    r = results["modes"][mode]
    assert abs(r["two_replicas_local_negatives"] - r["one_replica"][0]) > 1e-3


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("mode", ["in_batch", "mixed", "random"])
def test_keras_fit_trains_identically_on_one_and_two_replicas(results, mode):
    one, two = results["modes"][mode]["fit_one"], results["modes"][mode]["fit_two"]
    # Two steps: the sampling step advanced in sync on both replicas.
    assert one["step"] == two["step"] == 2
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-5)
    for a, b in zip(one["weights"], two["weights"]):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-5)
