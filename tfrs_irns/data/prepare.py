"""From raw string ids to the index arrays every later stage uses.

Vocabularies (user and item) and item counts are learned from the *training*
split only, after validation has been taken out: a retrieval model can only
embed what it trained on, so validation and test ids never seen in training
map to the OOV index 0 (and count as misses when they are the target) —
except on a ``cold_items`` split, whose held-out items join the item
vocabulary with a training count of 0 (a content tower embeds them). Item
titles and genres are aligned to the item vocabulary, row ``i`` describing
item index ``i``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Optional, TypeVar, Union

import numpy as np

from tfrs_irns.data.cold_users import split_cold_users
from tfrs_irns.data.duplicates import pair_groups
from tfrs_irns.data.params import DataParams
from tfrs_irns.data.sources import load_raw
from tfrs_irns.data.splits import split_interactions
from tfrs_irns.data.table import Interactions, ItemTable, RawDataset
from tfrs_irns.data.vocab import Vocabulary, check_ids
from tfrs_irns.errors import DataError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodedSplit:
    """One split as parallel index arrays (0 = OOV)."""

    user: np.ndarray  # int32 user indices
    item: np.ndarray  # int32 item indices
    timestamp: np.ndarray  # int64

    def __len__(self) -> int:
        return int(self.user.shape[0])

    @classmethod
    def empty(cls) -> "EncodedSplit":
        """A split of no rows (a split the data does not have)."""
        return cls(np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int64))


@dataclass(frozen=True)
class Catalogue:
    """Who and what a model knows: the user and item vocabularies and the item side table.

    A two-tower model has one embedding row per vocabulary index, so
    everything after training (export, serving, a reloaded run) needs exactly
    these tables and none of the interactions: row ``i`` of the item side
    arrays describes item index ``i`` (0 is the OOV bucket). The
    ``fingerprint`` names the data the vocabularies were learned from, so a
    later step can tell whether that data changed.
    """

    user_vocab: Vocabulary
    item_vocab: Vocabulary
    item_counts: np.ndarray  # float64 [num_items + 1], training counts, [0] = 0
    item_titles: np.ndarray  # str [num_items + 1], '' for OOV / unknown
    item_genres: Optional[np.ndarray]  # float32 multi-hot [num_items + 1, G] or None
    genre_names: list[str]
    # Further item columns (``data.csv.item_columns``) by name: str [num_items + 1], '' for OOV / unknown.
    item_columns: dict[str, np.ndarray] = field(default_factory=dict)
    # Item indices held out of training and validation (``data.split: cold_items``), sorted; else empty.
    cold_items: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    # What the vocabularies were learned from (see :func:`data_fingerprint`); "" when unknown.
    fingerprint: str = ""

    @property
    def num_users(self) -> int:
        """Known users (the OOV bucket not counted)."""
        return len(self.user_vocab)

    @property
    def num_items(self) -> int:
        """Known items (the OOV bucket not counted)."""
        return len(self.item_vocab)

    @property
    def num_items_without_interactions(self) -> int:
        """Items of the catalogue with no training interaction that are not held-out cold items:
        the item table's items a content tower serves (``catalogue="item_table"``)."""
        return int(np.count_nonzero(np.asarray(self.item_counts)[1:] <= 0)) - len(self.cold_items)


T = TypeVar("T")


class _FromCatalogue(Generic[T]):
    """A read-only ``PreparedData`` attribute that is its catalogue's (``data.item_vocab``), typed."""

    def __init__(self, read: Callable[[Catalogue], T]) -> None:
        self.read = read

    def __get__(self, data: Any, owner: Any = None) -> T:
        return self.read(data.catalogue)


@dataclass(frozen=True)
class PreparedData:
    """A :class:`Catalogue` and the interactions split and encoded against it.

    The splits are index arrays into the catalogue's vocabularies. The
    catalogue's attributes read through (``data.item_vocab`` is
    ``data.catalogue.item_vocab``), so code that needs only the catalogue
    takes a :class:`Catalogue` and is given ``data.catalogue``.
    """

    catalogue: Catalogue
    train: EncodedSplit
    validation: EncodedSplit  # may be empty
    test: EncodedSplit
    description: str
    skipped_rows: int
    duplicate_rows: int = 0
    # data.split=cold_users: the held-out users (index num_users + 1 + i is cold_users.ids[i]; the
    # test and cold_history splits use these indices) and the earlier halves given as their history.
    cold_users: Optional[Vocabulary] = None
    cold_history: EncodedSplit = field(default_factory=EncodedSplit.empty)

    user_vocab = _FromCatalogue(lambda c: c.user_vocab)
    item_vocab = _FromCatalogue(lambda c: c.item_vocab)
    item_counts = _FromCatalogue(lambda c: c.item_counts)
    item_titles = _FromCatalogue(lambda c: c.item_titles)
    item_genres = _FromCatalogue(lambda c: c.item_genres)
    genre_names = _FromCatalogue(lambda c: c.genre_names)
    item_columns = _FromCatalogue(lambda c: c.item_columns)
    cold_items = _FromCatalogue(lambda c: c.cold_items)
    fingerprint = _FromCatalogue(lambda c: c.fingerprint)
    num_users = _FromCatalogue(lambda c: c.num_users)
    num_items = _FromCatalogue(lambda c: c.num_items)
    num_items_without_interactions = _FromCatalogue(lambda c: c.num_items_without_interactions)

    @property
    def num_cold_users(self) -> int:
        """Users held out of training by ``data.split: cold_users`` (0 for the other splits)."""
        return 0 if self.cold_users is None else len(self.cold_users)

    @property
    def num_query_users(self) -> int:
        """User indices evaluation embeds beyond OOV: the known users, then the cold users."""
        return self.num_users + self.num_cold_users


#: What a model is sized from and content is read from: a catalogue, or prepared
#: data (which reads through to its catalogue).
Known = Union[Catalogue, PreparedData]


def _encode(inter: Interactions, users: Vocabulary, items: Vocabulary) -> EncodedSplit:
    return EncodedSplit(
        user=users.lookup(None, inter.coded("user")),
        item=items.lookup(None, inter.coded("item")),
        timestamp=np.asarray(inter.timestamp, np.int64),
    )


def _encode_cold(inter: Interactions, cold: Vocabulary, offset: int, items: Vocabulary) -> EncodedSplit:
    """Cold users' rows, their users indexed ``offset + 1 ...`` after the known users."""
    split = _encode(inter, cold, items)
    return EncodedSplit(split.user + np.int32(offset), split.item, split.timestamp)


def _align(values: np.ndarray, index: np.ndarray, size: int) -> np.ndarray:
    """``out[index[j]] = values[j]`` for known items, first occurrence wins."""
    out = np.full(size, "", dtype=object)
    known = index > 0
    # Reversed so that for duplicated ids the first row is written last.
    out[index[known][::-1]] = values[known][::-1]
    out[0] = ""
    return out.astype(str)


def _item_side(items: ItemTable, vocab: Vocabulary) -> tuple[np.ndarray, Optional[np.ndarray], list[str]]:
    index = vocab.lookup(items.item_id) if len(items) else np.zeros(0, np.int32)
    titles = np.full(vocab.size, "", dtype=str)
    if items.title is not None:
        titles = _align(np.asarray(items.title).astype(str), index, vocab.size)
    if items.genres is None:
        return titles, None, []
    joined = _align(np.asarray(items.genres).astype(str), index, vocab.size)
    split = [[g.strip() for g in s.split("|") if g.strip()] for s in joined.tolist()]
    names = sorted({g for gs in split for g in gs})
    if not names:
        return titles, None, []
    column = {g: j for j, g in enumerate(names)}
    rows = np.repeat(np.arange(len(split)), [len(gs) for gs in split])
    cols = np.array([column[g] for gs in split for g in gs], dtype=np.int64)
    multi_hot = np.zeros((vocab.size, len(names)), np.float32)
    multi_hot[rows, cols] = 1.0
    return titles, multi_hot, names


def data_fingerprint(inter: Interactions, cfg: DataParams) -> str:
    """A digest of the interactions a run splits and of the settings that split them.

    Two runs with the same fingerprint trained and were tested on the same
    rows: their validation metrics compare, and a run's saved vocabularies
    still describe the data. Row order counts (it breaks time ties).
    """
    digest = hashlib.sha256()
    settings = {
        "split": cfg.split,
        "test_fraction": cfg.test_fraction,
        "validation_fraction": cfg.validation_fraction,
        "seed": cfg.seed,
    }
    if cfg.split == "cold_items":  # only then, so every other run keeps its fingerprint
        settings["cold_item_fraction"] = cfg.cold_item_fraction
    if cfg.split == "cold_users":  # only then: other runs keep their fingerprints
        settings["cold_user_fraction"] = cfg.cold_user_fraction
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for side in ("user", "item"):
        # The distinct ids (lengths, then text: no two lists give the same bytes) and each row's
        # code: the same digest whether or not the source handed over codes.
        coded = inter.coded(side)
        used = coded.used_mask()
        values = coded.values[used].astype(str)
        digest.update(np.char.str_len(values).astype(np.int64).tobytes())
        digest.update("".join(values.tolist()).encode("utf-8", "surrogatepass"))
        digest.update((np.cumsum(used) - 1).astype(np.int32)[coded.codes].tobytes())
    digest.update(np.asarray(inter.timestamp, np.int64).tobytes())
    if inter.rating is not None:
        digest.update(np.asarray(inter.rating, np.float32).tobytes())
    return digest.hexdigest()[:32]


#: What the item vocabulary holds: the items with training interactions, or every item of the item table.
CATALOGUES = ("interactions", "item_table")


def prepare_from_raw(
    raw: RawDataset, cfg: DataParams, vocabularies: Optional[tuple[Vocabulary, Vocabulary]] = None,
    catalogue: str = "interactions",
) -> PreparedData:
    """Split ``raw`` by ``cfg`` and encode it.

    The vocabularies come from the training split, unless ``vocabularies``
    ``(users, items)`` are given: a trained model's own, so that its indices
    keep their meaning on data that changed since (new ids map to OOV).
    ``catalogue="item_table"`` (a content item tower, which embeds an item
    from its features, not from its interactions) adds every item of the item
    table to the item vocabulary with a training count of 0: they are ranked,
    evaluated against and exported, so new items are served from their content.
    """
    if catalogue not in CATALOGUES:
        raise ValueError(f"catalogue must be one of {', '.join(CATALOGUES)}, got {catalogue!r}")
    groups = pair_groups(raw.interactions) if cfg.duplicates == "keep_all" else None
    cold_history = None
    if cfg.split == "cold_users":
        train, validation, test, cold_history = split_cold_users(
            raw.interactions, cfg.cold_user_fraction, cfg.validation_fraction, cfg.seed, groups=groups
        )
    else:
        train, validation, test = split_interactions(
            raw.interactions, cfg.split, cfg.test_fraction, cfg.validation_fraction, cfg.seed, groups=groups,
            cold_item_fraction=cfg.cold_item_fraction,
        )
    if len(train) == 0:
        raise DataError(
            f"the training split is empty ({len(raw.interactions)} interactions, "
            f"split={cfg.split}); the dataset is too small for this split",
            arguments=["split"],
        )
    if len(test) == 0:
        raise DataError(
            f"the test split is empty ({len(raw.interactions)} interactions, split={cfg.split}"
            + (", and no user has 2 or more interactions" if cfg.split == "leave_last_out" else "")
            + "); nothing to evaluate on",
            arguments=["split"],
        )
    if vocabularies is None:
        user_vocab = Vocabulary.from_ids(None, train.coded("user"))
        item_vocab = Vocabulary.from_ids(None, train.coded("item"))
        if cfg.split == "cold_items":
            # The cold items join the catalogue (ranked, embedded from content) with a training count of 0.
            item_vocab = Vocabulary(ids=np.union1d(item_vocab.ids, Vocabulary.from_ids(None, test.coded("item")).ids))
        if catalogue == "item_table" and len(raw.items):
            # Items without interactions join with a training count of 0 (sampled as no positive).
            table_ids = np.asarray(raw.items.item_id).astype(str)
            item_vocab = Vocabulary(ids=np.union1d(item_vocab.ids, np.unique(table_ids[np.char.str_len(table_ids) > 0])))
        # Now, not after training: an id the export cannot hold stops the run before it starts.
        check_ids(user_vocab.ids, "user")
        check_ids(item_vocab.ids, "item")
    else:
        user_vocab, item_vocab = vocabularies
    enc_train = _encode(train, user_vocab, item_vocab)
    counts = np.bincount(enc_train.item, minlength=item_vocab.size).astype(np.float64)
    counts[0] = 0.0
    titles, genres, genre_names = _item_side(raw.items, item_vocab)
    columns = {}
    if raw.items.columns:
        index = item_vocab.lookup(raw.items.item_id)
        columns = {name: _align(np.asarray(v).astype(str), index, item_vocab.size) for name, v in raw.items.columns.items()}
    cold = np.zeros(0, np.int32)
    if cfg.split == "cold_items":
        cold = np.setdiff1d(item_vocab.lookup(None, test.coded("item")), [0]).astype(np.int32)
    description = (
        f"{raw.description}; {cfg.split} split: {len(train):,} train / "
        f"{len(validation):,} validation / {len(test):,} test; "
        f"{len(user_vocab):,} users and {int(np.count_nonzero(counts[1:] > 0)):,} items in training"
        + (f", {len(cold):,} cold items held out" if len(cold) else "")
    )
    without = int(np.count_nonzero(counts[1:] <= 0)) - len(cold)
    if without > 0:
        description += f"; {without:,} items of the item table without interactions (served from their content)"
    cold_user_fields = {}
    if cold_history is not None:
        cold_users = Vocabulary.from_ids(np.concatenate([test.user_id, cold_history.user_id]))
        cold_user_fields = dict(
            cold_users=cold_users,
            cold_history=_encode_cold(cold_history, cold_users, len(user_vocab), item_vocab),
        )
        test_split = _encode_cold(test, cold_users, len(user_vocab), item_vocab)
        description += f"; {len(cold_users):,} cold users with {len(cold_history):,} history interactions"
    else:
        test_split = _encode(test, user_vocab, item_vocab)
    known = Catalogue(
        user_vocab=user_vocab,
        item_vocab=item_vocab,
        item_counts=counts,
        item_titles=titles,
        item_genres=genres,
        genre_names=genre_names,
        item_columns=columns,
        cold_items=cold,
        fingerprint=data_fingerprint(raw.interactions, cfg),
    )
    prepared = PreparedData(
        catalogue=known,
        train=enc_train,
        validation=_encode(validation, user_vocab, item_vocab),
        test=test_split,
        description=description,
        skipped_rows=raw.skipped_rows,
        duplicate_rows=raw.duplicate_rows,
        **cold_user_fields,
    )
    for warning in split_warnings(prepared, cfg.split):
        logger.warning("warning: %s", warning)
    return prepared


def seen_csr(user: np.ndarray, item: np.ndarray, num_users: int) -> tuple[np.ndarray, np.ndarray]:
    """Each user's distinct items as CSR: ``(indptr [num_users + 2], items)``, int64.

    ``user``/``item`` are parallel index arrays (0 = OOV, dropped; users past
    ``num_users``, such as cold users, dropped too); user index ``u``'s items,
    sorted, are ``items[indptr[u]:indptr[u + 1]]``. The OOV user 0 has none.
    One sort, O(interactions log interactions).
    """
    user, item = np.asarray(user, np.int64), np.asarray(item, np.int64)
    keep = (user > 0) & (user <= num_users) & (item > 0)
    pairs = np.unique(user[keep] * (int(item.max(initial=0)) + 1) + item[keep])  # sorted by user, then item
    width = int(item.max(initial=0)) + 1
    users, items = pairs // width, pairs % width
    indptr = np.zeros(num_users + 2, np.int64)
    np.cumsum(np.bincount(users, minlength=num_users + 1)[: num_users + 1], out=indptr[1:])
    return indptr, items.astype(np.int64)


def split_warnings(data: PreparedData, split: str) -> list[str]:
    """What makes ``data``'s metrics meaningless, in words (empty when nothing does).

    Such data trains without complaint and reports 0.0000 (no test user or item
    was seen in training) or 1.0000 (one item: every ranking is right), so the
    run is worth a warning before it starts.
    """
    out: list[str] = []
    test = data.test
    trained_items = int(np.count_nonzero(data.item_counts[1:] > 0))
    if data.num_users == 1:
        out.append("only 1 user in the training split: there is nothing to learn about users' differences")
    if trained_items == 1:
        out.append("only 1 item in the training split: every ranking is trivially right (metrics of 1.0)")
    if len(test):
        cold_user = (test.user == 0) | (test.user > data.num_users)
        cold_item = data.item_counts[test.item] <= 0
        # cold_users and cold_items splits hold their test users / items out on purpose.
        unseen = (cold_user if split != "cold_users" else np.zeros_like(cold_user)) | (
            cold_item if split != "cold_items" else np.zeros_like(cold_item)
        )
        if split != "cold_users" and cold_user.all():
            out.append(
                f"none of the {len(test):,} test interactions has a user seen in training (split={split}): "
                "every metric will be 0; split by another rule or use more data"
            )
        elif unseen.all():
            out.append(
                f"all {len(test):,} test interactions have a user or item unseen in training (100% cold test, "
                f"split={split}): every metric will be 0"
            )
    return out


def seen_items(data: PreparedData) -> tuple[np.ndarray, np.ndarray]:
    """Each known user's items in the training and validation splits (what they
    already have when the model serves), as :func:`seen_csr`."""
    user = np.concatenate([data.train.user, data.validation.user])
    item = np.concatenate([data.train.item, data.validation.item])
    return seen_csr(user, item, data.num_users)


def prepare_data(
    cfg: DataParams, vocabularies: Optional[tuple[Vocabulary, Vocabulary]] = None, catalogue: str = "interactions"
) -> PreparedData:
    """Load the source named by ``cfg``, split it and encode it (see :func:`prepare_from_raw`)."""
    return prepare_from_raw(load_raw(cfg), cfg, vocabularies, catalogue)
