"""The retrieval loss's negatives, defined once: the ``negatives`` config
section, the logQ default and the full-softmax size limit.

:class:`~tfrs_irns.tasks.irns.IRNSRetrieval` keeps its plain Keras arguments
(they round-trip through ``get_config``); it and the config ask the rules
here. No TensorFlow: the config imports it (``*/params.py`` are layer 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from tfrs_irns._params import NON_NEGATIVE, POSITIVE, Params, param

MODES = ("in_batch", "random", "mixed", "full")
LOGQ_VARIANTS = ("standard", "refined")
FULL_MAX_ITEMS = 200000


def default_logq(mode: str) -> bool:
    """Whether the logQ correction is on when ``logq`` is not given: for the
    modes with in-batch columns (``mixed``, ``in_batch``), whose positives
    follow the popularity of the training data."""
    return mode in ("mixed", "in_batch")


def logq_on(mode: str, logq: Optional[bool]) -> bool:
    """Whether the loss subtracts logQ: ``logq`` (None: :func:`default_logq`),
    never with ``mode="full"`` (the exact softmax has nothing to correct)."""
    return mode != "full" and (default_logq(mode) if logq is None else bool(logq))


def full_softmax_fits(mode: str, num_items: int, full_max_items: int) -> bool:
    """Whether ``mode`` ``full`` may take ``num_items`` items: its logits are ``[batch, num_items]``."""
    return mode != "full" or num_items <= full_max_items


@dataclass(frozen=True)
class NegativesParams(Params):
    """Which items each positive is contrasted with in the retrieval loss (IRNS).

    A two-tower retrieval model learns by ranking each (user, positive item)
    pair's item above other items: the batch's other positives (popular
    items, as the data is), items sampled from the catalogue (the long tail),
    both (IRNS, the default), or every item (the exact softmax, for small
    catalogues). The logQ correction removes the popularity bias of how often
    each item shows up as a negative.

    Raises:
      ValueError: naming the field out of range, when built.
    """

    mode: Literal["in_batch", "random", "mixed", "full"] = param(
        "mixed", "in_batch: the batch's other positives; random: sampled items; mixed: both (IRNS); "
        "full: the exact softmax over every item"
    )
    num_negatives: int = param(
        3000, "M, items sampled once per step and shared by the whole batch (random, mixed)", check=POSITIVE
    )
    sampler: Literal["uniform", "unigram"] = param(
        "uniform", "distribution of the sampled items: uniform over the catalogue, or training counts ** alpha"
    )
    replacement: bool = param(True, "sample with replacement (false: M distinct items per step)")
    alpha: float = param(
        0.75, "exponent on the training counts for the unigram sampler (1: like the data, 0: uniform)",
        check=NON_NEGATIVE,
    )
    logq: Optional[bool] = param(
        None, "subtract log(B·p + M·q), the expected copies of each candidate, from its logit "
        "(null: on for mixed and in_batch)"
    )
    logq_variant: Literal["standard", "refined"] = param(
        "standard", "standard: shift every column, the positive too; refined (Khrylchenko et al. 2025): the "
        "positive, always present, is not shifted and the negatives count B-1 in-batch draws (needs logq on)",
        experimental="logq_variant",
    )
    remove_accidental_hits: bool = param(True, "mask candidate columns that are the row's own positive item")
    mask_same_user: bool = param(
        False, "also mask in-batch columns holding another positive of the same user", experimental="mask_same_user"
    )
    num_hard_negatives: Optional[int] = param(
        None, "keep only the k highest-scoring negatives per row (null: all)", check=POSITIVE
    )
    full_max_items: int = param(
        FULL_MAX_ITEMS, "largest catalogue negatives.mode full accepts (its logits are [batch, items])", check=POSITIVE
    )
    cross_replica: Optional[bool] = param(
        None, "gather every replica's positives as in-batch negatives, so each row meets the global batch "
        "(null: true when train.distribution gives more than one replica)"
    )
    seed: int = param(0, "seed of the per-step negative sampling")

    @property
    def logq_on(self) -> bool:
        """Whether the loss subtracts logQ (see :func:`logq_on`)."""
        return logq_on(self.mode, self.logq)
