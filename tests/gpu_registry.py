"""The GPU-kernel checks of traced functions, as the tests call them (the logic is
:mod:`tfrs_irns.gpu_kernels`, shared with ``benchmarks/gpu_check.py``)."""

import tfrs_irns  # noqa: F401,I001  (first: pins Keras 2 before anything touches tf.keras)

import tensorflow as tf

from tfrs_irns import gpu_kernels


def ops_without_gpu_kernel(concrete: tf.types.experimental.ConcreteFunction) -> set[str]:
    """Every op of the traced function (its library included) with no GPU kernel for its dtypes."""
    return gpu_kernels.ops_without_gpu_kernel(concrete.graph.as_graph_def())


def variables_without_gpu_kernel(concrete: tf.types.experimental.ConcreteFunction, owner=None) -> set[str]:
    """Every variable the traced function reads or writes whose dtype has no device ``VarHandleOp``.
    ``owner`` (the model) is kept alive while the function's variables are listed."""
    del owner
    return gpu_kernels.variables_without_gpu_kernel(concrete.variables)
