"""GCBS's settings, defined once: the ``batching.gcbs`` config section and the
argument of :func:`~tfrs_irns.batching.gcbs.gcbs_order`,
:func:`~tfrs_irns.batching.gcbs.hard_negative_graph` and
:class:`~tfrs_irns.batching.gcbs_callback.GCBSCallback`.

No TensorFlow, no numpy: the config imports it (``*/params.py`` are layer 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tfrs_irns._params import FRACTION, NON_NEGATIVE, POSITIVE, Params, param


@dataclass(frozen=True)
class GcbsParams(Params):
    """GCBS (Tail Batch Sampling): batch orders that put hard negatives together.

    In-batch negatives are only as hard as the batch; GCBS orders the epoch so
    that examples whose items a user could confuse share a batch (see
    :mod:`tfrs_irns.batching.gcbs`). Epochs count from 1: the first epochs
    train on random batches, since an untrained model's "hard" negatives are
    noise. The graph options marked experimental changed nothing beyond noise
    in the package's own measurements (``docs/gcbs.md``); the config sets them
    under ``experimental``.

    Raises:
      ValueError: naming the field out of range, when built.
    """

    start_epoch: int = param(
        2, "first epoch (counted from 1) GCBS may order; the epochs before it use random batches", check=NON_NEGATIVE
    )
    every: int = param(
        1, "GCBS orders epoch e when e >= start_epoch and e - start_epoch is a multiple of every", check=POSITIVE
    )
    neighbors: int = param(600, "each user's pool of hardest items", check=POSITIVE)
    threshold: Literal["topk", "quantile"] = param(
        "topk", "topk: keep each user's whole pool; quantile: only items scoring above the quantile of "
        "example-pair scores", experimental="gcbs_threshold"
    )
    quantile: float = param(
        0.999, "score quantile a link must exceed with threshold quantile (the paper's 0.999)", check=FRACTION,
        experimental="gcbs_quantile",
    )
    similarity: Literal["dot", "cosine"] = param(
        "dot", "dot: the model's scores; cosine: both embeddings normalised first, as in the paper",
        experimental="gcbs_similarity",
    )
    graph: Literal["user_item", "item_item"] = param(
        "user_item", "user_item: link an example to holders of its user's hard items; item_item: link examples "
        "whose positive items are close", experimental="gcbs_graph"
    )
    exclude_above_positive: bool = param(
        False, "false-negative guard: never link a user to items it scores above its own positive",
        experimental="gcbs_exclude_above_positive",
    )
    seed: int = param(0, "seed of the GCBS order (with the epoch number)")
    # Links each example sends (it receives about twice as many at most): a few
    # already order the examples well, and the graph's cost grows with them.
    links_per_example: int = param(16, "hard-negative graph links each example sends", check=POSITIVE)
    # 1 (a random holder) measured as good as 8 on ml-latest-small at a third of
    # the cost (benchmarks/gcbs.py).
    holder_tries: int = param(
        1, "random holders of a linked item tried per link; the hardest back is kept", check=POSITIVE
    )
    diagnostics: bool = param(
        False, "log the paper's diagnostics (similarities, loss-gap estimate) per GCBS epoch; off by default: "
        "they cost more than the order itself"
    )
    graph_builder: Literal["auto", "exact", "ann"] = param(
        "auto", "how each user's hard items are found: exact scores every user x item pair; ann searches a FAISS "
        "IVF index over the item embeddings (pip install -e '.[ann]'); auto: exact up to 2^28 user x item pairs, "
        "ann above"
    )
    # 0: 4 x sqrt(items) cells (FAISS's usual range is 4-16 x sqrt(N)), at most
    # items / 39 (FAISS wants >= 39 training points per cell).
    ann_nlist: int = param(0, "IVF cells of the ann builder (0: 4 x sqrt(items), at most items / 39)", check=NON_NEGATIVE)
    ann_nprobe: int = param(
        64, "IVF cells scanned per user by the ann builder (lowered to fit max_scored_pairs)", check=POSITIVE
    )
    # ~2 min of IVF scan on the 2-core CPU here; 5M examples x 500k items fit it with
    # nprobe 64 (pool recall 0.999; nprobe 32 found 0.79: benchmarks/gcbs.py --scale).
    max_scored_pairs: int = param(
        4_000_000_000, "time bound of an ann recompute: users x (nlist + nprobe x items / nlist) scored pairs at "
        "most; nprobe drops, then only a seeded sample of users gets hard items", check=POSITIVE
    )
    # Links of one graph: ~60 bytes each through the graph and the reordering, so
    # ~1 GB; 1M examples keep the default 16 links per example.
    max_links: int = param(
        16_777_216, "memory bound of a recompute (~60 bytes per link): links per example drop to "
        "max_links / examples (at least 1)", check=POSITIVE
    )

    def is_due(self, epoch: int) -> bool:
        """Whether GCBS orders 1-based ``epoch`` (as Keras prints it)."""
        return epoch >= self.start_epoch and (epoch - self.start_epoch) % self.every == 0
