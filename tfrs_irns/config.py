"""Typed run configuration, read from YAML with ``--set`` overrides.

Every key a config file may hold is a field below; the names are a contract
that outside scripts rely on. Loading checks each key's name, type and range
and stops at the first problem with a :class:`~tfrs_irns.errors.ConfigError`
that names the file and the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import yaml

from tfrs_irns.errors import ConfigError


@dataclass
class SyntheticConfig:
    num_users: int = 5000
    num_items: int = 20000
    num_interactions: int = 500000
    num_clusters: int = 20
    zipf_exponent: float = 0.8
    # Share of interactions drawn from the user's own cluster (the planted signal).
    affinity: float = 0.9


@dataclass
class CsvConfig:
    user_column: str = "user_id"
    item_column: str = "item_id"
    timestamp_column: Optional[str] = "timestamp"
    rating_column: Optional[str] = None
    delimiter: str = ","
    header: bool = True
    items_path: Optional[str] = None
    item_id_column: str = "item_id"
    title_column: Optional[str] = "title"
    genres_column: Optional[str] = None


@dataclass
class DataConfig:
    source: Literal["synthetic", "tfds", "movielens", "csv"] = "synthetic"
    name: Optional[str] = None
    path: Optional[str] = None
    split: Literal["random", "temporal", "leave_last_out"] = "random"
    test_fraction: float = 0.2
    validation_fraction: float = 0.1
    seed: int = 42
    min_rating: Optional[float] = None
    skip_bad_rows: bool = False
    tfds_data_dir: Optional[str] = None
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    csv: CsvConfig = field(default_factory=CsvConfig)


@dataclass
class ModelConfig:
    embedding_dim: int = 64
    normalize: bool = False
    temperature: float = 1.0
    query_hidden: list[int] = field(default_factory=list)
    candidate_hidden: list[int] = field(default_factory=list)
    use_genres: bool = False
    # L2 penalty on the embedding rows looked up in each batch.
    embedding_l2: float = 0.1


@dataclass
class NegativesConfig:
    mode: Literal["in_batch", "random", "mixed", "full"] = "mixed"
    num_negatives: int = 3000
    sampler: Literal["uniform", "unigram"] = "uniform"
    replacement: bool = True
    alpha: float = 0.75
    # None: on for `mixed` and `in_batch`, off otherwise.
    logq: Optional[bool] = None
    remove_accidental_hits: bool = True
    mask_same_user: bool = False
    num_hard_negatives: Optional[int] = None
    full_max_items: int = 200000
    cross_replica: bool = False
    seed: int = 0


@dataclass
class GcbsConfig:
    start_epoch: int = 2
    every: int = 1
    # Each user's pool of hardest items (see tfrs_irns/batching/gcbs.py).
    neighbors: int = 600
    threshold: Literal["topk", "quantile"] = "topk"
    quantile: float = 0.99
    seed: int = 0
    # Graph links each example sends, and holders tried per link.
    links_per_example: int = 16
    holder_tries: int = 1
    # Log the paper's diagnostics (similarities, loss-gap estimate) per GCBS epoch.
    diagnostics: bool = True


@dataclass
class BatchingConfig:
    strategy: Literal["random", "gcbs"] = "random"
    drop_remainder: bool = False
    gcbs: GcbsConfig = field(default_factory=GcbsConfig)


@dataclass
class EarlyStoppingConfig:
    enabled: bool = True
    monitor: str = "val_hit_rate@100"
    patience: int = 3
    max_queries: int = 2000


@dataclass
class TrainConfig:
    batch_size: int = 600
    # An upper bound: early stopping on the validation metric ends training sooner.
    epochs: int = 30
    learning_rate: float = 0.1
    optimizer: Literal["adagrad", "adam", "adamw"] = "adagrad"
    weight_decay: float = 0.0
    seed: int = 0
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)


@dataclass
class EvalConfig:
    ks: list[int] = field(default_factory=lambda: [1, 5, 10, 50, 100])
    exclude_seen: bool = False
    chunk_size: int = 1024


@dataclass
class ExportConfig:
    enabled: bool = True
    name: Optional[str] = None
    k: int = 100
    base_dir: str = "saved_models"


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    negatives: NegativesConfig = field(default_factory=NegativesConfig)
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    # Set from the file name when loaded; names runs and exports.
    name: str = "run"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Range rules: key -> (predicate, description). Checked after types.
_RULES: dict[str, tuple[typing.Callable[[Any], bool], str]] = {
    "data.test_fraction": (lambda v: 0 < v < 1, "must be in (0, 1)"),
    "data.validation_fraction": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "data.synthetic.num_users": (lambda v: v > 0, "must be > 0"),
    "data.synthetic.num_items": (lambda v: v > 0, "must be > 0"),
    "data.synthetic.num_interactions": (lambda v: v > 0, "must be > 0"),
    "data.synthetic.num_clusters": (lambda v: v > 0, "must be > 0"),
    "data.synthetic.zipf_exponent": (lambda v: v >= 0, "must be >= 0"),
    "data.synthetic.affinity": (lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    "model.embedding_dim": (lambda v: v > 0, "must be > 0"),
    "model.temperature": (lambda v: v > 0, "must be > 0"),
    "model.query_hidden": (lambda v: all(x > 0 for x in v), "layer sizes must be > 0"),
    "model.candidate_hidden": (lambda v: all(x > 0 for x in v), "layer sizes must be > 0"),
    "model.embedding_l2": (lambda v: v >= 0, "must be >= 0"),
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
    "train.batch_size": (lambda v: v > 0, "must be > 0"),
    "train.epochs": (lambda v: v > 0, "must be > 0"),
    "train.learning_rate": (lambda v: v > 0, "must be > 0"),
    "train.weight_decay": (lambda v: v >= 0, "must be >= 0"),
    "train.early_stopping.patience": (lambda v: v >= 0, "must be >= 0"),
    "train.early_stopping.max_queries": (lambda v: v > 0, "must be > 0"),
    "eval.ks": (lambda v: len(v) > 0 and all(k > 0 for k in v), "must be a non-empty list of K > 0"),
    "eval.chunk_size": (lambda v: v > 0, "must be > 0"),
    "export.k": (lambda v: v > 0, "must be > 0"),
}


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _type_name(args[0]) + " or null"
    if origin is list:
        return "a list of " + _type_name(typing.get_args(tp)[0])
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


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
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
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
    names = [f.name for f in dataclasses.fields(cls)]
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


def parse_overrides(pairs: typing.Sequence[str]) -> dict:
    """Turn ``["train.epochs=5", "eval.ks=[1,10]"]`` into a nested dict.

    Values are parsed as YAML, so ``true``, ``null``, numbers and lists work.
    """
    nested: dict = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set {pair}: expected section.key=value")
        key, _, text = pair.partition("=")
        key = key.strip()
        if not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set {pair}: expected section.key=value")
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
        node[parts[-1]] = value
    return nested


def from_dict(raw: dict, where: str = "") -> Config:
    """Build a validated :class:`Config`; ``where`` prefixes error messages."""
    return _build(Config, raw, "", where)


def load_config(path: Optional[str] = None, overrides: typing.Sequence[str] = ()) -> Config:
    """Read ``path`` (YAML), apply ``--set`` style ``overrides`` and validate."""
    raw: dict = {}
    where = ""
    if path is not None:
        where = f"{path}: "
        if not os.path.isfile(path):
            raise ConfigError(f"{path}: config file not found")
        try:
            with open(path, encoding="utf-8") as fh:
                raw = yaml.safe_load(fh) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{path}:{line} invalid YAML: {getattr(exc, 'problem', exc)}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
        raw.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    merged = _merge(raw, parse_overrides(overrides))
    if overrides and path is not None:
        where = f"{path} (with --set): "
    return from_dict(merged, where)


def save_config(config: Config, path: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(config.to_dict(), fh, sort_keys=False)


def resolve_logq(neg: NegativesConfig) -> bool:
    """``negatives.logq: null`` means on for the modes with in-batch columns."""
    if neg.logq is not None:
        return neg.logq
    return neg.mode in ("mixed", "in_batch")
