"""Whether a traced step would run on a GPU: every op, and every variable it reads, checked
against TensorFlow's kernel registry (which lists GPU kernels on a CPU-only machine too).

Shared by the GPU-kernel tests of the train step, the sequence step and the ranking primitive.
"""

import tfrs_irns  # noqa: F401,I001  (first: pins Keras 2 before anything touches tf.keras)

import functools

import tensorflow as tf
from tensorflow.python.framework import kernels

# "DEFAULT" kernels serve every device without a kernel of its own, the GPU
# included: TF registers int32 ops such as Range, Sum or ConcatV2 that way,
# with their int32 arguments in host memory (as int32 GPU kernels always are).
GPU_DEVICES = ("GPU", "DEFAULT")

# The one exemption, by (op, dtype): string constants, the messages of
# `Assert` (TFRS's HardNegativeMining asserts shapes). A GPU holds no string
# tensors; TF keeps them on the host, where `Assert` reads its data anyway.
HOST_ONLY = {("Const", "dtype", tf.string.as_datatype_enum)}



def _type_attrs(node) -> dict[str, list[int]]:
    out = {}
    for name, value in node.attr.items():
        kind = value.WhichOneof("value")
        if kind == "type":
            out[name] = [value.type]
        elif kind == "list" and value.list.type:
            out[name] = list(value.list.type)
    return out


@functools.lru_cache(maxsize=None)
def _gpu_kernels(op: str) -> tuple:
    return tuple(k for k in kernels.get_registered_kernels_for_op(op).kernel if k.device_type in GPU_DEVICES)


def _has_gpu_kernel(op: str, types: dict[str, list[int]]) -> bool:
    """Whether a GPU kernel of ``op`` accepts the node's dtype attributes
    (GPU kernels often exist for some dtypes only)."""
    for kernel in _gpu_kernels(op):
        # Type constraints only: a kernel may also constrain a string attr
        # (GatherNd's `bad_indices_policy`), which every node leaves at its default.
        constraints = [c for c in kernel.constraint if c.allowed_values.list.type]
        if all(c.name in types and set(types[c.name]) <= set(c.allowed_values.list.type) for c in constraints):
            return True
    return False


def _describe(op: str, types: dict[str, list[int]]) -> str:
    attrs = ", ".join(f"{k}={'/'.join(tf.as_dtype(t).name for t in v)}" for k, v in sorted(types.items()))
    return f"{op}({attrs})"


def ops_without_gpu_kernel(concrete: tf.types.experimental.ConcreteFunction) -> set[str]:
    """The ``op(dtype attrs)`` of every node, in the graph or in a function of
    its library (``While``/``If`` bodies, nested ``tf.function`` calls), with
    no GPU kernel for those dtypes. A call of a library function is not an op
    of its own: its body is checked instead."""
    graph_def = concrete.graph.as_graph_def()
    functions = {f.signature.name for f in graph_def.library.function}
    nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
    missing = set()
    for node in nodes:
        if node.op in functions:
            continue
        types = _type_attrs(node)
        if any((node.op, name, t) in HOST_ONLY for name, ts in types.items() for t in ts):
            continue
        if not _has_gpu_kernel(node.op, types):
            missing.add(_describe(node.op, types))
    return missing


def variables_without_gpu_kernel(concrete: tf.types.experimental.ConcreteFunction, owner=None) -> set[str]:
    """The ``name(dtype)`` of every variable the traced step reads or writes
    whose dtype has no GPU or DEFAULT ``VarHandleOp`` kernel. Such a variable
    lives in host memory on a GPU machine, and every read copies it to the
    device (TensorFlow registers no device ``VarHandleOp`` for int32).
    ``owner`` is whatever holds the variables (the model): it must be alive
    while the function's variables are listed."""
    del owner  # only kept alive until here
    return {
        f"{v.name}({v.dtype.name})"
        for v in concrete.variables
        if not _has_gpu_kernel("VarHandleOp", {"dtype": [v.dtype.as_datatype_enum]})
    }
