"""Every op of the IRNS train step has a GPU kernel: no host round trip per step.

TensorFlow places an op without a kernel for the GPU on the CPU, and the
tensors it reads and writes then cross the bus every step. The kernel
registry lists every kernel whatever the machine, so a CPU-only test can
check a traced train step: each op of the graph (and of every function in
its library) must have a GPU kernel registered for the dtypes it runs with,
and each variable it reads a GPU (or DEFAULT) ``VarHandleOp`` kernel for its
dtype, else the variable lives in host memory and is copied every step.
"""

import tfrs_irns  # noqa: F401,I001  (first: pins Keras 2 before anything touches tf.keras)

import numpy as np
import pytest
import tensorflow as tf

from tfrs_irns.sampling import UniformSampler, UnigramSampler
from tfrs_irns.tasks import IRNSRetrieval
from tfrs_irns.tasks.kernels import hit_mask, softmax_terms

from gpu_registry import ops_without_gpu_kernel, variables_without_gpu_kernel

# A variant may name a known CPU-only op (`variant(mode, "Op(T=...): why", ...)`;
# none today): it is checked to be exactly that op, then reported as xfail.

N, D, B, M = 12, 5, 8, 10


def test_the_registry_check_sees_cpu_only_ops():
    # The check itself: RaggedRange is registered on the CPU only (and is
    # found inside a nested function), Range (int32, a DEFAULT kernel)
    # everywhere, and ScatterNd on the GPU for floats but not for bools.
    @tf.function
    def nested(starts):
        return tf.ragged.range(starts, starts + 2).flat_values

    def fn(starts, floats, bools, indices):
        return (
            nested(starts),
            tf.range(tf.size(starts)),
            tf.scatter_nd(indices, floats, [4]),
            tf.scatter_nd(indices, bools, [4]),
        )

    concrete = tf.function(fn).get_concrete_function(
        tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.float32), tf.TensorSpec([None], tf.bool),
        tf.TensorSpec([None, 1], tf.int32),
    )
    assert ops_without_gpu_kernel(concrete) == {
        "RaggedRange(T=int32, Tsplits=int64)",
        "ScatterNd(T=bool, Tindices=int32)",
    }


def test_a_onednn_rewritten_cpu_op_is_checked_as_the_op_it_was_traced_as():
    # The executed CPU graph of gpu_check's placement names oneDNN rewrites (_MklMatMul):
    # on a GPU machine those nodes are plain MatMul, which has a float32 GPU kernel.
    from tfrs_irns import gpu_kernels

    f32 = {"T": [tf.float32.as_datatype_enum]}
    assert gpu_kernels.graph_op("_MklMatMul") == gpu_kernels.graph_op("_MklNativeMatMul") == "MatMul"
    assert gpu_kernels.graph_op("MatMul") == "MatMul" and gpu_kernels.graph_op("_Mkl") == "_Mkl"
    assert gpu_kernels.has_gpu_kernel("_MklMatMul", f32)
    assert not gpu_kernels.has_gpu_kernel("_MklRaggedRange", {"T": [tf.int32.as_datatype_enum]})


def test_the_variable_check_sees_host_only_variables():
    # int32 resource variables have no device kernel: the check must name
    # them; int64, float and bool ones live on the device.
    tables = {dtype: tf.Variable(tf.zeros([3], dtype), name=f"table_{dtype.name}")
              for dtype in [tf.int32, tf.int64, tf.float32, tf.bool]}

    @tf.function
    def read():
        return [tf.gather(t, [0, 2]) for t in tables.values()]

    assert variables_without_gpu_kernel(read.get_concrete_function()) == {"table_int32:0(int32)"}


@pytest.mark.parametrize("dtype", [tf.int32, tf.int64])
def test_the_hit_mask_and_the_softmax_kernel_run_on_the_gpu(dtype):
    def fn(logits, shift, row_ids, col_ids, labels):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            lse, picked = softmax_terms(logits, shift, hit_mask(row_ids, col_ids), labels)
        return tape.gradient(lse + picked, logits)

    concrete = tf.function(fn).get_concrete_function(
        tf.TensorSpec([None, None]), tf.TensorSpec([None]), tf.TensorSpec([None], dtype),
        tf.TensorSpec([None], dtype), tf.TensorSpec([None], tf.int32),
    )
    missing = ops_without_gpu_kernel(concrete)
    assert missing == set(), f"ops without a GPU kernel: {sorted(missing)}"


def train_step(mode, sampler="uniform", replacement=True, **options):
    """The traced loss and gradients of a small IRNS task (ID-embedding towers)."""
    counts = np.array([0, 9, 4, 1, 0, 7, 2, 3, 12, 1, 5, 2, 6], np.float64)
    negatives = UniformSampler(N, replacement) if sampler == "uniform" else UnigramSampler(counts, 0.75, replacement)
    candidate_tower = tf.keras.layers.Embedding(N + 1, D)
    query_tower = tf.keras.layers.Embedding(4, D)
    task = IRNSRetrieval(
        candidate_tower, N, mode=mode, num_negatives=M, sampler=negatives,
        item_probabilities=counts / counts.sum(), **options,
    )

    @tf.function
    def step(users, items):
        with tf.GradientTape() as tape:
            queries, positives = query_tower(users), candidate_tower(items)
            loss = task(queries, positives, candidate_ids=items, query_ids=users, training=True)
        variables = query_tower.trainable_variables + candidate_tower.trainable_variables
        return loss, tape.gradient(loss, variables)

    concrete = step.get_concrete_function(tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int32))
    return concrete, (task, query_tower)


def variant(mode, known=None, **options):
    name = "-".join([mode] + [f"{k}={v}" for k, v in options.items()])
    return pytest.param(mode, options, known, id=name)


MODES = ["in_batch", "random", "mixed", "full"]
VARIANTS = [
    variant("mixed"),  # the defaults: mixed, logQ, hits removed, uniform sampler with replacement
    *(
        variant(mode, logq=logq, remove_accidental_hits=hits)
        for mode in MODES
        for logq in ([False, True] if mode != "full" else [False])  # full has no logQ
        for hits in [False, True]
    ),
    *(variant(mode, mask_same_user=True, remove_accidental_hits=hits) for mode in ["in_batch", "mixed"]
      for hits in [False, True]),
    *(variant(mode, num_hard_negatives=3, remove_accidental_hits=False) for mode in MODES),
    # The hit mask rebuilt densely (IRNSRetrieval._dense) from the sparse pairs.
    *(variant(mode, num_hard_negatives=3) for mode in ["in_batch", "random", "mixed"]),
    variant("full", num_hard_negatives=3),  # full has no accidental hits: no mask to rebuild
    variant("mixed", num_hard_negatives=3, mask_same_user=True),  # the mask is dense already
    *(
        variant(mode, sampler=sampler, replacement=replacement)
        for mode in ["random", "mixed"]
        for sampler in ["uniform", "unigram"]
        for replacement in [True, False]
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("mode,options,known", VARIANTS)
def test_every_op_of_the_train_step_has_a_gpu_kernel(mode, options, known):
    concrete, layers = train_step(mode, **options)
    assert variables_without_gpu_kernel(concrete, layers) == set()
    missing = ops_without_gpu_kernel(concrete)
    expected = {known.split(": ")[0]} if known else set()
    # Exactly the known op, no other: a new CPU-only op fails here, and so
    # does a known one that went away (then drop it from this list).
    assert missing == expected, f"ops without a GPU kernel: {sorted(missing)}"
    if known:
        pytest.xfail(known)
