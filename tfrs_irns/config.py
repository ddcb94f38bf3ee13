"""Typed run configuration, read from YAML with ``--set`` overrides.

Every key a config file may hold is a field below, with its default and a
one-line description; the names are a contract that outside scripts rely on.
``docs/configuration.md`` is rendered from these fields by
``python tools/gen_config_reference.py`` (:mod:`tfrs_irns.config_reference`).

Loading checks the whole config before anything is built or written: each
key's name, type and range (``_RULES``), then the rules that tie several keys
together (``_CROSS_RULES``), each rule in one place. The first problem stops
loading with a :class:`~tfrs_irns.errors.ConfigError` that names the file and
the key. Rules that need the data (a catalogue size, say) cannot be checked
here; :mod:`tfrs_irns.runs.build` checks them, in the same words, before
training starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Optional, TypeVar

import yaml

from tfrs_irns._files import atomic_open
from tfrs_irns.errors import ConfigError

_C = TypeVar("_C")


def _f(
    default: Any = dataclasses.MISSING, help: str = "", *, factory: Any = None, path: bool = False, column: bool = False
) -> Any:
    """A config field: its default (or ``factory``), a one-line ``help`` for
    the reference, ``path=True`` for file paths :func:`absolute_paths` fixes,
    and ``column=True`` for column names that may be 0-based positions (an
    integer in YAML is read as its string)."""
    metadata: dict[str, Any] = {"help": help}
    if path:
        metadata["path"] = True
    if column:
        metadata["column"] = True
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class SyntheticConfig:
    """The embedded synthetic catalogue (``data.source: synthetic``)."""

    num_users: int = _f(5000, "users generated")
    num_items: int = _f(20000, "items generated")
    num_interactions: int = _f(500000, "(user, item) interactions generated; each pair occurs at most once")
    num_clusters: int = _f(20, "latent taste clusters shared by users and items (an item's genre is its cluster)")
    zipf_exponent: float = _f(0.8, "item popularity is Zipf with this exponent over a random ranking (0: uniform)")
    affinity: float = _f(0.9, "share of each user's interactions drawn from their own cluster (the planted signal)")


@dataclass
class CsvConfig:
    """Column mapping of ``data.source: csv``; with ``header: false`` columns are 0-based positions ("0", "1", ...)."""

    user_column: str = _f("user_id", "column holding the user id", column=True)
    item_column: str = _f("item_id", "column holding the item id", column=True)
    timestamp_column: Optional[str] = _f("timestamp", "column holding the time (null: row order stands in for time)", column=True)
    rating_column: Optional[str] = _f(None, "column holding the rating (needed by data.min_rating)", column=True)
    delimiter: str = _f(",", "field separator of both files; '\\t' or 'tab' for a tab")
    header: bool = _f(True, "the first line of each file names the columns")
    items_path: Optional[str] = _f(None, "optional item file giving titles and genres", path=True)
    item_id_column: str = _f("item_id", "column of the item file holding the item id", column=True)
    title_column: Optional[str] = _f("title", "column of the item file holding the title (null: none)", column=True)
    genres_column: Optional[str] = _f(None, "column of the item file holding '|'-joined genres (null: none)", column=True)
    item_columns: dict[str, Literal["text", "categorical"]] = _f(
        help="further item-file columns usable in model.item_features: column name -> text (tokenised) or "
        "categorical ('|'-joined values)", factory=dict
    )


@dataclass
class DataConfig:
    """Where the interactions come from and how they are split."""

    source: Literal["synthetic", "tfds", "movielens", "csv", "parquet"] = _f(
        "synthetic", "where the interactions come from: generated (synthetic), tensorflow_datasets (tfds), "
        "a local MovieLens release (movielens), any CSV/TSV file (csv), a Parquet file or folder (parquet)"
    )
    name: Optional[str] = _f(None, "tensorflow_datasets name (source tfds), e.g. movielens/100k-ratings")
    path: Optional[str] = _f(
        None, "a MovieLens folder or .zip (source movielens), the interactions CSV/TSV file (source csv), "
        "or a Parquet file or folder of .parquet files (source parquet)", path=True
    )
    split: Literal["random", "temporal", "leave_last_out", "cold_items", "cold_users"] = _f(
        "random", "how test (and validation) interactions are held out: seeded shuffle, global time cut, "
        "each user's last interaction, every interaction of a seeded share of items never trained on (cold_items), "
        "or new users (cold_users: a seeded share of users never trained on, the earlier half of each one's "
        "interactions given as history, the later half tested)"
    )
    cold_item_fraction: float = _f(
        0.1, "split cold_items: share of the items held out of training and validation; the test is every "
        "interaction on them (test_fraction unused)"
    )
    test_fraction: float = _f(
        0.2, "share of the interactions held out for test (random, temporal; unused by leave_last_out)"
    )
    validation_fraction: float = _f(
        0.1, "share of the non-test interactions held out for validation (random, temporal); leave_last_out takes "
        "each user's second-to-last interaction (users with 3 or more) when > 0; 0: no validation split"
    )
    cold_user_fraction: float = _f(
        0.1, "cold_users split: share of the users held out of training and validation (at least one)"
    )
    seed: int = _f(42, "seed of the random split and of the synthetic data")
    min_rating: Optional[float] = _f(None, "keep only interactions rated at least this (null: keep all; needs ratings)")
    skip_bad_rows: bool = _f(
        False, "movielens, csv and parquet: drop malformed rows with a warning instead of stopping"
    )
    duplicates: Literal["keep_last", "keep_first", "keep_all"] = _f(
        "keep_last", "repeated (user, item) pairs: keep the latest copy (by timestamp), the earliest, or every "
        "copy (keep_all: all copies of a pair land on the same side of every split)"
    )
    tfds_data_dir: Optional[str] = _f(None, "tensorflow_datasets data folder (null: the tfds default)", path=True)
    streaming: bool = _f(
        False, "csv and parquet: read the data in bounded-memory batches once, into encoded int64 shards in a cache "
        "keyed by the data fingerprint, and train from them with tf.data (memory grows with the vocabularies, not "
        "the rows; splits random and leave_last_out, data.duplicates keep_all; see docs/streaming.md)"
    )
    cache_dir: Optional[str] = _f(
        None, "data.streaming: the folder of the shard cache (null: .tfrs-irns-cache beside the run folder)", path=True
    )
    synthetic: SyntheticConfig = _f(help="the synthetic catalogue (source synthetic)", factory=SyntheticConfig)
    csv: CsvConfig = _f(help="the column mapping (sources csv and parquet)", factory=CsvConfig)


@dataclass
class HistoryConfig:
    """The activity part of the user tower (``model.user_features`` with ``history``)."""

    length: int = _f(50, "the user's most recent training interactions the tower pools")
    shared_tower: bool = _f(
        True, "embed the history items with the candidate tower (true) or with a separate item table (false)"
    )
    pooling: Literal["mean", "attention", "gru", "transformer"] = _f(
        "mean", "how the history item embeddings become one vector: masked mean, attention with a learned "
        "query, a GRU read oldest to newest, or a causal transformer (SASRec) whose last position is the query"
    )
    num_blocks: int = _f(2, "pooling transformer: self-attention + feed-forward blocks")
    num_heads: int = _f(1, "pooling transformer: attention heads (must divide model.embedding_dim)")
    dropout: float = _f(0.2, "pooling transformer: dropout of the item embeddings, attention weights and block outputs")


@dataclass
class ModelConfig:
    """The two towers: user index → query embedding, item index → candidate embedding."""

    embedding_dim: int = _f(64, "embedding size d of both towers")
    normalize: bool = _f(False, "L2-normalise both towers' outputs (cosine scores)")
    temperature: float = _f(1.0, "softmax temperature T: the loss's logits are q·c / T")
    query_hidden: list[int] = _f(
        help="sizes of ReLU layers after the user embedding, then a linear layer back to embedding_dim", factory=list
    )
    candidate_hidden: list[int] = _f(
        help="sizes of ReLU layers after the item embedding, then a linear layer back to embedding_dim", factory=list
    )
    use_genres: bool = _f(
        False, "add the items' genres to the candidate tower (when the data has genres): with item_features [id] "
        "as a multi-hot projection added to the id row, with content features as the genres feature"
    )
    embedding_l2: float = _f(0.1, "L2 penalty on the user and item embedding rows each batch looks up")
    item_features: list[str] = _f(
        help="what the candidate tower embeds an item from: any of id, title (text), genres (categorical) and "
        "the names of data.csv.item_columns; [title, genres] is a content-only tower (no id table); "
        "use_genres: true adds genres", factory=lambda: ["id"]
    )
    text_pooling: Literal["mean", "attention"] = _f(
        "mean", "how a text feature's token embeddings become one vector (padding masked); categorical "
        "features always take the mean"
    )
    max_tokens: int = _f(16, "tokens (or categorical values) kept per item and content feature; longer texts are cut")
    max_vocabulary: int = _f(
        20000, "most frequent tokens (values) of the training catalogue kept per content feature; others are OOV"
    )
    user_features: list[Literal["id", "history"]] = _f(
        help="what the user tower embeds: [id] (a user table), [history] (the user's recent items, so new "
        "users get personal answers) or [id, history] (summed)", factory=lambda: ["id"]
    )
    history: HistoryConfig = _f(help="the user history (model.user_features with history)", factory=HistoryConfig)


@dataclass
class NegativesConfig:
    """Which items each positive is contrasted with in the retrieval loss (IRNS)."""

    mode: Literal["in_batch", "random", "mixed", "full"] = _f(
        "mixed", "in_batch: the batch's other positives; random: sampled items; mixed: both (IRNS); "
        "full: the exact softmax over every item"
    )
    num_negatives: int = _f(3000, "M, items sampled once per step and shared by the whole batch (random, mixed)")
    sampler: Literal["uniform", "unigram"] = _f(
        "uniform", "distribution of the sampled items: uniform over the catalogue, or training counts ** alpha"
    )
    replacement: bool = _f(True, "sample with replacement (false: M distinct items per step)")
    alpha: float = _f(0.75, "exponent on the training counts for the unigram sampler (1: like the data, 0: uniform)")
    logq: Optional[bool] = _f(
        None, "subtract log(B·p + M·q), the expected copies of each candidate, from its logit "
        "(null: on for mixed and in_batch)"
    )
    logq_variant: Literal["standard", "refined"] = _f(
        "standard", "standard: shift every column, the positive too; refined (Khrylchenko et al. 2025): the "
        "positive, always present, is not shifted and the negatives count B-1 in-batch draws (needs logq on)"
    )
    remove_accidental_hits: bool = _f(True, "mask candidate columns that are the row's own positive item")
    mask_same_user: bool = _f(False, "also mask in-batch columns holding another positive of the same user")
    num_hard_negatives: Optional[int] = _f(None, "keep only the k highest-scoring negatives per row (null: all)")
    full_max_items: int = _f(200000, "largest catalogue negatives.mode full accepts (its logits are [batch, items])")
    cross_replica: Optional[bool] = _f(
        None, "gather every replica's positives as in-batch negatives, so each row meets the global batch "
        "(null: true when train.distribution gives more than one replica)"
    )
    seed: int = _f(0, "seed of the per-step negative sampling")


@dataclass
class GcbsConfig:
    """GCBS (Tail Batch Sampling): batch orders that put hard negatives together."""

    start_epoch: int = _f(2, "first epoch (counted from 1) GCBS may order; the epochs before it use random batches")
    every: int = _f(1, "GCBS orders epoch e when e >= start_epoch and e - start_epoch is a multiple of every")
    neighbors: int = _f(600, "each user's pool of hardest items")
    threshold: Literal["topk", "quantile"] = _f(
        "topk", "topk: keep each user's whole pool; quantile: only items scoring above the quantile of "
        "example-pair scores"
    )
    quantile: float = _f(0.999, "score quantile a link must exceed with threshold quantile (the paper's 0.999)")
    similarity: Literal["dot", "cosine"] = _f(
        "dot", "dot: the model's scores; cosine: both embeddings normalised first, as in the paper"
    )
    graph: Literal["user_item", "item_item"] = _f(
        "user_item", "user_item: link an example to holders of its user's hard items; item_item: link examples "
        "whose positive items are close"
    )
    exclude_above_positive: bool = _f(
        False, "false-negative guard: never link a user to items it scores above its own positive"
    )
    seed: int = _f(0, "seed of the GCBS order (with the epoch number)")
    links_per_example: int = _f(16, "hard-negative graph links each example sends")
    holder_tries: int = _f(1, "random holders of a linked item tried per link; the hardest back is kept")
    diagnostics: bool = _f(
        False, "log the paper's diagnostics (similarities, loss-gap estimate) per GCBS epoch; off by default: "
        "they cost more than the order itself"
    )
    graph_builder: Literal["auto", "exact", "ann"] = _f(
        "auto", "how each user's hard items are found: exact scores every user x item pair; ann searches a FAISS "
        "IVF index over the item embeddings (pip install -e '.[ann]'); auto: exact up to 2^28 user x item pairs, "
        "ann above"
    )
    ann_nlist: int = _f(0, "IVF cells of the ann builder (0: 4 x sqrt(items), at most items / 39)")
    ann_nprobe: int = _f(64, "IVF cells scanned per user by the ann builder (lowered to fit max_scored_pairs)")
    max_scored_pairs: int = _f(
        4_000_000_000, "time bound of an ann recompute: users x (nlist + nprobe x items / nlist) scored pairs at "
        "most; nprobe drops, then only a seeded sample of users gets hard items"
    )
    max_links: int = _f(
        16_777_216, "memory bound of a recompute (~60 bytes per link): links per example drop to "
        "max_links / examples (at least 1)"
    )


@dataclass
class BatchingConfig:
    """How training examples are grouped into batches."""

    strategy: Literal["random", "gcbs"] = _f(
        "random", "random: a fresh seeded shuffle per epoch; gcbs: GCBS orders on its epochs"
    )
    drop_remainder: bool = _f(False, "drop each epoch's last, short batch")
    gcbs: GcbsConfig = _f(help="GCBS settings (strategy gcbs)", factory=GcbsConfig)


@dataclass
class EarlyStoppingConfig:
    """Stop when the validation metric stops improving, keeping the best epoch's weights."""

    enabled: bool = _f(True, "stop early and restore the best epoch's weights (needs a validation split)")
    monitor: str = _f(
        "val_hit_rate@100", "metric to watch: loss (lower is better) or val_<hit_rate|recall|ndcg|coverage>@K "
        "with K from eval.ks, or val_mrr (higher is better)"
    )
    patience: int = _f(3, "epochs without improvement before training stops")
    max_queries: int = _f(2000, "at most this many validation users scored per epoch (a seeded sample)")


@dataclass
class DistributionConfig:
    """Where training runs: one device, several local devices, or several machines (tf.distribute)."""

    strategy: Literal["auto", "one_device", "mirrored", "multi_worker"] = _f(
        "auto", "auto: MirroredStrategy over the local GPUs when there are several, else one device; "
        "mirrored: MirroredStrategy over the local GPUs (or logical_cpus CPUs); multi_worker: "
        "MultiWorkerMirroredStrategy, the cluster read from the TF_CONFIG environment variable"
    )
    logical_cpus: Optional[int] = _f(
        None, "split the host CPU into this many logical devices (mirrored on a machine without GPUs; "
        "null: one CPU device)"
    )


@dataclass
class TrainConfig:
    """The optimisation: batch size, epochs, optimizer."""

    batch_size: int = _f(600, "B, (user, positive item) pairs per step (the global batch)")
    epochs: int = _f(30, "epochs at most: early stopping may end training sooner")
    learning_rate: float = _f(0.1, "learning rate of the optimizer (the loss is a mean over the batch, not a sum)")
    optimizer: Literal["adagrad", "adam", "adamw"] = _f(
        "adagrad", "the tf.keras optimizer (adagrad starts its accumulator at 1e-6, not 0.1)"
    )
    weight_decay: float = _f(0.0, "decoupled weight decay of adamw (other optimizers ignore it)")
    seed: int = _f(0, "seed of TensorFlow, the batch shuffle and the validation sample")
    early_stopping: EarlyStoppingConfig = _f(help="early stopping on a validation metric", factory=EarlyStoppingConfig)
    precision: Literal["float32", "mixed_bfloat16", "mixed_float16"] = _f(
        "float32", "Keras mixed-precision policy of the towers (variables stay float32; logits, logQ, masking "
        "and the loss are float32 in every policy); mixed_float16 adds loss scaling"
    )
    backup_every_steps: Optional[int] = _f(
        None, "also back the run up every this many steps, not only at each epoch's end (train --resume "
        "continues from the last backup)"
    )
    profile_steps: Optional[list[int]] = _f(
        None, "[first, last]: write a TensorBoard profiler trace of these training steps (counted from 1 when "
        "fit starts) to the run's logs/ (Profile tab; docs/profiling.md); null: no trace"
    )
    distribution: DistributionConfig = _f(help="devices and machines (tf.distribute)", factory=DistributionConfig)
    sequence_training: bool = _f(
        False, "train on whole sequences: a batch is train.batch_size windows of each user's latest "
        "model.history.length training items, every position predicting the next item in one causal pass "
        "(needs model.user_features [history] with pooling transformer)"
    )
    jit_compile: Literal["auto", True, False] = _f(
        "auto", "compile the train step with XLA: auto (on when TensorFlow finds a GPU), true or false; "
        "embedding gradients are then applied densely (same updates for adagrad, adam and adamw)"
    )
    steps_per_execution: int = _f(
        1, "train steps per call of the compiled train function (fewer host round trips; callbacks then "
        "see every this many steps)"
    )


@dataclass
class EvalConfig:
    """Full-catalogue retrieval metrics on the test (and validation) split."""

    ks: list[int] = _f(
        help="cut-offs K of hit_rate@K, recall@K, ndcg@K, coverage@K", factory=lambda: [1, 5, 10, 50, 100]
    )
    exclude_seen: bool = _f(
        False, "remove from each user's ranking the items they have in earlier splits (false: keep them, as TFRS does)"
    )
    chunk_size: int = _f(1024, "users scored per matrix product (memory vs speed)")


@dataclass
class AnnConfig:
    """The approximate nearest-neighbour index of ``export.index: faiss`` (inner product over the item embeddings)."""

    kind: Literal["hnsw", "ivfpq", "flat"] = _f(
        "hnsw", "hnsw: a navigable small-world graph; ivfpq: inverted lists of product-quantised vectors; "
        "flat: exact (brute force inside FAISS)"
    )
    hnsw_m: int = _f(32, "hnsw: graph neighbours per node (memory and recall grow with it)")
    ef_construction: int = _f(
        40, "hnsw: candidates kept while building (build time and recall grow with it; FAISS default 40)"
    )
    ef_search: int = _f(128, "hnsw: candidates kept while searching (latency and recall grow with it)")
    nlist: int = _f(1024, "ivfpq: inverted lists (at most one per 39 items)")
    nprobe: int = _f(32, "ivfpq: lists scored per query (latency and recall grow with it)")
    pq_m: int = _f(16, "ivfpq: bytes per compressed vector; must divide model.embedding_dim")
    pq_bits: int = _f(8, "ivfpq: bits per sub-quantiser code")
    recall_users: int = _f(1000, "test users (at most) whose index answers are compared with exact brute force")
    target_recall: float = _f(
        0.95, "the export raises ef_search (hnsw) or nprobe (ivfpq), doubling it, on up to recall_users sample "
        "users until the index's recall@100 against exact search reaches this (or says in metrics.json that it "
        "cannot); 1.0 asks for exact answers"
    )


@dataclass
class ExportConfig:
    """The versioned SavedModel written after training."""

    enabled: bool = _f(
        True, "tfrs-irns train writes a SavedModel into the run folder and publishes it by export.publish "
        "(false: neither)"
    )
    name: Optional[str] = _f(None, "model folder under base_dir (null: the config's name)")
    k: int = _f(100, "items the serving signature returns (clipped to the catalogue size)")
    base_dir: str = _f("saved_models", "folder of exported models, relative to where the command runs")
    publish: Literal["auto", "always", "never"] = _f(
        "auto", "after training, make the run the next served version: auto (when none is published; never an "
        "identical model; otherwise when the run scores at least as well as the latest version on the same "
        "validation data, both models scored on both datasets when the data differs), always, or never; "
        "tfrs-irns export --run always publishes"
    )
    publish_tolerance: float = _f(
        0.0, "export.publish=auto still publishes a run whose validation metric is this much below the latest "
        "version's (0: at least as good; ties publish unless the model is identical)"
    )
    precision: Literal["float32", "bfloat16"] = _f(
        "float32", "dtype of the item table the SavedModel scores: float32 (exact) or bfloat16 (half the memory)"
    )
    embeddings: bool = _f(
        True, "also write the item embeddings (.npy) and ids (.tsv) to <base_dir>/<name>/<version>.embeddings/"
    )
    projector: bool = _f(False, "also write the TensorBoard projector's vectors.tsv and metadata.tsv there")
    index: Literal["none", "faiss"] = _f(
        "none", "also build an ANN index over the item embeddings there (faiss: pip install -e '.[ann]')"
    )
    ann: AnnConfig = _f(help="the ANN index (export.index: faiss)", factory=AnnConfig)


@dataclass
class Config:
    """A whole run."""

    data: DataConfig = _f(help="the interactions and their splits", factory=DataConfig)
    model: ModelConfig = _f(help="the two towers", factory=ModelConfig)
    negatives: NegativesConfig = _f(help="the negatives of the retrieval loss", factory=NegativesConfig)
    batching: BatchingConfig = _f(help="how examples are batched", factory=BatchingConfig)
    train: TrainConfig = _f(help="the optimisation", factory=TrainConfig)
    eval: EvalConfig = _f(help="the evaluation", factory=EvalConfig)
    export: ExportConfig = _f(help="the SavedModel export", factory=ExportConfig)
    name: str = _f("run", "names runs and exports; set from the config file's name when loaded")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Range rules: key -> (predicate, description). Checked after types.
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "data.test_fraction": (lambda v: 0 < v < 1, "must be in (0, 1)"),
    "data.validation_fraction": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "data.synthetic.num_users": (lambda v: v > 0, "must be > 0"),
    "data.synthetic.num_items": (lambda v: v > 0, "must be > 0"),
    "data.synthetic.num_interactions": (lambda v: v > 0, "must be > 0"),
    "data.synthetic.num_clusters": (lambda v: v > 0, "must be > 0"),
    "data.synthetic.zipf_exponent": (lambda v: v >= 0, "must be >= 0"),
    "data.synthetic.affinity": (lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    "export.ann.target_recall": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "model.embedding_dim": (lambda v: v > 0, "must be > 0"),
    "export.publish_tolerance": (lambda v: v >= 0, "must be >= 0"),
    "model.temperature": (lambda v: v > 0, "must be > 0"),
    "model.query_hidden": (lambda v: all(x > 0 for x in v), "layer sizes must be > 0"),
    "model.candidate_hidden": (lambda v: all(x > 0 for x in v), "layer sizes must be > 0"),
    "model.embedding_l2": (lambda v: v >= 0, "must be >= 0"),
    "model.item_features": (lambda v: len(v) > 0 and len(set(v)) == len(v), "must be a non-empty list without repeats"),
    "model.max_tokens": (lambda v: v > 0, "must be > 0"),
    "model.max_vocabulary": (lambda v: v > 0, "must be > 0"),
    "data.cold_item_fraction": (lambda v: 0 < v < 1, "must be in (0, 1)"),
    "model.user_features": (
        lambda v: len(v) > 0 and len(set(v)) == len(v), "must be a non-empty list without repeats"
    ),
    "model.history.length": (lambda v: v >= 1, "must be >= 1"),
    "model.history.num_blocks": (lambda v: v >= 1, "must be >= 1"),
    "model.history.num_heads": (lambda v: v >= 1, "must be >= 1"),
    "model.history.dropout": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "data.cold_user_fraction": (lambda v: 0 < v < 1, "must be in (0, 1)"),
    "negatives.num_negatives": (lambda v: v > 0, "must be > 0"),
    "negatives.alpha": (lambda v: v >= 0, "must be >= 0"),
    "negatives.num_hard_negatives": (lambda v: v is None or v > 0, "must be > 0"),
    "negatives.full_max_items": (lambda v: v > 0, "must be > 0"),
    "batching.gcbs.start_epoch": (lambda v: v >= 0, "must be >= 0"),
    "batching.gcbs.every": (lambda v: v > 0, "must be > 0"),
    "batching.gcbs.neighbors": (lambda v: v > 0, "must be > 0"),
    "batching.gcbs.quantile": (lambda v: 0 < v < 1, "must be in (0, 1)"),
    "batching.gcbs.links_per_example": (lambda v: v > 0, "must be > 0"),
    "batching.gcbs.holder_tries": (lambda v: v > 0, "must be > 0"),
    "batching.gcbs.ann_nlist": (lambda v: v >= 0, "must be >= 0"),
    "batching.gcbs.ann_nprobe": (lambda v: v > 0, "must be > 0"),
    "batching.gcbs.max_scored_pairs": (lambda v: v > 0, "must be > 0"),
    "batching.gcbs.max_links": (lambda v: v > 0, "must be > 0"),
    "train.batch_size": (lambda v: v > 0, "must be > 0"),
    "train.epochs": (lambda v: v > 0, "must be > 0"),
    "train.learning_rate": (lambda v: v > 0, "must be > 0"),
    "train.weight_decay": (lambda v: v >= 0, "must be >= 0"),
    "train.backup_every_steps": (lambda v: v > 0, "must be > 0"),
    "train.profile_steps": (
        lambda v: len(v) == 2 and 1 <= v[0] <= v[1], "must be [first, last] with 1 <= first <= last"
    ),
    "train.steps_per_execution": (lambda v: v >= 1, "must be >= 1"),
    "train.distribution.logical_cpus": (lambda v: v > 0, "must be > 0"),
    "train.early_stopping.patience": (lambda v: v >= 0, "must be >= 0"),
    "train.early_stopping.max_queries": (lambda v: v > 0, "must be > 0"),
    "eval.ks": (lambda v: len(v) > 0 and all(k > 0 for k in v), "must be a non-empty list of K > 0"),
    "eval.chunk_size": (lambda v: v > 0, "must be > 0"),
    "export.k": (lambda v: v > 0, "must be > 0"),
    "export.ann.hnsw_m": (lambda v: v > 0, "must be > 0"),
    "export.ann.ef_construction": (lambda v: v > 0, "must be > 0"),
    "export.ann.ef_search": (lambda v: v > 0, "must be > 0"),
    "export.ann.nlist": (lambda v: v > 0, "must be > 0"),
    "export.ann.nprobe": (lambda v: v > 0, "must be > 0"),
    "export.ann.pq_m": (lambda v: v > 0, "must be > 0"),
    "export.ann.pq_bits": (lambda v: 1 <= v <= 16, "must be in [1, 16]"),
    "export.ann.recall_users": (lambda v: v > 0, "must be > 0"),
}


# ------------------------------------------------------------ rules across keys


def monitor_names(config: Config) -> list[str]:
    """What ``train.early_stopping.monitor`` may name: the training loss or a
    validation metric the run logs (K from ``eval.ks``)."""
    names = ["loss"] + [f"val_{m}@{k}" for m in ("hit_rate", "recall", "ndcg", "coverage") for k in config.eval.ks]
    return names + ["val_mrr"]


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
    if negatives.logq_variant != "refined":
        return None
    # negatives.logq: null means on for mixed and in_batch (tasks.irns.default_logq).
    on = negatives.logq if negatives.logq is not None else negatives.mode in ("mixed", "in_batch")
    if on and negatives.mode != "full":
        return None
    return (
        f"negatives.logq_variant=refined refines the logQ correction, which is off here "
        f"(negatives.mode={negatives.mode}, negatives.logq={negatives.logq}); set negatives.logq: true "
        "(not with mode full) or negatives.logq_variant: standard"
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
        ("negatives.logq_variant", n.logq_variant, "standard"), ("negatives.num_hard_negatives", n.num_hard_negatives, None),
        ("negatives.mask_same_user", n.mask_same_user, False), ("batching.strategy", config.batching.strategy, "random"),
    ):
        if value != ok:
            return f"train.sequence_training=true does not support {key}={value} (use {ok})"
    return None


ITEM_FEATURES = ("id", "title", "genres")
# Sources whose loader always yields titles and genres; csv and parquet need the item file's columns.
_CONTENT_SOURCES = ("synthetic", "movielens", "tfds")


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
        if data.source not in ("csv", "parquet") or data.csv.items_path is None:
            return (
                f"model.item_features: {name!r} is a data.csv.item_columns column, read from data.csv.items_path "
                f"with data.source csv or parquet (here source {data.source}, items_path {data.csv.items_path})"
            )
    return None


def _item_features_available(config: "Config") -> Optional[str]:
    data = config.data
    if data.source in _CONTENT_SOURCES:
        return None
    needs = {"title": "data.csv.title_column", "genres": "data.csv.genres_column"}
    for name in content_features(config.model):
        key = needs.get(name)
        if key is None:
            continue
        column = getattr(data.csv, key.rsplit(".", 1)[1])
        if data.csv.items_path is None or column is None:
            return (
                f"model.item_features: {name!r} needs item {'titles' if name == 'title' else name}, and data.source {data.source} has them only "
                f"from data.csv.items_path with {key} set (items_path {data.csv.items_path}, {key} {column})"
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


#: What the streamed input (``data.streaming``) can do in bounded memory.
STREAMING_SOURCES = ("csv", "parquet")
STREAMING_SPLITS = ("random", "leave_last_out")


def _streaming_supported(config: Config) -> Optional[str]:
    d = config.data
    if not d.streaming:
        return None
    # Each refusal says why: these need every row (or every pair) in memory at once.
    if d.source not in STREAMING_SOURCES:
        return f"data.streaming: true reads csv or parquet sources, not data.source={d.source!r}"
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
        ("negatives.logq_variant", "negatives.logq", "negatives.mode"),
        "`negatives.logq_variant: refined` needs the logQ correction on (`negatives.logq: true`, or null with "
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
         "negatives.logq_variant", "negatives.num_hard_negatives", "negatives.mask_same_user", "batching.strategy"),
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
]


# ------------------------------------------------------------------ building


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        args = [repr(a) for a in typing.get_args(tp)]
        return " or ".join(args) if len(args) == 2 else "one of " + ", ".join(args)
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _type_name(args[0]) + " or null"
    if origin is list:
        return "a list of " + _type_name(typing.get_args(tp)[0])
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp)
        return f"a mapping of {_type_name(key_tp)} to {_type_name(value_tp)}"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


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


def _build(cls: type, raw: Any, prefix: str, where: str) -> Any:
    if not isinstance(raw, dict):
        section = prefix.rstrip(".") or "top level"
        raise ConfigError(f"{where}{section}: expected a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = list(fields)
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            raise ConfigError(f"{where}{prefix}{key}: unknown key{hint}")
        tp = hints[key]
        full = prefix + key
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value, full + ".", where)
        else:
            if fields[key].metadata.get("column") and isinstance(value, int) and not isinstance(value, bool):
                value = str(value)  # a 0-based column position, for header: false
            kwargs[key] = _coerce(value, tp, full, where)
            rule = _RULES.get(full)
            if rule is not None and kwargs[key] is not None and not rule[0](kwargs[key]):
                raise ConfigError(f"{where}{full}: {rule[1]}, got {value!r}")
    return cls(**kwargs)


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
    config = _build(Config, raw, "", where)
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


def load_config(
    path: Optional[str] = None,
    overrides: typing.Sequence[str] = (),
    sections: Optional[typing.Sequence[str]] = None,
) -> Config:
    """Read ``path`` (YAML), apply ``--set`` style ``overrides`` (only keys of
    ``sections``, when given) and validate."""
    raw: dict = {}
    where = ""
    if path is not None:
        where = f"{path}: "
        raw = _read_yaml(path) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
        raw.setdefault("name", os.path.splitext(os.path.basename(path))[0])
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
    """``(dotted key, type, field)`` of every key of ``cls``, sections included, in file order."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        yield key, hints[f.name], f
        if dataclasses.is_dataclass(hints[f.name]):
            yield from iter_keys(hints[f.name], key + ".")
