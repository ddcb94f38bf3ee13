"""The whole compiled train step has GPU kernels: `model.train_step` with the
optimizer's update, as Keras compiles it for `fit` over the run's pipeline.

tests/test_gpu_kernels.py checks the IRNS loss and its gradients; this traces
Keras's train function itself (the iterator read, the towers, the loss, the
gradients, the embedding L2 penalty, the optimizer apply, loss scaling and the
casts of mixed precision) for the default config and every mode and option,
and checks every op of the graph and of its function library against the
kernel registry, and every variable it reads against the device kernels of
``VarHandleOp`` (an int32 table would live in host memory on a GPU machine).

Exempt, by op name (HOST_SHAPE_OPS): host-side shape plumbing that
TensorFlow runs on the host in every program, GPU or not — `BroadcastGradientArgs`,
`ConcatOffset`, `Shape`, `ShapeN`, `Size`, `Rank`; their inputs and outputs
are shapes kept in host memory. Today each of them also has a DEFAULT
(host-memory) kernel, so the exemption is not used; it keeps the test about
the step's data path. Anything else without a GPU kernel fails the test. The
pipeline's own ops (shuffle, gather of the epoch order) run inside tf.data,
off the step's graph: the step reads the batch with `IteratorGetNext`.
"""

import tfrs_irns  # noqa: F401,I001  (first: pins Keras 2 before anything touches tf.keras)

import pytest
import tensorflow as tf

from tfrs_irns.batching.pipeline import TrainPipeline
from tfrs_irns.config import load_config
from tfrs_irns.data.prepare import prepare_data
from tfrs_irns.runs.build import build_model, make_optimizer, pipeline_extras, user_history

from helpers import TINY_OVERRIDES, with_tiny
from gpu_registry import ops_without_gpu_kernel, variables_without_gpu_kernel

# Host-side shape plumbing (see the module docstring), by op name.
HOST_SHAPE_OPS = {"BroadcastGradientArgs", "ConcatOffset", "Shape", "ShapeN", "Size", "Rank"}

VARIANTS = {
    "default": [],
    "unigram": ["negatives.sampler=unigram"],
    "unigram-no-replacement": ["negatives.sampler=unigram", "negatives.replacement=false"],
    "uniform-no-replacement": ["negatives.replacement=false"],
    "in_batch": ["negatives.mode=in_batch"],
    "random": ["negatives.mode=random"],
    "full": ["negatives.mode=full"],
    "mask_same_user": ["experimental.mask_same_user=true"],
    "num_hard_negatives": ["negatives.num_hard_negatives=20"],
    "no-logq-no-hit-removal": ["negatives.logq=false", "negatives.remove_accidental_hits=false"],
    "gcbs": ["batching.strategy=gcbs"],
    "mixed_bfloat16": ["train.precision=mixed_bfloat16"],
    "mixed_float16": ["train.precision=mixed_float16"],
    "mixed_bfloat16-hard-negatives": ["train.precision=mixed_bfloat16", "negatives.num_hard_negatives=20"],
    "adam": ["train.optimizer=adam"],
    "adamw": ["train.optimizer=adamw", "train.weight_decay=0.01"],
    "mlp-towers-genres": ["model.query_hidden=[32]", "model.candidate_hidden=[32]", "model.normalize=true"],
    # Content towers gather int tables in-graph; no string op may reach the step.
    "content-tower": ["model.item_features=[id,title,genres]", "model.candidate_hidden=[32]"],
    "content-only-attention-bf16": [
        "model.item_features=[title,genres]", "model.text_pooling=attention", "train.precision=mixed_bfloat16",
    ],
    "history-mean": ["model.user_features=[history]"],
    "id-history-gru-own-table-bf16": [
        "model.user_features=[id,history]", "model.history.pooling=gru", "model.history.length=5",
        "model.history.shared_tower=false", "train.precision=mixed_bfloat16", "data.split=temporal",
    ],
    # Both together: history items embedded by the content tower, cold items in the catalogue.
    "content-history-cold-items": [
        "model.item_features=[title,genres]", "model.user_features=[history]", "data.split=cold_items",
    ],
}


@pytest.fixture(scope="module")
def data():
    return prepare_data(load_config("configs/quickstart.yaml", TINY_OVERRIDES).data)


def traced_train_step(data, overrides):
    config = load_config("configs/quickstart.yaml", with_tiny(*overrides))
    # A history tower's batches carry each example's place in its timelines.
    extras = pipeline_extras(user_history(config, data))
    pipeline = TrainPipeline(data.train.user, data.train.item, config.train.batch_size, seed=0, extras=extras)
    if config.batching.strategy == "gcbs":  # an explicit order: the pipeline's other branch
        pipeline.set_epoch_order(tf.random.shuffle(tf.range(pipeline.num_examples)).numpy())
    model = build_model(config, data)
    model.compile(optimizer=make_optimizer(config))
    train_function = model.make_train_function()
    return train_function.get_concrete_function(iter(pipeline.dataset)), model


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_op_of_the_compiled_train_step_has_a_gpu_kernel(data, name):
    concrete, model = traced_train_step(data, VARIANTS[name])
    graph = concrete.graph.as_graph_def()
    ops = {n.op for n in graph.node} | {n.op for f in graph.library.function for n in f.node_def}
    # The whole step was traced: the batch read, the logits, the optimizer's update.
    assert {"IteratorGetNext", "MatMul", "AssignAddVariableOp"} <= ops
    missing = ops_without_gpu_kernel(concrete)
    missing = {op for op in missing if op.split("(")[0] not in HOST_SHAPE_OPS}
    assert missing == set(), f"ops without a GPU kernel: {sorted(missing)}"
    # Every variable the step reads (tables included) can live on the device.
    host_only = variables_without_gpu_kernel(concrete, model)
    assert host_only == set(), f"variables without a device VarHandleOp kernel: {sorted(host_only)}"
