"""Config → objects: the one place that turns a run config into library objects.

The library layers below (samplers, towers, the task, the model, callbacks)
take plain arguments and validate them in their own words. This module is the
only one that reads a :class:`~tfrs_irns.config.Config` to build them; rules
that need the data (a catalogue size, say) are checked here, in the config's
words, before anything trains.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator, Optional

import numpy as np
import tensorflow as tf

from tfrs_irns.batching.pipeline import TrainPipeline
from tfrs_irns.batching.sequence import sequence_pipeline, sequence_windows
from tfrs_irns.config import Config, DistributionConfig, content_features
from tfrs_irns.data.history import WINDOW_RULES, UserHistory, history_of
from tfrs_irns.data.item_features import BUILTIN_KINDS, item_feature_strings
from tfrs_irns.data.prepare import Catalogue, Known, PreparedData
from tfrs_irns.errors import ConfigError
from tfrs_irns.export.versions import check_name
from tfrs_irns.layers.history import HistoryQueryTower
from tfrs_irns.layers.item_content import ContentItemTower, catalogue_vocabulary, encode_catalogue, make_encoders
from tfrs_irns.layers.towers import CandidateTower, QueryTower
from tfrs_irns.models.two_tower import TwoTowerModel
from tfrs_irns.runs.parameter_server import (
    cluster_jobs, is_parameter_server, make_parameter_server_strategy, tf_config,
)
from tfrs_irns.sampling.samplers import NegativeSampler, UniformSampler, UnigramSampler
from tfrs_irns.evaluation.params import monitor_mode, validation_keys
from tfrs_irns.tasks.irns import IRNSRetrieval
from tfrs_irns.tasks.params import NegativesParams, full_softmax_fits


def resolve_cross_replica(negatives: NegativesParams) -> bool:
    """``negatives.cross_replica: null`` means true when the strategy in scope
    has more than one replica: each row then meets the global batch's
    positives, as on one device (the eBay semantics do not depend on the hardware)."""
    if negatives.cross_replica is not None:
        return negatives.cross_replica
    return tf.distribute.get_strategy().num_replicas_in_sync > 1


def make_sampler(negatives: NegativesParams, item_counts: Any) -> NegativeSampler:
    """The sampler ``negatives.sampler`` names, over the training catalogue."""
    counts = np.asarray(item_counts, np.float64)
    num_items = counts.shape[0] - 1
    if negatives.sampler == "unigram":
        sampler: NegativeSampler = UnigramSampler(counts, alpha=negatives.alpha, replacement=negatives.replacement)
    elif (counts[1:] <= 0).any():
        # Items without a training count (the cold items of data.split: cold_items) must never be
        # sampled: alpha 0 is uniform over the items that have one.
        sampler = UnigramSampler(counts, alpha=0.0, replacement=negatives.replacement)
    else:
        sampler = UniformSampler(num_items, replacement=negatives.replacement)
    if not negatives.replacement and negatives.num_negatives > sampler.num_available:
        raise ConfigError(
            f"negatives.num_negatives={negatives.num_negatives} exceeds the {sampler.num_available} items "
            f"{sampler.available_phrase} with negatives.replacement=false; lower negatives.num_negatives or set "
            "negatives.replacement=true"
        )
    return sampler


def irns_task_from_config(
    negatives: NegativesParams,
    candidate_tower: tf.keras.layers.Layer,
    item_counts: Any,
    temperature: float = 1.0,
    **kwargs: Any,
) -> IRNSRetrieval:
    """The task a run config describes.

    Args:
      negatives: ``config.negatives``.
      candidate_tower: the model's candidate tower (item index → ``[n, d]``).
      item_counts: training interactions per item index, ``[num_items + 1]``
        (e.g. ``np.bincount(train_items, minlength=num_items + 1)``): the
        logQ ``p`` and the unigram sampler's counts.
      temperature: ``config.model.temperature``.
    """
    counts = np.asarray(item_counts, np.float64)
    num_items = counts.shape[0] - 1
    if not full_softmax_fits(negatives.mode, num_items, negatives.full_max_items):
        raise ConfigError(
            f"negatives.mode=full computes the exact softmax over all {num_items} items, more than "
            f"negatives.full_max_items={negatives.full_max_items}; use mode mixed, or raise "
            "negatives.full_max_items if the [batch, items] logits fit in memory"
        )
    total = counts[1:].sum()
    probabilities = np.zeros_like(counts) if total <= 0 else np.concatenate([[0.0], counts[1:] / total])
    sampler = make_sampler(negatives, counts) if negatives.mode in ("random", "mixed") else None
    return IRNSRetrieval(
        candidate_tower,
        num_items,
        mode=negatives.mode,
        num_negatives=negatives.num_negatives,
        sampler=sampler,
        item_probabilities=probabilities,
        logq=negatives.logq_on,
        logq_variant=negatives.logq_variant,
        remove_accidental_hits=negatives.remove_accidental_hits,
        mask_same_user=negatives.mask_same_user,
        temperature=temperature,
        num_hard_negatives=negatives.num_hard_negatives,
        full_max_items=negatives.full_max_items,
        cross_replica=resolve_cross_replica(negatives),
        seed=negatives.seed,
        **kwargs,
    )


def user_history(config: Config, data: PreparedData) -> Optional[UserHistory]:
    """The users' timelines a ``history`` user tower needs (None for ``[id]``)."""
    return history_of(data) if "history" in config.model.user_features else None


def history_query_tower(
    config: Config, data: Known, candidate_tower: tf.keras.layers.Layer, history: Optional[UserHistory]
) -> HistoryQueryTower:
    """The activity user tower of ``model.user_features`` with ``history``."""
    m, h = config.model, config.model.history
    if history is None:
        if isinstance(data, Catalogue):
            raise ValueError("a history user tower built from a catalogue needs the run's saved timelines (history=)")
        history = history_of(data)
    return HistoryQueryTower(
        data.user_vocab.size,
        data.num_items,
        m.embedding_dim,
        length=h.length,
        pooling=h.pooling,
        num_blocks=h.num_blocks,
        num_heads=h.num_heads,
        dropout=h.dropout,
        use_id="id" in m.user_features,
        item_tower=candidate_tower if h.shared_tower else None,
        hidden=m.query_hidden,
        normalize=m.normalize,
        window=WINDOW_RULES[config.data.split],
        history_offsets=history.offsets,
        history_items=history.items,
        name="query_tower",
    )


def build_towers(
    config: Config, data: Known, history: Optional[UserHistory] = None
) -> tuple[tf.keras.layers.Layer, CandidateTower]:
    """The query and candidate towers ``config.model`` describes, sized for
    ``data``; ``history``: the timelines of a ``history`` user tower (default:
    from ``data``'s training split, see :func:`user_history`)."""
    m = config.model
    if content_features(m):
        candidate_tower: tf.keras.layers.Layer = content_tower(config, data)
    else:
        features = data.item_genres if (m.use_genres and data.item_genres is not None) else None
        candidate_tower = CandidateTower(
            data.item_vocab.size,
            m.embedding_dim,
            m.candidate_hidden,
            m.normalize,
            item_features=features,
            name="candidate_tower",
        )
    if "history" in m.user_features:
        query_tower = history_query_tower(config, data, candidate_tower, history)
    else:
        query_tower = QueryTower(data.user_vocab.size, m.embedding_dim, m.query_hidden, m.normalize, name="query_tower")
    return query_tower, candidate_tower


def content_tower(config: Config, data: Known) -> ContentItemTower:
    """The content candidate tower of ``model.item_features``, its tables encoded from ``data``.

    Vocabularies come from the items with a training count only (a cold item's
    words are not the model's to know); every item, cold ones included, is
    encoded with them. Each table keeps as many columns as the longest item
    needs, up to ``model.max_tokens``.
    """
    m = config.model
    warm = np.asarray(data.item_counts) > 0
    features, tables = [], {}
    for name in content_features(m):
        kind = BUILTIN_KINDS.get(name) or config.data.csv.item_columns[name]
        strings = item_feature_strings(data, name)
        feature = {"name": name, "kind": kind, "length": m.max_tokens,
                   "vocabulary": catalogue_vocabulary(strings[warm], kind, m.max_vocabulary)}
        if not feature["vocabulary"]:
            raise ConfigError(
                f"model.item_features: {name!r} is empty for every item with a training interaction "
                "(does the data have it?)"
            )
        table = encode_catalogue(strings, make_encoders([feature])[name])
        used = np.flatnonzero((table > 0).any(axis=0))
        feature["length"] = int(used[-1]) + 1 if len(used) else 1
        features.append(feature)
        tables[name] = table[:, : feature["length"]]
    return ContentItemTower(
        data.item_vocab.size,
        m.embedding_dim,
        m.candidate_hidden,
        m.normalize,
        use_id="id" in m.item_features,
        features=features,
        pooling=m.text_pooling,
        tables=tables,
        id_mask=warm.astype(np.float32),
        name="candidate_tower",
    )


@contextlib.contextmanager
def precision_policy(precision: str) -> Iterator[None]:
    """``train.precision`` as the Keras global policy while layers are built,
    then back to what it was: the layers keep their policy, later layers
    (and other code in the process) are not affected."""
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


def build_model(
    config: Config,
    data: Known,
    task: Optional[tf.keras.layers.Layer] = None,
    history: Optional[UserHistory] = None,
) -> TwoTowerModel:
    """The model ``config`` describes, sized for ``data``, every weight created.

    The towers compute in ``train.precision`` (their variables stay float32);
    the task's logits and loss are float32 in every policy. ``history``: as
    :func:`build_towers`'s.
    """
    with precision_policy(config.train.precision):
        return _build_model(config, data, task, history)


def _build_model(
    config: Config, data: Known, task: Optional[tf.keras.layers.Layer], history: Optional[UserHistory]
) -> TwoTowerModel:
    query_tower, candidate_tower = build_towers(config, data, history)
    if task is None:
        task = irns_task_from_config(
            config.negatives, candidate_tower, data.item_counts, temperature=config.model.temperature
        )
    model = TwoTowerModel(query_tower, candidate_tower, task, embedding_l2=config.model.embedding_l2)
    # Create every weight now so checkpoints restore eagerly and exports see them.
    dummy = tf.zeros([1], tf.int32)
    query_tower(dummy)
    candidate_tower(dummy)
    return model


def pipeline_extras(history: Optional[UserHistory]) -> dict[str, np.ndarray]:
    """What each training batch carries beside users and items: the examples'
    places in a history tower's timelines (see ``TwoTowerModel``'s tower contract)."""
    return {} if history is None else {"history_position": history.positions}


def sequence_train_pipeline(config: Config, data: PreparedData, history: UserHistory) -> TrainPipeline:
    """``train.sequence_training``'s batches: ``train.batch_size`` windows of the known
    users' training timelines, ``model.history.length`` positions each."""
    windows = sequence_windows(history.offsets, history.items, data.user_vocab.size, config.model.history.length)
    if config.batching.drop_remainder and len(windows.users) < config.train.batch_size:
        raise ConfigError(
            f"train.batch_size={config.train.batch_size} sequences with batching.drop_remainder=true drops all "
            f"{len(windows.users)} training windows; lower train.batch_size or set batching.drop_remainder=false"
        )
    return sequence_pipeline(
        windows, config.train.batch_size, seed=config.train.seed, drop_remainder=config.batching.drop_remainder
    )


def set_logical_cpus(count: Optional[int]) -> None:
    """Split the host CPU into ``count`` logical devices (``train.distribution.logical_cpus``).

    TensorFlow fixes its devices the first time it uses them; a process that
    already did can only keep the count it has.
    """
    if count is None:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have != count:
            raise ConfigError(
                f"train.distribution.logical_cpus={count}: TensorFlow already initialised {have} CPU device(s) "
                "in this process; set it before TensorFlow runs anything (tfrs-irns train does)"
            ) from None


def make_strategy(distribution: DistributionConfig) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy ``train.distribution`` names.

    Call it first, before TensorFlow runs anything: logical CPUs and
    ``MultiWorkerMirroredStrategy`` must be set up before TensorFlow
    initialises its devices. One device is TensorFlow's default strategy (no
    scope to enter; it is also the one ``BackupAndRestore`` supports).
    """
    set_logical_cpus(distribution.logical_cpus)
    name = distribution.strategy
    if name == "multi_worker":
        tf_config(name)
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "parameter_server":  # on a ps or worker task this serves and never returns
        return make_parameter_server_strategy(distribution.num_shards, distribution.min_shard_bytes)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    return tf.distribute.get_strategy()


def strategy_name(strategy: tf.distribute.Strategy) -> str:
    """The ``train.distribution.strategy`` word for a strategy (``auto`` resolved)."""
    if is_parameter_server(strategy):
        return "parameter_server"
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "multi_worker"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    return "one_device"


def num_workers(strategy: tf.distribute.Strategy) -> int:
    """Machines (TF_CONFIG chief and workers) training together; 1 without a cluster."""
    if is_parameter_server(strategy):  # the chief coordinates; the workers train
        return len(cluster_jobs().get("worker", []))
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return 1
    spec = resolver.cluster_spec().as_dict()
    return max(1, len(spec.get("chief", [])) + len(spec.get("worker", [])))


def distribution_info(config: Config, strategy: tf.distribute.Strategy) -> dict[str, Any]:
    """What ``metrics.json`` records under ``distribution``."""
    return {
        "strategy": strategy_name(strategy),
        "num_replicas": int(strategy.num_replicas_in_sync),
        "num_workers": num_workers(strategy),
        "global_batch_size": config.train.batch_size,
    }


def jit_compile_on(setting: Any) -> bool:
    """``train.jit_compile`` resolved: ``auto`` is on when TensorFlow finds a GPU
    (XLA fuses the step's passes over the ``[B, C]`` logits there; on a CPU
    the plain graph is about as fast)."""
    if setting == "auto":
        return bool(tf.config.list_physical_devices("GPU"))
    return bool(setting)


def compile_options(config: Config) -> dict[str, Any]:
    """The ``model.compile`` arguments ``config.train`` sets beside the optimizer."""
    return {
        "jit_compile": jit_compile_on(config.train.jit_compile),
        "steps_per_execution": config.train.steps_per_execution,
    }


def make_optimizer(config: Config) -> tf.keras.optimizers.Optimizer:
    """The optimizer ``config.train`` names."""
    t = config.train
    if t.optimizer == "adagrad":
        # Our loss is a mean over rows; TFRS's Adagrad(0.1) default assumes a sum, whose
        # gradients are B times larger. A tiny initial accumulator restores Adagrad's
        # scale invariance (with 0.1 the mean-loss updates barely move the embeddings).
        return tf.keras.optimizers.Adagrad(t.learning_rate, initial_accumulator_value=1e-6)
    if t.optimizer == "adam":
        return tf.keras.optimizers.Adam(t.learning_rate)
    return tf.keras.optimizers.AdamW(t.learning_rate, weight_decay=t.weight_decay)


def export_name(config: Config) -> str:
    """The folder name a run exports under: ``export.name``, else the config's ``name``."""
    key, name = ("export.name", config.export.name) if config.export.name else ("name", config.name)
    try:
        check_name(name)
    except ValueError:
        raise ConfigError(f"{key}: {name!r} is not a valid model name (one folder name, e.g. 'quickstart')") from None
    return name


def build_callbacks(
    config: Config,
    run_dir: str,
    pipeline: Any,
    model: TwoTowerModel,
    data: PreparedData,
    initial_epoch: int = 0,
    resume_mid_epoch: bool = False,
) -> list:
    """The Keras callbacks a run uses, in the order they must see the logs.

    Validation metrics first (early stopping and TensorBoard read them from
    the same logs dict), then the batching strategy, then TensorBoard.
    ``initial_epoch`` and ``resume_mid_epoch`` say where a resumed run
    continues (GCBS plans that epoch's order, or keeps the restored one).
    """
    from tfrs_irns.evaluation.validation import EpochMetrics

    callbacks: list = []
    stopping = config.train.early_stopping
    if stopping.enabled and not len(data.validation):
        raise ConfigError(
            "train.early_stopping.enabled=true needs a validation split, and this data gave an empty one: "
            "raise data.validation_fraction or set train.early_stopping.enabled=false"
        )
    if len(data.validation):
        callbacks.append(
            EpochMetrics(
                data,
                "validation",
                ks=config.eval.ks,
                exclude_seen=config.eval.exclude_seen,
                chunk_size=config.eval.chunk_size,
                max_queries=stopping.max_queries,
                seed=config.train.seed,
                keys=validation_keys(config.eval.ks, stopping.monitor),
            )
        )
    if stopping.enabled:
        from tfrs_irns.runs.backup import best_dir
        from tfrs_irns.runs.stopping import BestEpochStopping

        callbacks.append(
            BestEpochStopping(  # the best epoch as a checkpoint in the run's backup, not a copy in memory
                best_dir(run_dir),
                monitor=stopping.monitor,
                mode=monitor_mode(stopping.monitor),
                patience=stopping.patience,
                verbose=1,
            )
        )
    if config.batching.strategy == "gcbs":
        from tfrs_irns.batching.gcbs_callback import GCBSCallback

        callbacks.append(
            GCBSCallback(
                pipeline,
                model,
                config.batching.gcbs,
                log_dir=os.path.join(run_dir, "logs"),
                temperature=config.model.temperature,
                initial_epoch=initial_epoch,
                resume_mid_epoch=resume_mid_epoch,
            )
        )
    callbacks.append(
        tf.keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), profile_batch=profile_batch(config, pipeline))
    )
    return callbacks


def profile_batch(config: Config, pipeline: Any) -> Any:
    """TensorBoard's ``profile_batch`` for ``train.profile_steps``: ``(first, last)``, or 0 (no trace).

    Keras counts the steps of a ``fit`` call from 1; a first step the run never
    reaches would silently write no trace, so it is an error here.
    """
    steps = config.train.profile_steps
    if steps is None:
        return 0
    first, last = steps
    total = config.train.epochs * pipeline.steps_per_epoch
    if first > total:
        raise ConfigError(
            f"train.profile_steps=[{first}, {last}]: the run has {total} training steps "
            f"(train.epochs={config.train.epochs} × {pipeline.steps_per_epoch} per epoch); profile steps within them"
        )
    return (first, last)


def check_export_extras(config: Config) -> None:
    """``export.index: faiss`` and GCBS's ``graph_builder: ann`` need the optional faiss: say so before training."""
    from tfrs_irns._faiss import import_faiss
    from tfrs_irns.errors import UserError

    needs = []
    if config.batching.strategy == "gcbs" and config.batching.gcbs.graph_builder == "ann":
        needs.append(("batching.gcbs.graph_builder: ann", "set batching.gcbs.graph_builder: exact"))
    if config.export.index == "faiss":
        needs.append(("export.index: faiss: the ANN index", ""))
    for needed_by, otherwise in needs:
        try:
            import_faiss(needed_by, otherwise)
        except UserError as exc:
            raise ConfigError(str(exc)) from None
