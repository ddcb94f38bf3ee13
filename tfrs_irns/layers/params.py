"""The activity user tower's settings, defined once: the ``model.history``
config section. No TensorFlow: the config imports it (``*/params.py`` are
layer 0); :class:`~tfrs_irns.layers.history.HistoryQueryTower` keeps its
plain Keras arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tfrs_irns._params import AT_LEAST_ONE, Params, param


@dataclass(frozen=True)
class HistoryParams(Params):
    """The activity part of the user tower (``model.user_features`` with ``history``).

    A user is what they did: the tower pools the embeddings of the user's
    most recent training items, so a user unseen in training (or one who
    just acted) gets a personal query from their history alone.
    """

    length: int = param(50, "the user's most recent training interactions the tower pools", check=AT_LEAST_ONE)
    shared_tower: bool = param(
        True, "embed the history items with the candidate tower (true) or with a separate item table (false)"
    )
    pooling: Literal["mean", "attention", "gru", "transformer"] = param(
        "mean", "how the history item embeddings become one vector: masked mean, attention with a learned "
        "query, a GRU read oldest to newest, or a causal transformer (SASRec) whose last position is the query"
    )
    num_blocks: int = param(2, "pooling transformer: self-attention + feed-forward blocks", check=AT_LEAST_ONE)
    num_heads: int = param(
        1, "pooling transformer: attention heads (must divide model.embedding_dim)", check=AT_LEAST_ONE
    )
    dropout: float = param(
        0.2, "pooling transformer: dropout of the item embeddings, attention weights and block outputs",
        check=(lambda v: 0 <= v < 1, "must be in [0, 1)"),
    )
