"""Typed run configuration, read from YAML with ``--set`` overrides.

Every key a config file may hold is a field, with its default and a one-line
description; the names are a contract that outside scripts rely on. The
sections of a library component are its own frozen parameter dataclasses
(``data``: :class:`~tfrs_irns.data.params.DataParams`, ``negatives``,
``batching.gcbs``, ``model.history``, ``export.ann``: the ``*/params.py``
modules), used whole; the sections below are the run's own. Options that
changed nothing beyond noise are set only under ``experimental``.
``docs/configuration.md`` is rendered from these fields by
``python tools/gen_config_reference.py`` (:mod:`tfrs_irns.config_reference`).

Loading checks the whole config before anything is built or written: each
key's name, type and range (the rule beside each field, shared with the
library objects: :mod:`tfrs_irns._params`), then the rules that tie several keys
together (``_CROSS_RULES``), each rule in one place. The first problem stops
loading with a :class:`~tfrs_irns.errors.ConfigError` that names the file and
the key. Rules that need the data (a catalogue size, say) cannot be checked
here; :mod:`tfrs_irns.runs.build` checks them, in the same words, before
training starts.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import re
import typing
from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional, TypeVar

import yaml

from tfrs_irns._files import atomic_open
from tfrs_irns._params import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Check, param, range_problem, type_hints, type_name
from tfrs_irns.batching.params import GcbsParams
from tfrs_irns.data.params import STREAMING_SPLITS, CsvParams, DataParams, SyntheticParams, streaming_sources
from tfrs_irns.errors import ConfigError
from tfrs_irns.evaluation.params import monitor_names as _monitor_names
from tfrs_irns.export.params import AnnParams
from tfrs_irns.layers.params import HistoryParams
from tfrs_irns.tasks.params import NegativesParams

_C = TypeVar("_C")

# The sections owned by the library layers, under their names of earlier releases (scripts import them).
SyntheticConfig = SyntheticParams
CsvConfig = CsvParams
DataConfig = DataParams
HistoryConfig = HistoryParams
NegativesConfig = NegativesParams
GcbsConfig = GcbsParams
AnnConfig = AnnParams

_LAYER_SIZES: Check = (lambda v: all(x > 0 for x in v), "layer sizes must be > 0")
_NON_EMPTY_UNIQUE: Check = (lambda v: len(v) > 0 and len(set(v)) == len(v), "must be a non-empty list without repeats")


@dataclass
class ModelConfig:
    """The two towers: user index → query embedding, item index → candidate embedding."""

    embedding_dim: int = param(64, "embedding size d of both towers", check=POSITIVE)
    normalize: bool = param(False, "L2-normalise both towers' outputs (cosine scores)")
    temperature: float = param(1.0, "softmax temperature T: the loss's logits are q·c / T", check=POSITIVE)
    query_hidden: list[int] = param(
        help="sizes of ReLU layers after the user embedding, then a linear layer back to embedding_dim", factory=list, check=_LAYER_SIZES
    )
    candidate_hidden: list[int] = param(
        help="sizes of ReLU layers after the item embedding, then a linear layer back to embedding_dim", factory=list, check=_LAYER_SIZES
    )
    use_genres: bool = param(
        False, "add the items' genres to the candidate tower (when the data has genres): with item_features [id] "
        "as a multi-hot projection added to the id row, with content features as the genres feature"
    )
    embedding_l2: float = param(0.1, "L2 penalty on the user and item embedding rows each batch looks up", check=NON_NEGATIVE)
    item_features: list[str] = param(
        help="what the candidate tower embeds an item from: any of id, title (text), genres (categorical) and "
        "the names of data.csv.item_columns; [title, genres] is a content-only tower (no id table); "
        "use_genres: true adds genres", factory=lambda: ["id"], check=_NON_EMPTY_UNIQUE
    )
    text_pooling: Literal["mean", "attention"] = param(
        "mean", "how a text feature's token embeddings become one vector (padding masked); categorical "
        "features always take the mean"
    )
    max_tokens: int = param(16, "tokens (or categorical values) kept per item and content feature; longer texts are cut", check=POSITIVE)
    max_vocabulary: int = param(
        20000, "most frequent tokens (values) of the training catalogue kept per content feature; others are OOV", check=POSITIVE
    )
    user_features: list[Literal["id", "history"]] = param(
        help="what the user tower embeds: [id] (a user table), [history] (the user's recent items, so new "
        "users get personal answers) or [id, history] (summed)", factory=lambda: ["id"], check=_NON_EMPTY_UNIQUE
    )
    history: HistoryParams = param(help="the user history (model.user_features with history)", factory=HistoryParams)


@dataclass
class BatchingConfig:
    """How training examples are grouped into batches."""

    strategy: Literal["random", "gcbs"] = param(
        "random", "random: a fresh seeded shuffle per epoch; gcbs: GCBS orders on its epochs"
    )
    drop_remainder: bool = param(False, "drop each epoch's last, short batch")
    gcbs: GcbsParams = param(help="GCBS settings (strategy gcbs)", factory=GcbsParams)


@dataclass
class EarlyStoppingConfig:
    """Stop when the validation metric stops improving, keeping the best epoch's weights."""

    enabled: bool = param(True, "stop early and restore the best epoch's weights (needs a validation split)")
    monitor: str = param(
        "val_hit_rate@100", "metric to watch: loss (lower is better) or val_<hit_rate|recall|ndcg|coverage>@K "
        "with K from eval.ks, or val_mrr (higher is better)"
    )
    patience: int = param(3, "epochs without improvement before training stops", check=NON_NEGATIVE)
    max_queries: int = param(2000, "at most this many validation users scored per epoch (a seeded sample)", check=POSITIVE)


@dataclass
class DistributionConfig:
    """Where training runs: one device, several local devices, or several machines (tf.distribute)."""

    strategy: Literal["auto", "one_device", "mirrored", "multi_worker", "parameter_server"] = param(
        "auto", "auto: MirroredStrategy over the local GPUs when there are several, else one device; "
        "mirrored: MirroredStrategy over the local GPUs (or logical_cpus CPUs); multi_worker: "
        "MultiWorkerMirroredStrategy, the cluster read from the TF_CONFIG environment variable; "
        "parameter_server: ParameterServerStrategy (TF_CONFIG with chief, ps and worker tasks), the id tables "
        "split by rows across the parameter servers, asynchronous workers (docs/scaling.md)"
    )
    logical_cpus: Optional[int] = param(
        None, "split the host CPU into this many logical devices (mirrored on a machine without GPUs; "
        "null: one CPU device)", check=POSITIVE
    )
    num_shards: Optional[int] = param(
        None, "parameter_server: split each large variable (the id tables) into at most this many row shards "
        "(null: one per parameter server)", check=POSITIVE
    )
    min_shard_bytes: int = param(
        262144, "parameter_server: the smallest shard; a variable under twice this size stays whole on one "
        "parameter server", check=POSITIVE
    )


@dataclass
class TrainConfig:
    """The optimisation: batch size, epochs, optimizer."""

    batch_size: int = param(600, "B, (user, positive item) pairs per step (the global batch)", check=POSITIVE)
    epochs: int = param(30, "epochs at most: early stopping may end training sooner", check=POSITIVE)
    learning_rate: float = param(0.1, "learning rate of the optimizer (the loss is a mean over the batch, not a sum)", check=POSITIVE)
    optimizer: Literal["adagrad", "adam", "adamw"] = param(
        "adagrad", "the tf.keras optimizer (adagrad starts its accumulator at 1e-6, not 0.1)"
    )
    weight_decay: float = param(0.0, "decoupled weight decay of adamw (other optimizers ignore it)", check=NON_NEGATIVE)
    seed: int = param(0, "seed of TensorFlow, the batch shuffle and the validation sample")
    early_stopping: EarlyStoppingConfig = param(help="early stopping on a validation metric", factory=EarlyStoppingConfig)
    precision: Literal["float32", "mixed_bfloat16", "mixed_float16"] = param(
        "float32", "Keras mixed-precision policy of the towers (variables stay float32; logits, logQ, masking "
        "and the loss are float32 in every policy); mixed_float16 adds loss scaling"
    )
    backup_every_steps: Optional[int] = param(
        None, "also back the run up every this many steps, not only at each epoch's end (train --resume "
        "continues from the last backup)", check=POSITIVE
    )
    profile_steps: Optional[list[int]] = param(
        None, "[first, last]: write a TensorBoard profiler trace of these training steps (counted from 1 when "
        "fit starts) to the run's logs/ (Profile tab; docs/profiling.md); null: no trace", check=(lambda v: len(v) == 2 and 1 <= v[0] <= v[1], "must be [first, last] with 1 <= first <= last")
    )
    distribution: DistributionConfig = param(help="devices and machines (tf.distribute)", factory=DistributionConfig)
    sequence_training: bool = param(
        False, "train on whole sequences: a batch is train.batch_size windows of each user's latest "
        "model.history.length training items, every position predicting the next item in one causal pass "
        "(needs model.user_features [history] with pooling transformer)"
    )
    jit_compile: Literal["auto", True, False] = param(
        "auto", "compile the train step with XLA: auto (on when TensorFlow finds a GPU), true or false; "
        "embedding gradients are then applied densely (same updates for adagrad, adam and adamw)"
    )
    steps_per_execution: int = param(
        1, "train steps per call of the compiled train function (fewer host round trips; callbacks then "
        "see every this many steps)", check=AT_LEAST_ONE
    )


@dataclass
class EvalConfig:
    """Full-catalogue retrieval metrics on the test (and validation) split."""

    ks: list[int] = param(
        help="cut-offs K of hit_rate@K, recall@K, ndcg@K, coverage@K", factory=lambda: [1, 5, 10, 50, 100], check=(lambda v: len(v) > 0 and all(k > 0 for k in v), "must be a non-empty list of K > 0")
    )
    exclude_seen: bool = param(
        False, "remove from each user's ranking the items they have in earlier splits (false: keep them, as TFRS does)"
    )
    chunk_size: int = param(1024, "users scored per matrix product (memory vs speed)", check=POSITIVE)


@dataclass
class ExportConfig:
    """The versioned SavedModel written after training."""

    enabled: bool = param(
        True, "tfrs-irns train writes a SavedModel into the run folder and publishes it by export.publish "
        "(false: neither)"
    )
    name: Optional[str] = param(None, "model folder under base_dir (null: the config's name)")
    k: int = param(100, "items the serving signature returns (clipped to the catalogue size)", check=POSITIVE)
    base_dir: str = param("saved_models", "folder of exported models, relative to where the command runs")
    publish: Literal["auto", "always", "never"] = param(
        "auto", "after training, make the run the next served version: auto (when none is published; never an "
        "identical model; otherwise when the run scores at least as well as the latest version on the same "
        "validation data, both models scored on both datasets when the data differs), always, or never; "
        "tfrs-irns export --run always publishes"
    )
    publish_tolerance: float = param(
        0.0, "export.publish=auto still publishes a run whose validation metric is this much below the latest "
        "version's (0: at least as good; ties publish unless the model is identical)", check=NON_NEGATIVE
    )
    precision: Literal["float32", "bfloat16"] = param(
        "float32", "dtype of the item table the SavedModel scores: float32 (exact) or bfloat16 (half the memory)"
    )
    embeddings: bool = param(
        True, "also write the item embeddings (.npy) and ids (.tsv) to <base_dir>/<name>/<version>.embeddings/"
    )
    projector: bool = param(False, "also write the TensorBoard projector's vectors.tsv and metadata.tsv there")
    index: Literal["none", "faiss"] = param(
        "none", "also build an ANN index over the item embeddings there (faiss: pip install -e '.[ann]')"
    )
    ann: AnnParams = param(help="the ANN index (export.index: faiss)", factory=AnnParams)


@dataclass
class Config:
    """A whole run."""

    data: DataParams = param(help="the interactions and their splits", factory=DataParams)
    model: ModelConfig = param(help="the two towers", factory=ModelConfig)
    negatives: NegativesParams = param(help="the negatives of the retrieval loss", factory=NegativesParams)
    batching: BatchingConfig = param(help="how examples are batched", factory=BatchingConfig)
    train: TrainConfig = param(help="the optimisation", factory=TrainConfig)
    eval: EvalConfig = param(help="the evaluation", factory=EvalConfig)
    export: ExportConfig = param(help="the SavedModel export", factory=ExportConfig)
    name: str = param("run", "names runs and exports; set from the config file's name when loaded")

    def to_dict(self) -> dict[str, Any]:
        """The config as its YAML file holds it: the experimental settings under ``experimental``."""
        out = dataclasses.asdict(self)
        out["experimental"] = moved = {}
        for name, (home, _tp, _field) in experimental_keys().items():
            *sections, key = home.split(".")
            node = out
            for section in sections:
                node = node[section]
            moved[name] = node.pop(key)
        return out


# The trailing, non-dataclass section of a config file: settings that changed nothing beyond noise in the
# package's own measurements, kept under a name that says they may change or go.
EXPERIMENTAL = "experimental"
EXPERIMENTAL_DOC = (
    "Options that changed nothing beyond noise in the package's own measurements (docs/results/negatives-map.md, "
    "docs/gcbs.md). They may change or go without notice. Each sets a field of the section named in its description."
)


def experimental_keys(cls: type = None, prefix: str = "") -> dict[str, tuple[str, Any, dataclasses.Field]]:  # type: ignore[assignment]
    """``experimental`` key → (the dotted key of the field it sets, its type, that field), from the
    ``experimental=`` marks of the parameter fields (each written once, where the library owns it)."""
    cls = Config if cls is None else cls
    found: dict[str, tuple[str, Any, dataclasses.Field]] = {}
    hints = type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            found.update(experimental_keys(hints[f.name], prefix + f.name + "."))
        elif f.metadata.get("experimental"):
            found[f.metadata["experimental"]] = (prefix + f.name, hints[f.name], f)
    return found


# ------------------------------------------------------------ rules across keys


def monitor_names(config: Config) -> list[str]:
    """What ``train.early_stopping.monitor`` may name: the training loss or a
    validation metric the run logs (K from ``eval.ks``)."""
    return _monitor_names(config.eval.ks)


def _monitor_is_a_metric(config: Config) -> Optional[str]:
    monitor = config.train.early_stopping.monitor
    names = monitor_names(config)
    if monitor in names:
        return None
    return f"train.early_stopping.monitor={monitor!r}: expected one of " + ", ".join(names) + " (K from eval.ks)"


def _early_stopping_has_validation(config: Config) -> Optional[str]:
    # Every split method gives an empty validation split at fraction 0, and
    # only then (a fraction too small for the data is runs/build.py's check).
    if config.train.early_stopping.enabled and config.data.validation_fraction <= 0:
        return (
            "train.early_stopping.enabled=true needs a validation split: set data.validation_fraction > 0 "
            "or train.early_stopping.enabled=false"
        )
    return None


def _refined_logq_has_logq(config: Config) -> Optional[str]:
    negatives = config.negatives
    if negatives.logq_variant != "refined" or negatives.logq_on:
        return None
    return (
        f"experimental.logq_variant=refined refines the logQ correction, which is off here "
        f"(negatives.mode={negatives.mode}, negatives.logq={negatives.logq}); set negatives.logq: true "
        "(not with mode full) or experimental.logq_variant: standard"
    )


def _pq_divides_dim(config: "Config") -> Optional[str]:
    ann = config.export.ann
    if config.export.index == "faiss" and ann.kind == "ivfpq" and config.model.embedding_dim % ann.pq_m:
        return (
            f"export.ann.pq_m: {ann.pq_m} does not divide model.embedding_dim {config.model.embedding_dim} "
            "(an ivfpq code splits each vector into pq_m equal parts)"
        )
    return None


def _heads_divide_dim(config: "Config") -> Optional[str]:
    m = config.model
    if "history" in m.user_features and m.history.pooling == "transformer" and m.embedding_dim % m.history.num_heads:
        return (
            f"model.history.num_heads: {m.history.num_heads} does not divide model.embedding_dim {m.embedding_dim} "
            "(each head attends in an equal share of the embedding)"
        )
    return None


def _sequence_training_fits(config: "Config") -> Optional[str]:
    if not config.train.sequence_training:
        return None
    m, n = config.model, config.negatives
    if "history" not in m.user_features or m.history.pooling != "transformer":
        return (
            "train.sequence_training=true trains every position of a causal user tower: set "
            "model.user_features: [history] (or [id, history]) and model.history.pooling: transformer"
        )
    if n.mode == "full":
        return "train.sequence_training=true: negatives.mode full is not supported (use mixed, random or in_batch)"
    for key, value, ok in (
        ("experimental.logq_variant", n.logq_variant, "standard"),
        ("negatives.num_hard_negatives", n.num_hard_negatives, None),
        ("experimental.mask_same_user", n.mask_same_user, False), ("batching.strategy", config.batching.strategy, "random"),
    ):
        if value != ok:
            return f"train.sequence_training=true does not support {key}={value} (use {ok})"
    return None


ITEM_FEATURES = ("id", "title", "genres")


def content_features(model: "ModelConfig") -> list[str]:
    """The content features of ``model.item_features`` (``id`` left out), with
    ``genres`` added by ``use_genres: true`` once any content feature is listed
    (``[id]`` + ``use_genres`` stays the multi-hot genre projection)."""
    names = [name for name in model.item_features if name != "id"]
    if names and model.use_genres and "genres" not in names:
        names.append("genres")
    return names


def _item_features_known(config: "Config") -> Optional[str]:
    data, columns = config.data, config.data.csv.item_columns
    for name in columns:
        if name in ITEM_FEATURES:
            return f"data.csv.item_columns: {name!r} is a built-in item feature; name the column something else"
    for name in config.model.item_features:
        if name in ITEM_FEATURES:
            continue
        if name not in columns:
            declared = f" or a data.csv.item_columns name ({', '.join(columns)})" if columns else ""
            return (
                f"model.item_features: unknown feature {name!r}; expected id, title, genres{declared} "
                "(an item-file column must be declared in data.csv.item_columns)"
            )
        if not data.has_item_feature(name):
            return (
                f"model.item_features: {name!r} is a data.csv.item_columns column, read from data.csv.items_path "
                f"with data.source csv or parquet (here source {data.source}, items_path {data.csv.items_path})"
            )
    return None


def _item_features_available(config: "Config") -> Optional[str]:
    data = config.data
    for name in content_features(config.model):
        if name not in ("title", "genres") or data.has_item_feature(name):
            continue
        key, column = f"data.csv.{name}_column", data.item_file_column(name)
        return (
            f"model.item_features: {name!r} needs item {'titles' if name == 'title' else name}, and data.source "
            f"{data.source} has them only from data.csv.items_path with {key} set (items_path "
            f"{data.csv.items_path}, {key} {column})"
        )
    return None


def _cold_items_need_content(config: "Config") -> Optional[str]:
    if config.data.split != "cold_items":
        return None
    if not content_features(config.model) and not config.model.use_genres:
        return (
            f"data.split=cold_items with model.item_features={config.model.item_features}: an id-only item tower "
            "cannot embed an item it never saw; add content features, e.g. [id, title, genres]"
        )
    if config.negatives.mode == "full":
        return (
            "data.split=cold_items with negatives.mode=full: the full softmax would train on the cold items as "
            "negatives; use mode mixed, random or in_batch"
        )
    return None


def _streaming_supported(config: Config) -> Optional[str]:
    d = config.data
    if not d.streaming:
        return None
    # Each refusal says why: these need every row (or every pair) in memory at once.
    if not d.provides.streams:
        return f"data.streaming: true reads {' or '.join(streaming_sources())} sources, not data.source={d.source!r}"
    if d.split not in STREAMING_SPLITS:
        return (
            f"data.streaming: true supports data.split random (a seeded hash of each (user, item) pair) and "
            f"leave_last_out (two passes, per-user state), not {d.split!r}: it needs a global order of all rows"
        )
    if d.duplicates != "keep_all":
        return (
            "data.streaming: true needs data.duplicates: keep_all (collapsing repeated pairs needs every pair in "
            f"memory), got {d.duplicates!r}"
        )
    if "history" in config.model.user_features:
        return "data.streaming: true does not support model.user_features with history (its timeline table holds every row)"
    if config.batching.strategy != "random":
        return "data.streaming: true needs batching.strategy: random (GCBS orders every example in memory)"
    return None


def _parameter_server_supported(config: Config) -> Optional[str]:
    if config.train.distribution.strategy != "parameter_server":
        return None
    # Each worker reads its own share of the in-memory examples in a seeded random order.
    prefix = "train.distribution.strategy=parameter_server"
    if config.batching.strategy != "random":
        return f"{prefix} needs batching.strategy: random (the GCBS order is planned on one process, not the workers)"
    if config.train.sequence_training:
        return f"{prefix} does not support train.sequence_training: true"
    if config.data.streaming:
        return f"{prefix} does not support data.streaming: true (the workers read the examples held in memory)"
    return None


# (keys involved, the rule in words, check returning the message or None), in
# the order they are checked.
_CROSS_RULES: list[tuple[tuple[str, ...], str, Callable[[Config], Optional[str]]]] = [
    (
        ("train.early_stopping.monitor", "eval.ks"),
        "`train.early_stopping.monitor` must be `loss`, `val_mrr` or "
        "`val_<hit_rate|recall|ndcg|coverage>@K` with K in `eval.ks`",
        _monitor_is_a_metric,
    ),
    (
        ("train.early_stopping.enabled", "data.validation_fraction"),
        "`train.early_stopping.enabled: true` needs `data.validation_fraction > 0`",
        _early_stopping_has_validation,
    ),
    (
        ("experimental.logq_variant", "negatives.logq", "negatives.mode"),
        "`experimental.logq_variant: refined` needs the logQ correction on (`negatives.logq: true`, or null with "
        "`mode` mixed or in_batch; never with `mode: full`)",
        _refined_logq_has_logq,
    ),
    (
        ("export.ann.pq_m", "model.embedding_dim"),
        "`export.ann.pq_m` must divide `model.embedding_dim` when `export.index: faiss` and `export.ann.kind: ivfpq`",
        _pq_divides_dim,
    ),
    (
        ("model.item_features", "data.csv.item_columns", "data.source"),
        "`model.item_features` names id, title, genres or a `data.csv.item_columns` column (sources csv and "
        "parquet with `data.csv.items_path`)",
        _item_features_known,
    ),
    (
        ("model.item_features", "data.source", "data.csv.items_path", "data.csv.title_column", "data.csv.genres_column"),
        "`title` and `genres` in `model.item_features` need a source that has them (csv and parquet: "
        "`data.csv.items_path` with the column set)",
        _item_features_available,
    ),
    (
        ("data.split", "model.item_features", "negatives.mode"),
        "`data.split: cold_items` needs content item features and a sampled or in-batch softmax (not "
        "`negatives.mode: full`)",
        _cold_items_need_content,
    ),
    (
        ("model.history.num_heads", "model.embedding_dim"),
        "`model.history.num_heads` must divide `model.embedding_dim` with `pooling: transformer`",
        _heads_divide_dim,
    ),
    (
        ("train.sequence_training", "model.user_features", "model.history.pooling", "negatives.mode",
         "experimental.logq_variant", "negatives.num_hard_negatives", "experimental.mask_same_user",
         "batching.strategy"),
        "`train.sequence_training: true` needs a `history` user tower with `pooling: transformer`, "
        "`negatives.mode` mixed, random or in_batch with the standard logQ, no hard negatives, no same-user mask, "
        "and random batches",
        _sequence_training_fits,
    ),
    (
        ("data.streaming", "data.source", "data.split", "data.duplicates", "model.user_features", "batching.strategy"),
        "`data.streaming: true` needs source csv or parquet, split random or leave_last_out, duplicates keep_all, "
        "no history user tower and batching.strategy random",
        _streaming_supported,
    ),
    (
        ("train.distribution.strategy", "batching.strategy", "train.sequence_training", "data.streaming"),
        "`train.distribution.strategy: parameter_server` needs `batching.strategy: random`, no sequence training "
        "and no streaming",
        _parameter_server_supported,
    ),
]


# ------------------------------------------------------------------ building


_type_name = type_name  # the config reference says types the same way


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _coerce(value: Any, tp: Any, key: str, where: str) -> Any:
    """Return ``value`` as type ``tp`` or raise a ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    bad = ConfigError(f"{where}{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Union:
        if value is None:
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)][0]
        return _coerce(value, inner, key, where)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise bad
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise bad
        (inner,) = typing.get_args(tp)
        return [_coerce(v, inner, key, where) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        key_tp, value_tp = typing.get_args(tp)
        return {_coerce(k, key_tp, key, where): _coerce(v, value_tp, f"{key}.{k}", where) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, str):
            # YAML 1.1 reads ``1e-3`` (no dot) as a string; it is a number to anyone typing it.
            try:
                value = float(value) if _NUMBER.fullmatch(value.strip()) else value
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise TypeError(f"unsupported config type {tp} for {key}")


def _build(cls: type, raw: Any, prefix: str, where: str, experimental: dict[str, Any]) -> Any:
    """``cls`` from its ``raw`` mapping; ``experimental``: the ``experimental``
    section's values by the dotted key of the field each sets."""
    if not isinstance(raw, dict):
        section = prefix.rstrip(".") or "top level"
        raise ConfigError(f"{where}{section}: expected a mapping of keys, got {raw!r}")
    hints = type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = [name for name, f in fields.items() if not f.metadata.get("experimental")]
    kwargs: dict[str, Any] = {}
    given = [(key, value, prefix + str(key), False) for key, value in raw.items()]
    for name, f in fields.items():
        if prefix + name in experimental:  # set as experimental.<key>, named so in errors
            given.append((name, experimental[prefix + name], f"{EXPERIMENTAL}.{f.metadata['experimental']}", True))
    for key, value, full, moved in given:
        if not moved and key in fields and fields[key].metadata.get("experimental"):
            raise ConfigError(f"{where}{full}: moved to {EXPERIMENTAL}.{fields[key].metadata['experimental']}")
        if key not in fields:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            raise ConfigError(f"{where}{full}: unknown key{hint}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value, full + ".", where, experimental)
            continue
        if fields[key].metadata.get("column") and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # a 0-based column position, for header: false
        kwargs[key] = _coerce(value, tp, full, where)
        problem = range_problem(fields[key], kwargs[key])
        if problem is not None:
            raise ConfigError(f"{where}{full}: {problem}, got {value!r}")
    for name in fields:  # sections not given still take the experimental settings
        if name not in kwargs and dataclasses.is_dataclass(hints[name]) and any(
            key.startswith(prefix + name + ".") for key in experimental
        ):
            kwargs[name] = _build(hints[name], {}, prefix + name + ".", where, experimental)
    return cls(**kwargs)


def _experimental_settings(raw: Any, where: str) -> dict[str, Any]:
    """The ``experimental`` section of ``raw`` by the dotted key of the field each sets."""
    section = raw.pop(EXPERIMENTAL, None) if isinstance(raw, dict) else None
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError(f"{where}{EXPERIMENTAL}: expected a mapping of keys, got {section!r}")
    known = experimental_keys()
    out = {}
    for key, value in section.items():
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f" (did you mean '{EXPERIMENTAL}.{close[0]}'?)" if close else ""
            raise ConfigError(f"{where}{EXPERIMENTAL}.{key}: unknown key{hint}")
        out[known[key][0]] = value
    return out


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_overrides(pairs: typing.Sequence[str], sections: Optional[typing.Sequence[str]] = None) -> dict:
    """Turn ``["train.epochs=5", "eval.ks=[1,10]"]`` into a nested dict.

    Values are parsed as YAML, so ``true``, ``null``, numbers and lists work.
    A key given twice is an error (which one was meant?). ``sections``, when
    given, are the only top-level sections that may be overridden.
    """
    nested: dict = {}
    seen: set[str] = set()
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set {pair}: expected section.key=value")
        key, _, text = pair.partition("=")
        key = key.strip()
        if not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set {pair}: expected section.key=value")
        if key in seen:
            raise ConfigError(f"--set {key}: given twice; keep one value")
        seen.add(key)
        if sections is not None and key.split(".")[0] not in sections:
            allowed = " or ".join(f"{s}.*" for s in sections)
            raise ConfigError(
                f"--set {key}: only {allowed} keys may be overridden here; the rest is the run's saved config"
            )
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {key}: cannot parse value {text!r}: {exc}") from None
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: conflicts with another --set")
        if parts[-1] in node:  # e.g. a whole section, then one of its keys
            raise ConfigError(f"--set {key}: conflicts with another --set")
        node[parts[-1]] = value
    return nested


def from_dict(raw: dict, where: str = "", sections: Optional[typing.Sequence[str]] = None) -> Config:
    """Build a validated :class:`Config`; ``where`` prefixes error messages.

    Every key's type and range is checked, then every rule across keys —
    with ``sections`` (a finished run's config, only those sections
    overridden), only the rules that stay inside them: a rule that ties
    ``eval.ks`` to the training's monitor was training's to check.
    """
    raw = dict(raw) if isinstance(raw, dict) else raw
    config = _build(Config, raw, "", where, _experimental_settings(raw, where))
    for keys, _, check in _CROSS_RULES:
        if sections is not None and any(key.split(".")[0] not in sections for key in keys):
            continue
        problem = check(config)
        if problem is not None:
            raise ConfigError(f"{where}{problem}")
    return config


def validate(config: Config, where: str = "") -> Config:
    """Check a :class:`Config` built or changed in Python as :func:`load_config`
    checks a file; returns the checked copy (ints in float keys made floats)."""
    return from_dict(config.to_dict(), where)


def _read_yaml(path: str) -> Any:
    """The YAML document in ``path``; every way reading can fail is a ConfigError naming the file."""
    if os.path.isdir(path):
        raise ConfigError(f"{path}: is a folder, expected a YAML config file")
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: config file not found")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line}: not UTF-8 text (save the config file as UTF-8)") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line_no = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{line_no} invalid YAML: {getattr(exc, 'problem', exc)}") from None


def _moved_to_experimental(raw: dict) -> dict:
    """``raw`` with the keys that moved to the ``experimental`` section moved there: a
    run folder's ``config.yaml`` written before the move holds every key, at its old place."""
    out = dict(raw)
    for name, (home, _tp, _f) in experimental_keys().items():
        parts = home.split(".")
        node: Any = out
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and parts[-1] in node:
            section = out.setdefault(EXPERIMENTAL, {})
            if isinstance(section, dict):
                section.setdefault(name, node.pop(parts[-1]))
    return out


def load_config(
    path: Optional[str] = None,
    overrides: typing.Sequence[str] = (),
    sections: Optional[typing.Sequence[str]] = None,
    saved: bool = False,
) -> Config:
    """Read ``path`` (YAML), apply ``--set`` style ``overrides`` (only keys of
    ``sections``, when given) and validate. ``saved``: ``path`` is a run's own
    config (written by tfrs-irns, perhaps an older one), whose keys that moved
    since are read at their new place instead of refused."""
    raw: dict = {}
    where = ""
    if path is not None:
        where = f"{path}: "
        raw = _read_yaml(path) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
        raw.setdefault("name", os.path.splitext(os.path.basename(path))[0])
        if saved:
            raw = _moved_to_experimental(copy.deepcopy(raw))
    merged = _merge(raw, parse_overrides(overrides, sections))
    if overrides and path is not None:
        where = f"{path} (with --set): "
    return from_dict(merged, where, sections)


def save_config(config: Config, path: str) -> None:
    """Write ``config`` as YAML, atomically (a kill leaves the old file or the new one)."""
    with atomic_open(path) as fh:
        yaml.safe_dump(config.to_dict(), fh, sort_keys=False)


def absolute_paths(config: _C) -> _C:
    """A copy of ``config`` (any config dataclass) whose path keys
    (``metadata={"path": True}``), at any depth, are absolute.

    A run saves its config; made absolute, its data paths still point at the
    same files when ``evaluate --run`` or ``export --run`` runs from another
    folder. Null and empty paths are left alone.
    """
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(config):  # type: ignore[arg-type]
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            changes[f.name] = absolute_paths(value)
        elif f.metadata.get("path") and value:
            changes[f.name] = os.path.abspath(value)
    return dataclasses.replace(config, **changes)  # type: ignore[type-var]


def iter_keys(cls: type = Config, prefix: str = "") -> typing.Iterator[tuple[str, Any, dataclasses.Field]]:
    """``(dotted key, type, field)`` of every key of ``cls``, sections included, in file order; the
    experimental settings as ``experimental.<key>`` last (with the field they set)."""
    hints = type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("experimental"):
            continue
        key = prefix + f.name
        yield key, hints[f.name], f
        if dataclasses.is_dataclass(hints[f.name]):
            yield from iter_keys(hints[f.name], key + ".")
    if cls is Config:
        for name, (_home, tp, f) in experimental_keys().items():
            yield f"{EXPERIMENTAL}.{name}", tp, f
