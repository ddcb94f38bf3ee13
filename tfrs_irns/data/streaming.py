"""Streamed input: one bounded-memory pass from CSV/Parquet to encoded int64 shards.

The in-memory path (:func:`~tfrs_irns.data.prepare.prepare_data`) holds every
row several times over (ids, splits, encoded arrays): about 300 bytes per
interaction. A log of billions of rows does not fit, but its *vocabularies*
do: a user or an item costs a few dozen bytes however many rows it has. With
``data.streaming: true`` the rows are read in pyarrow record batches and only
per-id state is kept:

1. **read** (one pass over the source): each batch's ids get global codes
   (a dict per side, O(distinct ids)); the batch is written to a temporary
   Parquet file of codes, and the split's per-user state is updated;
2. **count**: the temporary file is read back in batches, each row gets its
   split, and the training rows give the vocabularies and item counts;
3. **encode**: a last read writes each split as TFRecord shards of int64
   ``[3, CHUNK]`` tensors (user index, item index, timestamp), which
   :class:`~tfrs_irns.batching.shards.ShardPipeline` reads with tf.data.

Splits that need no global order of the rows:

* ``random``: a row is test when a seeded hash of its (user id, item id)
  pair, as a number in [0, 1), is below ``test_fraction``, validation when it
  is below ``test_fraction + (1 - test_fraction) * validation_fraction``. All
  copies of a pair fall on one side (``data.duplicates: keep_all``). The
  shares are those of the in-memory split in expectation, not row for row.
* ``leave_last_out``: per user the last and second-to-last row (by time, then
  row order) and a row count — O(users) state — give exactly the in-memory
  split when no (user, item) pair repeats.

``temporal``, ``cold_items`` and ``cold_users`` and collapsing duplicates are
refused by the config (they need every row or every pair at once).

Everything lands in ``<cache>/<fingerprint>/``; the fingerprint digests the
settings and each file's path, size and modification time, so a later run,
``evaluate`` or ``train --resume`` on the same files reuses the shards. The
validation and test splits are loaded for evaluation (O(their rows)); the
training split stays on disk unless ``exclude_seen`` needs it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from tfrs_irns.data.arrow_source import _parquet_column, first_row, parquet_files
from tfrs_irns.data.params import DataParams
from tfrs_irns.data.prepare import Catalogue, EncodedSplit, PreparedData, _align, _item_side
from tfrs_irns.data.snapshot import load_snapshot, save_snapshot, saved_info
from tfrs_irns.data.table import ItemTable
from tfrs_irns.data.vocab import Vocabulary, check_ids
from tfrs_irns.errors import DataError

#: Rows per record batch read from the source (bounded memory: a few MB per batch).
BATCH_ROWS = 1 << 16
#: Examples per TFRecord record (one serialized ``int64 [3, CHUNK]`` tensor).
CHUNK = 4096
#: Examples per shard file at most (several files, so training can interleave them).
SHARD_ROWS = 1 << 20
#: Each split is cut into at least this many files of equal size (the last one shorter): the
#: training files are what multi-worker training hands out, so up to this many workers each
#: read their own files, and W workers' shares differ by at most one file.
FILES_PER_SPLIT = 32
#: Bump when the shard layout changes: old caches are then not reused.
FORMAT_VERSION = 2
SPLITS = ("train", "validation", "test")
META = "shards.json"
_INTERMEDIATE = "codes.parquet"


# ------------------------------------------------------------------ reading the source in batches


def _source_files(cfg: DataParams) -> list[str]:
    path = cfg.path
    if path is None:
        raise DataError(
            f"path: required when source is {cfg.source!r} with streaming", arguments=["path", "source", "streaming"]
        )
    if cfg.source == "parquet":
        return parquet_files(path)
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    return [path]


def _wanted(cfg: DataParams) -> list[tuple[str, str, str]]:
    """``(argument, column, kind)`` of the interaction columns."""
    c = cfg.csv
    out = [("user_column", c.user_column, "id"), ("item_column", c.item_column, "id")]
    if c.timestamp_column is not None:
        out.append(("timestamp_column", c.timestamp_column, "time"))
    if c.rating_column is not None:
        out.append(("rating_column", c.rating_column, "float"))
    return out


def _csv_batches(path: str, cfg: DataParams, wanted: list[tuple[str, str, str]]) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    delimiter = "\t" if cfg.csv.delimiter in ("\\t", "tab") else cfg.csv.delimiter
    header = first_row(path, delimiter)
    if header is None:
        raise DataError(f"{path}: the first line cannot be read as a {delimiter!r}-delimited header or row")
    names = header if cfg.csv.header else [str(j) for j in range(len(header))]
    for key, column, _ in wanted:
        if column not in names:
            raise DataError(f"{path}: no column {column!r} ({key}); the file has {', '.join(map(repr, names))}")
    types = {"id": pa.string(), "time": pa.int64(), "float": pa.float64()}
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(
                column_names=None if cfg.csv.header else names, block_size=1 << 22
            ),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                include_columns=[w[1] for w in wanted], column_types={w[1]: types[w[2]] for w in wanted}
            ),
        )
        yield from reader
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path}: {str(exc).splitlines()[0]} (streaming reads with pyarrow only)", arguments=["streaming"]
        ) from None


def _parquet_batches(path: str, wanted: list[tuple[str, str, str]]) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a Parquet file ({str(exc).splitlines()[0]})") from None
    names = handle.schema_arrow.names
    for key, column, _ in wanted:
        if column not in names:
            raise DataError(f"{path}: no column {column!r} ({key}); the file has {', '.join(map(repr, names))}")
    yield from handle.iter_batches(batch_size=BATCH_ROWS, columns=list(dict.fromkeys(w[1] for w in wanted)))


def _id_hash(value: str, key: bytes) -> int:
    digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8, key=key)
    return int.from_bytes(digest.digest(), "little")


def _seed_key(seed: int) -> bytes:
    return int(seed).to_bytes(8, "little", signed=True)


class _Codes:
    """Raw id → global code in first-seen order, with a seeded 64-bit hash per id (O(distinct ids))."""

    def __init__(self, seed: int) -> None:
        self.code: dict[str, int] = {}
        self.ids: list[str] = []
        self.hashes: list[int] = []
        self._key = _seed_key(seed)

    def encode(self, column: Any, where: str) -> np.ndarray:
        import pyarrow as pa

        encoded = column.dictionary_encode()
        if pa.types.is_integer(column.type):
            values = [str(v) for v in encoded.dictionary.to_pylist()]
        elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            values = [v.strip() for v in encoded.dictionary.to_pylist()]
        else:
            raise DataError(f"{where}: has type {column.type}; expected strings or integers")
        if "" in values:
            raise DataError(f"{where}: holds an empty id")
        lookup = np.empty(len(values), np.int64)
        for j, value in enumerate(values):
            code = self.code.get(value)
            if code is None:
                code = self.code[value] = len(self.ids)
                self.ids.append(value)
                self.hashes.append(_id_hash(value, self._key))
            lookup[j] = code
        return lookup[encoded.indices.to_numpy(zero_copy_only=False)]


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a well-spread uint64 from any uint64."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def pair_uniform(user_hash: np.ndarray, item_hash: np.ndarray) -> np.ndarray:
    """The random split's number in [0, 1) of each (user, item) pair, from the ids' seeded hashes."""
    with np.errstate(over="ignore"):
        item = _mix(np.asarray(item_hash, np.uint64) + np.uint64(0x9E3779B97F4A7C15))
        h = _mix(np.asarray(user_hash, np.uint64) ^ item)
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


def id_hashes(ids: list[str], seed: int) -> np.ndarray:
    """The seeded 64-bit hash of each id that :func:`pair_uniform` takes (for tests and tools)."""
    key = _seed_key(seed)
    return np.asarray([_id_hash(str(v), key) for v in ids], np.uint64)


class _LastTwo:
    """Per user: row count and the last two rows by (time, row order) — leave_last_out in O(users)."""

    def __init__(self) -> None:
        self.count = np.zeros(0, np.int64)
        self.key = np.full((0, 2, 2), -1, np.int64)  # [user, (last, second), (time, row)]

    def update(self, user: np.ndarray, time: np.ndarray, row: np.ndarray) -> None:
        n = int(user.max()) + 1 if len(user) else 0
        if n > len(self.count):
            grow = n - len(self.count)
            self.count = np.concatenate([self.count, np.zeros(grow, np.int64)])
            self.key = np.concatenate([self.key, np.full((grow, 2, 2), -1, np.int64)])
        self.count += np.bincount(user, minlength=len(self.count))
        seen = np.unique(user)
        old = self.key[seen].reshape(-1, 2)  # the current last two of the batch's users
        old_user = np.repeat(seen, 2)
        valid = old[:, 1] >= 0
        u = np.concatenate([user, old_user[valid]])
        t = np.concatenate([time, old[valid, 0]])
        r = np.concatenate([row, old[valid, 1]])
        order = np.lexsort((r, t, u))
        u, t, r = u[order], t[order], r[order]
        last = np.flatnonzero(np.append(u[1:] != u[:-1], True))
        before = last - 1
        second = before[(before >= 0) & (u[np.maximum(before, 0)] == u[last])]
        self.key[u[last], 0] = np.stack([t[last], r[last]], axis=1)
        self.key[u[second], 1] = np.stack([t[second], r[second]], axis=1)

    def labels(self, user: np.ndarray, row: np.ndarray, with_validation: bool) -> np.ndarray:
        count = self.count[user]
        label = np.zeros(len(user), np.int8)
        label[(count >= 2) & (row == self.key[user, 0, 1])] = 2
        if with_validation:
            label[(count >= 3) & (row == self.key[user, 1, 1])] = 1
        return label


# ------------------------------------------------------------------ the cache


def streaming_fingerprint(cfg: DataParams) -> str:
    """The cache key: the settings that shape the shards and each source file's path, size and mtime."""
    settings = {
        "format": FORMAT_VERSION,
        "source": cfg.source,
        "split": cfg.split,
        "test_fraction": cfg.test_fraction,
        "validation_fraction": cfg.validation_fraction,
        "seed": cfg.seed,
        "min_rating": cfg.min_rating,
        "skip_bad_rows": cfg.skip_bad_rows,
        "duplicates": cfg.duplicates,
        "csv": {k: v for k, v in vars(cfg.csv).items()},
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for file in _source_files(cfg):
        stat = os.stat(file)
        digest.update(f"{os.path.abspath(file)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return "s" + digest.hexdigest()[:31]


@dataclass(frozen=True)
class StreamedData:
    """A streamed dataset: the prepared vocabularies and held-out splits, and the shard files.

    ``data.train`` is empty unless it was loaded (``load_train``), ``data.test`` when it was
    not (``load_test``); ``rows`` counts every split's rows.
    """

    data: PreparedData
    folder: str
    files: dict[str, list[str]]
    rows: dict[str, int]
    reused: bool
    #: Rows in each of ``files``, split by split.
    file_rows: Optional[dict[str, list[int]]] = None

    @property
    def num_train(self) -> int:
        return self.rows["train"]


def _serialize(block: np.ndarray) -> bytes:
    import tensorflow as tf

    return tf.io.serialize_tensor(tf.constant(block, tf.int64)).numpy()


def file_layout(rows: int) -> tuple[int, int]:
    """``(rows per file, rows per record)`` of a split of ``rows`` rows: at least
    :data:`FILES_PER_SPLIT` files of equal size (the last one shorter), at most
    :data:`SHARD_ROWS` rows each, in records of at most :data:`CHUNK` rows (a file's
    last record holds what is left of it)."""
    per_file = max(1, min(SHARD_ROWS, -(-rows // FILES_PER_SPLIT)))
    return per_file, min(CHUNK, per_file)


class _ShardWriter:
    """Rows of one split → ``<split>-00000.tfrecord`` ... of ``[3, record]`` int64 records
    (:func:`file_layout` of the split's ``total`` rows)."""

    def __init__(self, folder: str, split: str, total: int) -> None:
        self.folder, self.split = folder, split
        self.file_rows_max, self.record = file_layout(total)
        self.files: list[str] = []
        self.file_rows: list[int] = []
        self.rows = 0
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0
        self._writer: Any = None
        self._in_file = 0

    def add(self, block: np.ndarray) -> None:
        self._pending.append(block)
        self._pending_rows += block.shape[1]
        while self._pending_rows >= self._next_record():
            self._emit(self._next_record())

    def _next_record(self) -> int:
        """Rows of the next record: a whole one, or what the open file still takes."""
        left = self.file_rows_max - self._in_file
        return min(self.record, left) if self._writer is not None and left > 0 else self.record

    def _emit(self, size: int) -> None:
        import tensorflow as tf

        whole = np.concatenate(self._pending, axis=1)
        head, rest = whole[:, :size], whole[:, size:]
        self._pending, self._pending_rows = ([rest] if rest.shape[1] else []), rest.shape[1]
        if self._writer is None or self._in_file >= self.file_rows_max:
            if self._writer is not None:
                self._writer.close()
            name = f"{self.split}-{len(self.files):05d}.tfrecord"
            self.files.append(name)
            self.file_rows.append(0)
            self._writer = tf.io.TFRecordWriter(os.path.join(self.folder, name))
            self._in_file = 0
        self._writer.write(_serialize(head))
        self._in_file += head.shape[1]
        self.file_rows[-1] += head.shape[1]
        self.rows += head.shape[1]

    def close(self) -> None:
        if self._pending_rows:
            self._emit(self._pending_rows)
        if self._writer is not None:
            self._writer.close()


def iter_blocks(paths: Sequence[str]) -> Iterator[np.ndarray]:
    """The records of the shard files ``paths`` in order: ``int64 [3, n]`` (user, item, timestamp)."""
    import tensorflow as tf

    for path in paths:
        for record in tf.data.TFRecordDataset(path):
            yield tf.io.parse_tensor(record, tf.int64).numpy()


def read_split(folder: str, files: list[str], rows: Optional[int] = None) -> EncodedSplit:
    """A split's shards as an in-memory :class:`EncodedSplit` (O(its rows): held-out splits, small data).

    With ``rows`` (the split's size) the arrays are filled in place: no second copy of the split at its peak.
    """
    import tensorflow as tf

    if rows is None:
        rows = sum(
            int(tf.io.parse_tensor(r, tf.int64).shape[1])
            for name in files for r in tf.data.TFRecordDataset(os.path.join(folder, name))
        )
    user, item, time = np.empty(rows, np.int32), np.empty(rows, np.int32), np.empty(rows, np.int64)
    at = 0
    for name in files:
        for block in iter_blocks([os.path.join(folder, name)]):
            n = block.shape[1]
            if at + n > rows:
                raise DataError(f"{folder}: the {name} shards hold more rows than shards.json says; delete the folder")
            user[at : at + n], item[at : at + n], time[at : at + n] = block
            at += n
    if at != rows:
        raise DataError(f"{folder}: the shards hold {at} rows, shards.json says {rows}; delete the folder")
    return EncodedSplit(user=user, item=item, timestamp=time)


def _read_source(cfg: DataParams, work: str) -> tuple[_Codes, _Codes, Optional[_LastTwo], int, int]:
    """Pass 1: the source → a Parquet file of codes (user, item, time, row); the split's state."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    wanted = _wanted(cfg)
    users, items = _Codes(cfg.seed), _Codes(cfg.seed)
    last_two = _LastTwo() if cfg.split == "leave_last_out" else None
    schema = pa.schema([("u", pa.int64()), ("i", pa.int64()), ("t", pa.int64()), ("r", pa.int64())])
    row = 0
    skipped = 0
    with pq.ParquetWriter(os.path.join(work, _INTERMEDIATE), schema) as out:
        for file in _source_files(cfg):
            batches = _csv_batches(file, cfg, wanted) if cfg.source == "csv" else _parquet_batches(file, wanted)
            in_file = 0
            for batch in batches:
                n = batch.num_rows
                columns = [batch.column(w[1]) for w in wanted]
                missing = np.zeros(n, bool)
                for column in columns:
                    if column.null_count:
                        missing |= column.is_null().to_numpy(zero_copy_only=False)
                if missing.any():
                    first = int(np.flatnonzero(missing)[0])
                    if not cfg.skip_bad_rows:
                        key, name, _ = next(w for w, c in zip(wanted, columns) if not c[first].is_valid)
                        raise DataError(f"{file}, row {in_file + first + 1}: column {name!r} ({key}) is missing")
                    skipped += int(missing.sum())
                    keep = pa.array(~missing)
                    columns = [c.filter(keep) for c in columns]
                in_file += n
                where = f"{file}: column"
                u = users.encode(columns[0], f"{where} {wanted[0][1]!r} ({wanted[0][0]})")
                i = items.encode(columns[1], f"{where} {wanted[1][1]!r} ({wanted[1][0]})")
                k = 2
                if cfg.csv.timestamp_column is not None:
                    t = _parquet_column(columns[k], "time", f"{where} {wanted[k][1]!r} ({wanted[k][0]})")[0]
                    k += 1
                else:
                    t = None
                r = np.arange(row, row + len(u), dtype=np.int64)
                row += len(u)
                if t is None:  # row order stands in for time, as in the in-memory path
                    t = r
                t = np.asarray(t, np.int64)
                if cfg.csv.rating_column is not None and cfg.min_rating is not None:
                    rating = _parquet_column(columns[k], "float", f"{where} {wanted[k][1]!r} ({wanted[k][0]})")[0]
                    keep_rows = np.asarray(rating) >= cfg.min_rating
                    u, i, t, r = u[keep_rows], i[keep_rows], t[keep_rows], r[keep_rows]
                if last_two is not None and len(u):
                    last_two.update(u, t, r)
                out.write_table(pa.table({"u": u, "i": i, "t": t, "r": r}, schema=schema))
    if row == 0:
        raise DataError(f"{cfg.path}: the dataset has no interactions")
    return users, items, last_two, row, skipped


def _labels(
    cfg: DataParams, hashes: tuple[np.ndarray, np.ndarray], last_two: Optional[_LastTwo], table: Any
) -> np.ndarray:
    """Each row's split: 0 train, 1 validation, 2 test."""
    u = table.column("u").to_numpy()
    if last_two is not None:
        return last_two.labels(u, table.column("r").to_numpy(), cfg.validation_fraction > 0)
    x = pair_uniform(hashes[0][u], hashes[1][table.column("i").to_numpy()])
    label = np.zeros(len(u), np.int8)
    label[x < cfg.test_fraction + (1.0 - cfg.test_fraction) * cfg.validation_fraction] = 1
    label[x < cfg.test_fraction] = 2
    return label


def _vocabulary(codes: _Codes, used: np.ndarray) -> tuple[Vocabulary, np.ndarray]:
    """The sorted vocabulary of the used codes and each code's index (0 = OOV)."""
    ids = np.asarray(codes.ids, dtype=str) if codes.ids else np.zeros(0, str)
    picked = np.flatnonzero(used)
    order = np.argsort(ids[picked], kind="stable")
    index = np.zeros(len(ids), np.int64)
    index[picked[order]] = np.arange(1, len(picked) + 1)
    return Vocabulary(ids=ids[picked[order]]), index


def _build_cache(cfg: DataParams, folder: str) -> None:
    import pyarrow.parquet as pq

    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".building-", dir=parent)
    try:
        users, items, last_two, rows_read, skipped = _read_source(cfg, work)
        hashes = (np.asarray(users.hashes, np.uint64), np.asarray(items.hashes, np.uint64))
        # Pass 2: which ids the training split uses, and the item counts.
        user_used = np.zeros(len(users.ids), bool)
        item_count = np.zeros(len(items.ids), np.int64)
        sizes = np.zeros(3, np.int64)
        codes = pq.ParquetFile(os.path.join(work, _INTERMEDIATE))
        for batch in codes.iter_batches(batch_size=BATCH_ROWS):
            label = _labels(cfg, hashes, last_two, batch)
            sizes += np.bincount(label, minlength=3)
            train = label == 0
            user_used[batch.column("u").to_numpy()[train]] = True
            item_count += np.bincount(batch.column("i").to_numpy()[train], minlength=len(items.ids))
        if sizes[0] == 0:
            raise DataError(
                f"the training split is empty ({rows_read} interactions, split={cfg.split})", arguments=["split"]
            )
        if sizes[2] == 0:
            raise DataError(
                f"the test split is empty ({rows_read} interactions, split={cfg.split}); nothing to evaluate on",
                arguments=["split"],
            )
        user_vocab, user_index = _vocabulary(users, user_used)
        item_vocab, item_index = _vocabulary(items, item_count > 0)
        check_ids(user_vocab.ids, "user")
        check_ids(item_vocab.ids, "item")
        # Pass 3: encoded shards.
        writers = [_ShardWriter(work, split, int(size)) for split, size in zip(SPLITS, sizes)]
        for batch in codes.iter_batches(batch_size=BATCH_ROWS):
            label = _labels(cfg, hashes, last_two, batch)
            block = np.stack([
                user_index[batch.column("u").to_numpy()],
                item_index[batch.column("i").to_numpy()],
                batch.column("t").to_numpy(),
            ])
            for k, writer in enumerate(writers):
                picked = label == k
                if picked.any():
                    writer.add(block[:, picked])
        for writer in writers:
            writer.close()
        os.remove(os.path.join(work, _INTERMEDIATE))
        counts = np.zeros(item_vocab.size, np.float64)
        counts[item_index[item_count > 0]] = item_count[item_count > 0]
        titles, genres, genre_names, columns, item_skipped = _item_side_of(cfg, item_vocab)
        description = (
            f"{cfg.source} {cfg.path} (streamed): {rows_read:,} interactions, {len(users.ids):,} users, "
            f"{len(items.ids):,} items; {cfg.split} split: {sizes[0]:,} train / {sizes[1]:,} validation / "
            f"{sizes[2]:,} test; {len(user_vocab):,} users and {len(item_vocab):,} items in training"
        )
        empty = EncodedSplit.empty()
        catalogue = Catalogue(
            user_vocab=user_vocab, item_vocab=item_vocab, item_counts=counts, item_titles=titles,
            item_genres=genres, genre_names=genre_names, item_columns=columns, fingerprint=os.path.basename(folder),
        )
        data = PreparedData(
            catalogue, train=empty, validation=empty, test=empty, description=description,
            skipped_rows=skipped + item_skipped,
        )
        save_snapshot(data, work)
        meta = {
            "format": FORMAT_VERSION,
            "rows": {split: writer.rows for split, writer in zip(SPLITS, writers)},
            "files": {split: writer.files for split, writer in zip(SPLITS, writers)},
            "file_rows": {split: writer.file_rows for split, writer in zip(SPLITS, writers)},
            "rows_read": rows_read,
        }
        with open(os.path.join(work, META), "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=2)
        try:
            os.replace(work, folder)  # atomic: a kill leaves no half-built cache under the key
        except OSError:
            if not os.path.isfile(os.path.join(folder, META)):  # not another process that finished first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _item_side_of(
    cfg: DataParams, vocab: Vocabulary
) -> tuple[np.ndarray, Optional[np.ndarray], list[str], dict[str, np.ndarray], int]:
    """Titles, genres and item columns per item index from ``data.csv.items_path`` (O(items))."""
    if cfg.csv.items_path is None:
        titles, genres, names = _item_side(ItemTable(item_id=vocab.ids), vocab)
        return titles, genres, names, {}, 0
    from tfrs_irns.data.csv_source import load_items

    items, skipped = load_items(cfg.csv, None, cfg.skip_bad_rows)  # type: ignore[arg-type]
    titles, genres, names = _item_side(items, vocab)
    columns = {}
    if items.columns:
        index = vocab.lookup(items.item_id)
        columns = {name: _align(np.asarray(v).astype(str), index, vocab.size) for name, v in items.columns.items()}
    return titles, genres, names, columns, skipped


def cache_folder(cfg: DataParams, cache_root: str) -> str:
    """Where the shards of ``cfg``'s data live: ``<cache_root>/<fingerprint>``."""
    return os.path.join(cfg.cache_dir or cache_root, streaming_fingerprint(cfg))


def _cache(cfg: DataParams, cache_root: str) -> tuple[str, dict[str, Any], bool]:
    """``(folder, shards.json, reused)`` of ``cfg``'s shards, built first if they are not there."""
    from tfrs_irns.data.progress import Progress

    folder = cache_folder(cfg, cache_root)
    reused = os.path.isfile(os.path.join(folder, META))
    if not reused:
        try:
            with Progress(f"streaming {cfg.path} into shards"):
                _build_cache(cfg, folder)
        except OSError as exc:
            where = exc.filename or cfg.path
            raise DataError(f"{where}: cannot read or write ({exc.strerror or exc})") from None
        except DataError as exc:  # may name a column's argument (user_column, ...): the caller spells it
            raise DataError(str(exc), arguments=[*exc.arguments, *(w[0] for w in _wanted(cfg))]) from None
    with open(os.path.join(folder, META), encoding="utf-8") as fh:
        return folder, json.load(fh), reused


def streamed_summary(cfg: DataParams, cache_root: str) -> dict[str, Any]:
    """What ``tfrs-irns data`` reports for ``data.streaming``, read from the shards
    (built first if needed): per split its rows and distinct users and items (one
    pass over its records, O(ids) memory), the training vocabularies' sizes."""
    folder, meta, reused = _cache(cfg, cache_root)
    catalogue = load_snapshot(folder)
    splits = {}
    for split in SPLITS:
        users, items = np.zeros(0, np.int64), np.zeros(0, np.int64)
        for block in iter_blocks([os.path.join(folder, f) for f in meta["files"][split]]):
            users, items = np.union1d(users, block[0]), np.union1d(items, block[1])
        splits[split] = {
            "interactions": int(meta["rows"][split]), "files": len(meta["files"][split]),
            # Index 0 is every id unseen in training: not a user or item "known to training".
            "users": int(np.count_nonzero(users)), "items": int(np.count_nonzero(items)),
        }
    return {
        "description": saved_info(folder).get("description", ""), "streamed": True, "cache": folder,
        "reused": reused, "rows_read": int(meta["rows_read"]), "users": catalogue.num_users,
        "items": catalogue.num_items, "splits": splits,
    }


def prepare_streamed(
    cfg: DataParams, cache_root: str, load_train: bool = False, load_test: bool = True
) -> StreamedData:
    """The shards of ``cfg``'s data (built in one bounded-memory pass, or reused), with the
    vocabularies, item side table and held-out splits as :class:`PreparedData`.

    ``cache_root`` is used unless ``cfg.cache_dir`` is set. ``load_train`` also reads the
    training split into memory (evaluation with ``exclude_seen`` needs it); without
    ``load_test`` the test split stays on disk (evaluated from its shards,
    :func:`~tfrs_irns.evaluation.streamed.evaluate_streamed`).
    """
    folder, meta, reused = _cache(cfg, cache_root)
    info = saved_info(folder)
    data = PreparedData(
        load_snapshot(folder),
        validation=read_split(folder, meta["files"]["validation"], meta["rows"]["validation"]),
        test=read_split(folder, meta["files"]["test"], meta["rows"]["test"]) if load_test else EncodedSplit.empty(),
        train=read_split(folder, meta["files"]["train"], meta["rows"]["train"]) if load_train else EncodedSplit.empty(),
        description=info.get("description", ""),
        skipped_rows=int(info.get("skipped_rows", 0)),
        duplicate_rows=int(info.get("duplicate_rows", 0)),
    )
    files = {split: [os.path.join(folder, f) for f in meta["files"][split]] for split in SPLITS}
    return StreamedData(
        data=data, folder=folder, files=files, rows=dict(meta["rows"]), reused=reused, file_rows=meta["file_rows"]
    )
