"""Sequence-training batches: each example is a window of a user's timeline, every position a next-item target.

Sequence training (``train.sequence_training``) feeds a causal user tower
whole sequences. A user's training timeline ``i_1 .. i_n`` (oldest first,
:class:`~tfrs_irns.data.history.UserHistory`) becomes windows of ``L + 1``
consecutive items: the input is the first ``L`` (``sequence``), the targets
the last ``L`` (``targets``, the item after each input position). The first
window ends at the user's latest item; a longer user gets more windows,
each ending ``L`` items earlier, so every item but the user's first is a
target exactly once. Windows are left-padded with item 0 (the latest item
at position ``L - 1``, as the tower's evaluation windows); a target whose
input position is padding is padding too (0): a prediction from nothing
is not trained. Only known users' training timelines are used: the rows
past ``num_users`` (a ``cold_users`` split's given histories) are not
training data.

The windows go through :class:`~tfrs_irns.batching.pipeline.TrainPipeline`
as examples (their user, their last target as ``item``, the ``[W, L]`` arrays
as extras), so sequence batches get the same seeded per-epoch shuffle,
resume and distribution as example batches.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tfrs_irns.batching.pipeline import TrainPipeline
from tfrs_irns.errors import DataError


class SequenceWindows(NamedTuple):
    """``W`` windows: their ``users [W]``, ``sequence [W, L]`` and ``targets [W, L]`` (int32, 0 = padding)."""

    users: np.ndarray
    sequence: np.ndarray
    targets: np.ndarray

    @property
    def num_targets(self) -> int:
        """Real (non-padding) target positions: the examples an epoch trains."""
        return int((self.targets > 0).sum())


def sequence_windows(offsets: np.ndarray, items: np.ndarray, num_users: int, length: int) -> SequenceWindows:
    """The windows of users ``1 .. num_users - 1`` of a CSR timeline table (see the module doc)."""
    if int(length) < 1:
        raise ValueError(f"length must be >= 1, got {length!r}")
    offsets = np.asarray(offsets, np.int64)
    items = np.asarray(items, np.int64)
    if num_users > offsets.shape[0] - 1:
        raise ValueError(f"num_users={num_users} exceeds the {offsets.shape[0] - 1} rows of the table")
    users = np.arange(1, num_users)
    counts = offsets[users + 1] - offsets[users]
    per_user = np.where(counts >= 2, -(-(counts - 1) // length), 0)  # ceil((n - 1) / L)
    owner = np.repeat(users, per_user)
    rank = np.arange(len(owner)) - np.repeat(np.cumsum(per_user) - per_user, per_user)  # 0 = the latest window
    end = np.repeat(counts, per_user) - rank * length  # one past the window's last item, in the timeline
    place = end[:, None] - length - 1 + np.arange(length + 1)[None, :]  # [W, L + 1]
    inside = place >= 0
    chunk = np.where(inside, items[np.repeat(offsets[users], per_user)[:, None] + np.maximum(place, 0)], 0)
    sequence = chunk[:, :-1]
    targets = np.where(inside[:, :-1], chunk[:, 1:], 0)
    return SequenceWindows(owner.astype(np.int32), sequence.astype(np.int32), targets.astype(np.int32))


def sequence_pipeline(
    windows: SequenceWindows, batch_size: int, seed: int = 0, drop_remainder: bool = False
) -> TrainPipeline:
    """Batches of ``batch_size`` windows: ``{"user": [B], "item": [B], "sequence": [B, L], "targets": [B, L]}``."""
    if len(windows.users) == 0:
        raise DataError("no user has two training interactions: there is no next item to train on")
    return TrainPipeline(
        windows.users,
        windows.targets[:, -1],
        batch_size,
        seed=seed,
        drop_remainder=drop_remainder,
        extras={"sequence": windows.sequence, "targets": windows.targets},
    )
