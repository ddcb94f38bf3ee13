"""Whether a traced step would run on a GPU, read from TensorFlow's kernel registry.

TensorFlow places an op that has no GPU kernel for its dtypes on the CPU, and
the tensors it reads and writes then cross the bus at every step; a variable
whose dtype has no device ``VarHandleOp`` kernel (int32) lives in host memory
and is copied at every read. The registry lists every kernel whatever the
machine, so these checks run on a CPU-only machine too: the GPU-kernel tests
of the train steps and the ranking primitive, and ``benchmarks/gpu_check.py``
(which also reads where each op actually ran).
"""

from __future__ import annotations

import functools
import re
from typing import Any, Iterable

import tensorflow as tf
from tensorflow.python.framework import kernels

# "DEFAULT" kernels serve every device without a kernel of its own, the GPU
# included: TF registers int32 ops such as Range, Sum or ConcatV2 that way,
# with their int32 arguments in host memory (as int32 GPU kernels always are).
GPU_DEVICES = ("GPU", "DEFAULT")

# The one exemption, by (op, attr, dtype): string constants, the messages of
# `Assert` (TFRS's HardNegativeMining asserts shapes). A GPU holds no string
# tensors; TF keeps them on the host, where `Assert` reads its data anyway.
HOST_ONLY = {("Const", "dtype", tf.string.as_datatype_enum)}

# tf.data runs on the host by design: its ops are the input pipeline, not the step.
_INPUT_PIPELINE = re.compile(r"(Dataset(V\d)?|^Iterator\w*|^Optional\w*)$")


def type_attrs(node: Any) -> dict[str, list[int]]:
    """The dtype attributes of a ``NodeDef``: attr name → dtype enums."""
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


def graph_op(op: str) -> str:
    """The op a node was traced as: oneDNN's CPU graph rewrite renames ``MatMul``
    to ``_MklMatMul`` (or ``_MklNativeMatMul``) in the executed CPU graph, and
    on a GPU machine the same node is the plain op."""
    for prefix in ("_MklNative", "_Mkl"):
        if op.startswith(prefix) and len(op) > len(prefix):
            return op[len(prefix):]
    return op


def has_gpu_kernel(op: str, types: dict[str, list[int]]) -> bool:
    """Whether a GPU (or DEFAULT) kernel of ``op`` accepts these dtype attributes
    (GPU kernels often exist for some dtypes only). A oneDNN-rewritten CPU op is
    checked as the op it was traced as (:func:`graph_op`)."""
    for kernel in _gpu_kernels(graph_op(op)):
        # Type constraints only: a kernel may also constrain a string attr
        # (GatherNd's `bad_indices_policy`), which every node leaves at its default.
        constraints = [c for c in kernel.constraint if c.allowed_values.list.type]
        if all(c.name in types and set(types[c.name]) <= set(c.allowed_values.list.type) for c in constraints):
            return True
    return False


def describe(op: str, types: dict[str, list[int]]) -> str:
    """``op(attr=dtype, ...)``, as the checks report a node."""
    attrs = ", ".join(f"{k}={'/'.join(tf.as_dtype(t).name for t in v)}" for k, v in sorted(types.items()))
    return f"{op}({attrs})"


def needs_gpu_kernel(node: Any) -> bool:
    """Whether a node belongs on the device: not an input-pipeline op, not a host-only string op."""
    if _INPUT_PIPELINE.search(node.op):
        return False
    types = type_attrs(node)
    return not any((node.op, name, t) in HOST_ONLY for name, ts in types.items() for t in ts)


def ops_without_gpu_kernel(graph_def: Any) -> set[str]:
    """The ``op(dtype attrs)`` of every node of ``graph_def`` — in the graph or in
    a function of its library (``While``/``If`` bodies, nested ``tf.function``
    calls) — with no GPU kernel for those dtypes. A call of a library function
    is not an op of its own: its body is checked instead."""
    functions = {f.signature.name for f in graph_def.library.function}
    nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
    return {
        describe(node.op, type_attrs(node))
        for node in nodes
        if node.op not in functions and needs_gpu_kernel(node) and not has_gpu_kernel(node.op, type_attrs(node))
    }


def variables_without_gpu_kernel(variables: Iterable[tf.Variable]) -> set[str]:
    """The ``name(dtype)`` of every variable whose dtype has no GPU or DEFAULT
    ``VarHandleOp`` kernel: it would live in host memory on a GPU machine."""
    return {
        f"{v.name}({v.dtype.name})"
        for v in variables
        if not has_gpu_kernel("VarHandleOp", {"dtype": [v.dtype.as_datatype_enum]})
    }
