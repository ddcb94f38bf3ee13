"""Versioned SavedModels that stock TF Serving can serve.

Serving a two-tower model is a lookup and a dot product: the user's query
embedding against every candidate embedding, then the k best. Because the
query tower sees only the user index, every user's embedding can be computed
once at export time, so the exported graph needs no Keras, no TFRS and no
custom op (ScaNN's would not load in stock TF Serving): a string→index hash
table, a gather, a ``matmul`` and ``tf.math.top_k``.

Layout (TF Serving's: integer version folders under the model name)::

    <base_dir>/<name>/<version>/saved_model.pb
                                variables/            embeddings
                                assets/users.txt      user id of index 1, 2, ... (one per line)
                                assets/items.tsv      item id <TAB> title of index 1, 2, ...
                                assets.extra/metadata.json

The two asset files are the lookup tables themselves (``tf.lookup``
initialises from them at load), so the item table always travels with the
model. Versions are published atomically by :mod:`tfrs_irns.export.versions`:
a crash never leaves a half-written version, and an existing version is
never overwritten.

Signatures (named inputs and outputs):

* ``serving_default``: ``user_id`` string[B] → ``item_ids`` string[B, k], ``scores`` float32[B, k]
* ``query_embedding``: ``user_id`` string[B] → ``embedding`` float32[B, d]
* ``candidate_embedding``: ``item_id`` string[B] → ``embedding`` float32[B, d]
* ``recommend_k_excluding``: ``user_id`` string[B], ``k`` int32[], ``exclude_item_ids``
  string[B, n] ('' pads) → ``item_ids`` string[B, k], ``scores`` float32[B, k]
* ``recommend_k``: ``user_id`` string[B], ``k`` int32[], ``include_seen`` bool[] →
  ``item_ids`` string[B, k], ``scores`` float32[B, k]

**Seen items.** A user is rarely served what they already have: when the export
is given each user's training items (``seen``), ``serving_default``,
``recommend_k_excluding`` and ``recommend_k`` (unless ``include_seen``) leave
them out. They are *stored in the SavedModel* as a CSR table (two int64
variables: ``seen_indptr`` [U + 2], the row offsets by user index, and
``seen_rows`` [nnz + 1], 0-based item rows, a -1 sentinel last), so a client
sends only the user id, and the table always matches the model's vocabulary.
It costs 8 bytes per training interaction plus 8 per user.
* ``candidate_embedding_from_features`` (models with content item features only,
  :mod:`tfrs_irns.export.content`): ``title``, ``genres``, ... string[B] → ``embedding`` float32[B, d]
* ``recommend_from_history`` (models with a ``history`` user tower only): ``item_ids``
  string[B, L] ('' pads, oldest first) → ``item_ids`` string[B, k], ``scores`` float32[B, k],
  the history items excluded: a new user served from what they just touched

An id the model never saw (a new user, an unknown item) maps to the
out-of-vocabulary index 0 and gets the OOV embedding: a valid answer, never an
error.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import tempfile
from typing import Any, NamedTuple, Optional, Union

import numpy as np
import tensorflow as tf

from tfrs_irns._version import __version__
from tfrs_irns.data.vocab import check_ids
from tfrs_irns.errors import UserError
from tfrs_irns.export.content import SIGNATURE as CONTENT_SIGNATURE
from tfrs_irns.export.content import ItemFeatureEncoder, has_content
from tfrs_irns.export.versions import check_name, write_version
from tfrs_irns.layers.contract import HistoryTowerProtocol
from tfrs_irns.topk import block_top_k, mask_columns, merge_top_k

USERS_FILE = "users.txt"
ITEMS_FILE = "items.tsv"
METADATA_FILE = os.path.join("assets.extra", "metadata.json")
SIGNATURES = ("serving_default", "query_embedding", "candidate_embedding", "recommend_k_excluding", "recommend_k")
#: The extra signature of models whose user tower pools a history.
HISTORY_SIGNATURE = "recommend_from_history"
# Items are scored in blocks of this many rows: a [B, chunk] score block stays
# small (32 MB at batch 256), and the running top-k merge after each block
# means a [B, N] score matrix never exists. A while-loop over the blocks keeps
# the graph the same size whatever the catalogue.
DEFAULT_CHUNK_SIZE = 1 << 15
#: Item table precisions: exact float32, or bfloat16 (half the memory; scores rounded).
PRECISIONS = ("float32", "bfloat16")


class HistoryServing(NamedTuple):
    """What ``recommend_from_history`` needs of a history user tower
    (:class:`~tfrs_irns.layers.contract.HistoryTowerProtocol`, :func:`history_serving`).

    Attributes:
      head: the Keras layer that pools history embeddings ``[B, L, d]`` (masked)
        into queries (:class:`~tfrs_irns.layers.history.HistoryHead`).
      item_embeddings: ``[N + 1, d]``, the embedding of each item index as a history entry.
      length: the window length ``L``.
    """

    head: Any
    item_embeddings: np.ndarray
    length: int


def history_serving(tower: Any) -> Optional[HistoryServing]:
    """:class:`HistoryServing` of a history user ``tower``; None for any other tower."""
    if not isinstance(tower, HistoryTowerProtocol):
        return None
    return HistoryServing(tower.head, tower.item_history_embeddings(), int(tower.length))


class RetrievalModule(tf.Module):
    """Brute-force top-k retrieval over precomputed two-tower embeddings.

    The scan is exact: items are scored block by block (``chunk_size``
    rows of the item table per ``matmul``), each block's best ``k`` (by
    ``tf.math.top_k``) merged into a running best ``k``. Ties go to the lower
    item index, as in ``top_k`` itself, so the answer equals a stable sort of
    the full score row (``np.argsort(-scores, kind="stable")[:k]``) whatever
    the block size. With ``precision="bfloat16"`` the item table and the
    scoring are bfloat16 (core ops): half the memory, approximate scores.

    Args:
      user_embeddings: ``[U + 1, d]`` query embeddings, row 0 = OOV user.
      item_embeddings: ``[N + 1, d]`` candidate embeddings, row 0 = OOV item.
      users_file: one user id per line; line i is user index i + 1.
      items_file: ``item_id<TAB>title`` per line; line i is item index i + 1.
      k: how many items ``serving_default`` returns (clipped to N).
      chunk_size: items scored per ``matmul`` block.
      precision: ``"float32"`` or ``"bfloat16"``, the item table's dtype.
      history: for a ``history`` user tower, a :class:`HistoryServing` (or the
        tuple of its fields): adds ``recommend_from_history``.
      seen: ``(indptr, items)``, each user's training items as CSR (see
        :func:`~tfrs_irns.data.prepare.seen_csr`): excluded from ``serving_default`` and the ``k``
        signatures. None: nothing is excluded.
    """

    def __init__(
        self,
        user_embeddings: np.ndarray,
        item_embeddings: np.ndarray,
        users_file: str,
        items_file: str,
        k: int,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        precision: str = "float32",
        item_encoder: Optional[tf.Module] = None,
        history: Optional[HistoryServing] = None,
        seen: Optional[tuple[np.ndarray, np.ndarray]] = None,
    ) -> None:
        super().__init__(name="retrieval")
        # Raw item features → embedding (a content tower's ItemFeatureEncoder), or None.
        self.item_encoder = item_encoder
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if int(chunk_size) < 1:
            raise ValueError(f"chunk_size must be > 0, got {chunk_size}")
        self.num_users = int(user_embeddings.shape[0]) - 1
        self.num_items = int(item_embeddings.shape[0]) - 1
        self.k = min(int(k), self.num_items)
        self.precision = precision
        self.dtype = tf.bfloat16 if precision == "bfloat16" else tf.float32
        self.chunk_size = min(int(chunk_size), self.num_items)
        self.users_file = tf.saved_model.Asset(users_file)
        self.items_file = tf.saved_model.Asset(items_file)
        line, whole = tf.lookup.TextFileIndex.LINE_NUMBER, tf.lookup.TextFileIndex.WHOLE_LINE
        # value_index_offset=1: line 0 is index 1; unknown ids fall to the default, OOV 0.
        self.user_index_table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                self.users_file, tf.string, whole, tf.int64, line, vocab_size=self.num_users, value_index_offset=1
            ),
            default_value=0,
        )
        self.item_index_table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                self.items_file, tf.string, 0, tf.int64, line, vocab_size=self.num_items, value_index_offset=1
            ),
            default_value=0,
        )
        # Row r of the score matrix is item index r + 1, i.e. line r of the file.
        self.item_id_table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(self.items_file, tf.int64, line, tf.string, 0, vocab_size=self.num_items),
            default_value="",
        )
        # Variables, not constants: they live in variables/ instead of bloating the graph.
        self.user_embeddings = tf.Variable(user_embeddings, trainable=False, name="user_embeddings")
        # The item table as whole blocks [n, chunk, d] plus the remainder [r, d]:
        # a block is then a leading-dimension slice (no copy), and no padding rows
        # need masking.
        table = np.asarray(item_embeddings[1:], np.float32)
        self.num_blocks = self.num_items // self.chunk_size
        whole_rows = self.num_blocks * self.chunk_size
        blocks = table[:whole_rows].reshape(self.num_blocks, self.chunk_size, table.shape[1])
        self.item_blocks = tf.Variable(tf.cast(blocks, self.dtype), trainable=False, name="item_blocks")
        self.item_rest = tf.Variable(tf.cast(table[whole_rows:], self.dtype), trainable=False, name="item_rest")
        self.oov_item_embedding = tf.Variable(item_embeddings[0], trainable=False, name="oov_item_embedding")
        self.has_seen = seen is not None
        indptr, items = seen if seen is not None else (np.zeros(self.num_users + 2, np.int64), np.zeros(0, np.int64))
        indptr, items = np.asarray(indptr, np.int64), np.asarray(items, np.int64)
        if indptr.shape != (self.num_users + 2,) or indptr[0] != 0 or np.any(np.diff(indptr) < 0) or indptr[-1] != len(items):
            raise ValueError(f"seen: indptr must be non-decreasing offsets [num_users + 2 = {self.num_users + 2}] "
                             f"from 0 to len(items) = {len(items)}")
        if len(items) and (items.min() < 1 or items.max() > self.num_items):
            raise ValueError(f"seen: item indices must be in [1, {self.num_items}]")
        # int64 (no int32 variables: they have no GPU kernel); the -1 sentinel at nnz is what padding gathers.
        self.seen_indptr = tf.Variable(indptr, trainable=False, name="seen_indptr")
        self.seen_rows = tf.Variable(np.append(items - 1, -1), trainable=False, name="seen_rows")
        self.signature_names = SIGNATURES
        if history is not None:
            history = HistoryServing(*history)
            self.history_head, self.history_length = history.head, int(history.length)
            self.history_items = tf.Variable(
                np.asarray(history.item_embeddings, np.float32), trainable=False, name="history_items"
            )
            # An attribute, not a method: a model without a history tower has no such function to save.
            self.recommend_from_history = tf.function(
                self._from_history, input_signature=[tf.TensorSpec([None, None], tf.string, name="item_ids")]
            )
            self.signature_names = SIGNATURES + (HISTORY_SIGNATURE,)

    @staticmethod
    def _check_ids(ids: tf.Tensor) -> tf.Tensor:
        """``ids`` as the vector [batch] the signature declares, checked when it runs.

        A signature's declared shape is not enforced at call time (TF Serving,
        ``saved_model_cli``, ``loaded.signatures[...]``), and a 2-D or scalar id
        tensor used to fail deep in the scan as an opaque MatMul shape error. An
        ``EnsureShape`` op fails first, naming the input and its shape: "Shape of
        tensor user_id [1,2] is not compatible with expected shape [?]" (a rank
        assertion would be constant-folded away by the declared shape).
        """
        return tf.ensure_shape(ids, [None])

    def _query(self, user_id: tf.Tensor) -> tf.Tensor:
        return tf.gather(self.user_embeddings, self.user_index_table.lookup(user_id))

    def _seen(self, user_id: tf.Tensor) -> tf.Tensor:
        """int32 [B, n]: the 0-based item rows of each user's training items, -1 padded."""
        user = self.user_index_table.lookup(user_id)
        start = tf.gather(self.seen_indptr, user)
        length = tf.gather(self.seen_indptr, user + 1) - start
        width = tf.reduce_max(tf.concat([length, tf.zeros([1], tf.int64)], axis=0))  # 0 for an empty batch
        place = tf.range(width)[None, :]
        # No ragged ops: a padded gather; places past a user's length read the -1 sentinel.
        at = tf.where(place < length[:, None], start[:, None] + place, tf.shape(self.seen_rows, out_type=tf.int64)[0] - 1)
        return tf.cast(tf.gather(self.seen_rows, at), tf.int32)

    def _block_best(
        self, query: tf.Tensor, block: tf.Tensor, start: tf.Tensor, k: Union[int, tf.Tensor],
        exclude: Optional[tf.Tensor], size: int,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """The best ``min(k, size)`` scores (float32) and item rows of one block
        (the package's ranking primitive, :func:`tfrs_irns.topk.block_top_k`)."""
        return block_top_k(query, block, start, k, exclude, size)

    def _top_k(
        self, query: tf.Tensor, k: Union[int, tf.Tensor], exclude: Optional[tf.Tensor] = None
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Scores and item ids of the best ``k`` items per row; ``exclude`` holds
        0-based item rows to skip (-1 = nothing)."""
        query = tf.cast(query, self.dtype)
        batch = tf.shape(query)[0]
        size = self.chunk_size
        blocks = tf.convert_to_tensor(self.item_blocks)  # read once, sliced per block

        def merge(i, best, rows, v, r):
            # The running best first: on equal scores top_k keeps the lower index.
            return merge_top_k(best, rows, v, r, k)

        def body(i, best, rows):
            v, r = self._block_best(query, blocks[i], i * size, k, exclude, size)
            return (i + 1, *merge(i, best, rows, v, r))

        # Start from k "nothing" entries (-inf, row -1): every state is [B, k]
        # (a static k stays in the signature's output shape).
        width = tf.TensorShape([None, k if isinstance(k, int) else None])
        best = tf.fill(tf.stack([batch, k]), float("-inf"))
        rows = tf.fill(tf.stack([batch, k]), -1)
        _, best, rows = tf.while_loop(
            lambda i, *_: i < self.num_blocks,
            body,
            (tf.constant(0), best, rows),
            shape_invariants=(tf.TensorShape([]), width, width),
            parallel_iterations=1,  # one [B, chunk] block alive at a time
        )
        rest = self.num_items - self.num_blocks * size
        if rest:
            v, r = self._block_best(
                query, tf.convert_to_tensor(self.item_rest), self.num_blocks * size, k, exclude, rest
            )
            best, rows = merge(None, best, rows, v, r)
        ids = self.item_id_table.lookup(tf.cast(rows, tf.int64))
        # Fewer than k items left after exclusion: pad with '' (score -inf).
        ids = tf.where(tf.equal(best, float("-inf")), tf.constant("", tf.string), ids)
        return best, ids

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id")])
    def serving_default(self, user_id: tf.Tensor) -> dict[str, tf.Tensor]:
        user_id = self._check_ids(user_id)
        scores, ids = self._top_k(self._query(user_id), self.k, self._seen(user_id) if self.has_seen else None)
        return {"item_ids": ids, "scores": scores}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="user_id"),
            tf.TensorSpec([], tf.int32, name="k"),
            tf.TensorSpec([], tf.bool, name="include_seen"),
        ]
    )
    def recommend_k(self, user_id: tf.Tensor, k: tf.Tensor, include_seen: tf.Tensor) -> dict[str, tf.Tensor]:
        user_id = self._check_ids(user_id)
        with tf.control_dependencies([tf.debugging.assert_non_negative(k, message="recommend_k: k must be >= 0")]):
            k = tf.minimum(k, self.num_items)
        exclude = tf.cond(
            include_seen, lambda: tf.fill(tf.stack([tf.shape(user_id)[0], 0]), -1), lambda: self._seen(user_id)
        )
        scores, ids = self._top_k(self._query(user_id), k, exclude)
        return {"item_ids": ids, "scores": scores}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id")])
    def seen_item_ids(self, user_id: tf.Tensor) -> tf.Tensor:
        """Each user's stored training items, string [B, n] ('' pads); for tools, not a signature."""
        return self.item_id_table.lookup(tf.cast(self._seen(user_id), tf.int64))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id")])
    def query_embedding(self, user_id: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"embedding": self._query(self._check_ids(user_id))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="item_id")])
    def candidate_embedding(self, item_id: tf.Tensor) -> dict[str, tf.Tensor]:
        index = self.item_index_table.lookup(self._check_ids(item_id))
        row = tf.maximum(index - 1, 0)
        whole = self.num_blocks * self.chunk_size
        # Both gathers are clipped into range; tf.where picks the right one.
        in_blocks = tf.gather_nd(
            self.item_blocks,
            tf.stack([tf.minimum(row // self.chunk_size, self.num_blocks - 1), row % self.chunk_size], axis=1),
        )
        known = in_blocks
        if self.num_items > whole:
            in_rest = tf.gather(self.item_rest, tf.clip_by_value(row - whole, 0, self.num_items - whole - 1))
            known = tf.where((row < whole)[:, None], in_blocks, in_rest)
        known = tf.cast(known, tf.float32)
        return {"embedding": tf.where((index > 0)[:, None], known, self.oov_item_embedding[None, :])}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="user_id"),
            tf.TensorSpec([], tf.int32, name="k"),
            tf.TensorSpec([None, None], tf.string, name="exclude_item_ids"),
        ]
    )
    def recommend_k_excluding(self, user_id: tf.Tensor, k: tf.Tensor, exclude_item_ids: tf.Tensor) -> dict[str, tf.Tensor]:
        user_id = self._check_ids(user_id)
        exclude_item_ids = tf.ensure_shape(exclude_item_ids, [None, None])
        checks = [
            tf.debugging.assert_non_negative(k, message="recommend_k_excluding: k must be >= 0"),
            tf.debugging.assert_equal(
                tf.shape(exclude_item_ids)[0],
                tf.shape(user_id)[0],
                message="recommend_k_excluding: exclude_item_ids needs one row per user_id",
            ),
        ]
        with tf.control_dependencies(checks):  # before any top_k sees k
            k = tf.minimum(k, self.num_items)
        # '' and unknown ids look up to index 0, row -1: matches no item.
        exclude = tf.cast(self.item_index_table.lookup(exclude_item_ids), tf.int32) - 1
        if self.has_seen:  # the caller's exclusions and the user's training items
            exclude = tf.concat([exclude, self._seen(user_id)], axis=1)
        scores, ids = self._top_k(self._query(user_id), k, exclude)
        return {"item_ids": ids, "scores": scores}

    def _from_history(self, item_ids: tf.Tensor) -> dict[str, tf.Tensor]:
        index = tf.cast(self.item_index_table.lookup(item_ids), tf.int32)  # '' and unknown → 0
        # Known items to the right in their order, then the last L: the tower's window
        # (oldest first, left-padded), whatever padding the caller used.
        width = tf.shape(index)[1]
        place = tf.range(width)[None, :]
        order = tf.argsort(tf.where(index > 0, place + width, place), axis=1, stable=True)
        window = tf.concat([tf.zeros(tf.stack([tf.shape(index)[0], self.history_length]), tf.int32),
                            tf.gather(index, order, batch_dims=1)], axis=1)[:, -self.history_length:]
        window = tf.reshape(window, [-1, self.history_length])  # a static L (the GRU unrolls over it)
        embeddings = tf.gather(self.history_items, window)
        query = tf.cast(self.history_head(embeddings, window > 0, training=False), tf.float32)
        scores, ids = self._top_k(query, self.k, index - 1)  # every given item excluded
        return {"item_ids": ids, "scores": scores}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id")])
    def user_index(self, user_id: tf.Tensor) -> tf.Tensor:
        """Vocabulary index of each user id (0 = unknown); for tools, not a signature."""
        return self.user_index_table.lookup(user_id)

    def signatures(self) -> dict[str, Any]:
        out = {name: getattr(self, name).get_concrete_function() for name in self.signature_names}
        if self.item_encoder is not None:
            out[CONTENT_SIGNATURE] = self.item_encoder.signature()
        return out


def _mask(scores: tf.Tensor, rows: tf.Tensor, size: int) -> tf.Tensor:
    """Set ``scores[b, rows[b, j]]`` to -inf where ``0 <= rows[b, j] < size``."""
    return mask_columns(scores, rows, size)


# --------------------------------------------------------------------------- files


def _write_lines(path: str, lines: list[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("\n".join(lines))
        fh.write("\n")


_LINE_BREAKS = str.maketrans({"\t": " ", "\n": " ", "\r": " "})


def _clean_title(title: Any) -> str:
    """A title as one TSV field: tabs and line breaks become spaces."""
    return "" if title is None else str(title).translate(_LINE_BREAKS)


def _versions_info() -> dict[str, Optional[str]]:
    def dist(name: str) -> Optional[str]:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "tensorflow": tf.__version__,
        "tensorflow_recommenders": dist("tensorflow-recommenders"),
        "tf_keras": dist("tf-keras"),
        "tfrs_irns": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


# --------------------------------------------------------------------------- API


def export_embeddings(
    user_embeddings: np.ndarray,
    item_embeddings: np.ndarray,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    item_titles: Optional[np.ndarray] = None,
    base_dir: str = "saved_models",
    name: str = "model",
    k: int = 100,
    metadata: Optional[dict[str, Any]] = None,
    chunk_size: Optional[int] = None,
    precision: str = "float32",
    item_encoder: Optional[tf.Module] = None,
    history: Optional[HistoryServing] = None,
    seen: Optional[tuple[np.ndarray, np.ndarray]] = None,
    popular: Optional[list[str]] = None,
    catalogue: Optional[dict[str, int]] = None,
) -> str:
    """Export precomputed embeddings; returns the new version directory.

    ``user_embeddings`` is ``[len(user_ids) + 1, d]`` and ``item_embeddings``
    ``[len(item_ids) + 1, d]``, row 0 being the OOV row; ``item_titles`` (if
    given) has one entry per item index, entry 0 (OOV) ignored.
    ``chunk_size`` (default :data:`DEFAULT_CHUNK_SIZE`) is how many items one
    scoring block holds; ``precision`` (:data:`PRECISIONS`) the item table's dtype;
    ``item_encoder`` (an :class:`~tfrs_irns.export.content.ItemFeatureEncoder`)
    adds the ``candidate_embedding_from_features`` signature.
    ``history`` and ``seen`` (each user's training items, :func:`~tfrs_irns.data.prepare.seen_csr`;
    excluded by default when given) as :class:`RetrievalModule`'s.
    ``popular``: the most popular item ids, most first, kept in the metadata
    (``popular_items``): the answer for a history of only unknown items.
    ``catalogue``: counts of the served items (``items``, ``with_interactions``,
    ``without_interactions``, ...), kept in the metadata.
    """
    check_name(name)
    if int(k) < 1:
        raise ValueError(f"k must be > 0, got {k}")
    users = check_ids(np.asarray(user_ids), "user")
    items = check_ids(np.asarray(item_ids), "item")
    user_embeddings = np.asarray(user_embeddings, np.float32)
    item_embeddings = np.asarray(item_embeddings, np.float32)
    if not users or not items:
        raise UserError(f"cannot export {name!r}: the model knows {len(users)} users and {len(items)} items")
    for kind, emb, ids in (("user", user_embeddings, users), ("item", item_embeddings, items)):
        if emb.ndim != 2 or emb.shape[0] != len(ids) + 1:
            raise ValueError(f"{kind} embeddings have shape {emb.shape}, expected [{len(ids) + 1}, d]")
    if user_embeddings.shape[1] != item_embeddings.shape[1]:
        raise ValueError(f"embedding dims differ: users {user_embeddings.shape[1]}, items {item_embeddings.shape[1]}")
    titles = [""] * len(items)
    if item_titles is not None:
        if len(item_titles) != len(items) + 1:
            raise ValueError(f"item_titles has {len(item_titles)} entries, expected {len(items) + 1} (OOV first)")
        titles = [_clean_title(t) for t in list(item_titles)[1:]]

    def write(folder: str) -> None:
        # Beside the version's temporary folder, named after it: a killed export's leftovers are removed
        # by the next export (versions.remove_stale_tmp), never left in the system temp folder.
        with tempfile.TemporaryDirectory(prefix=os.path.basename(folder) + "-sources-", dir=os.path.dirname(folder)) as sources:
            users_file = os.path.join(sources, USERS_FILE)
            items_file = os.path.join(sources, ITEMS_FILE)
            _write_lines(users_file, users)
            _write_lines(items_file, [f"{i}\t{t}" for i, t in zip(items, titles)])
            module = RetrievalModule(
                user_embeddings, item_embeddings, users_file, items_file, int(k),
                chunk_size or DEFAULT_CHUNK_SIZE, precision, item_encoder, history, seen,
            )
            signatures = module.signatures()
            tf.saved_model.save(module, folder, signatures=signatures)
        info = dict(metadata or {})
        info.update(
            name=name,
            created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            k=module.k,
            k_requested=int(k),
            num_users=module.num_users,
            num_items=module.num_items,
            embedding_dim=int(item_embeddings.shape[1]),
            precision=module.precision,
            chunk_size=module.chunk_size,
            score="dot product of the query and candidate embeddings (higher is better)",
            signatures=list(signatures),
            seen_items=_seen_info(seen),
            popular_items=[str(i) for i in (popular or [])],
            catalogue=dict(catalogue or {}),
            versions=_versions_info(),
        )
        os.makedirs(os.path.join(folder, "assets.extra"), exist_ok=True)
        with open(os.path.join(folder, METADATA_FILE), "w", encoding="utf-8") as fh:
            json.dump(info, fh, indent=2, default=_json_default)

    return write_version(os.path.join(base_dir, name), write)


def _seen_info(seen: Optional[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    if seen is None:
        return {"excluded": False, "why": "the export was given no training interactions"}
    indptr, items = seen
    return {
        "excluded": True,
        "stored": "in the SavedModel (CSR variables seen_indptr, seen_rows; int64)",
        "users": int(np.count_nonzero(np.diff(indptr))),
        "interactions": int(len(items)),
        "bytes": int(8 * (len(indptr) + len(items) + 1)),
    }


def export_model(model: Any, user_vocab: Any, item_vocab: Any, *args: Any, **kwargs: Any) -> str:
    """Export a two-tower ``model`` as ``<base_dir>/<name>/<next version>/``.

    ``model`` needs ``user_embeddings()`` and ``item_embeddings()`` (as
    :class:`~tfrs_irns.models.two_tower.TwoTowerModel`); the vocabularies give
    the raw id of each index. The other arguments (``item_titles``,
    ``base_dir``, ``name``, ``k``, ``metadata``, ``chunk_size``) are
    :func:`export_embeddings`'s. Returns the version directory. A content
    candidate tower adds ``candidate_embedding_from_features``; a query tower
    over a history (:class:`~tfrs_irns.layers.contract.HistoryTowerProtocol`) adds
    ``recommend_from_history``.
    """
    if has_content(model.candidate_tower):
        kwargs.setdefault("item_encoder", ItemFeatureEncoder(model.candidate_tower))
    if "history" not in kwargs:
        kwargs["history"] = history_serving(getattr(model, "query_tower", None))
    return export_embeddings(
        model.user_embeddings(), model.item_embeddings(), user_vocab.ids, item_vocab.ids, *args, **kwargs
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
