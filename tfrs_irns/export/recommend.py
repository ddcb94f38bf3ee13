"""The top items for one user, one history or a file of users, from an export.

It goes through the same SavedModel signatures TF Serving would call, so what
it prints is what a served model answers. Errors and notes name this module's
arguments (``k``, ``history``, ``output``, ...); ``tfrs-irns recommend``
(:mod:`tfrs_irns.cli.recommend`) words them as its flags.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Mapping, Optional, TextIO

import numpy as np
import tensorflow as tf

from tfrs_irns.errors import UserError, reword
from tfrs_irns.export.saved_model import HISTORY_SIGNATURE, ITEMS_FILE, METADATA_FILE
from tfrs_irns.export.versions import version_dirs


def resolve_version_dir(model_path: str) -> str:
    """``saved_models/<name>`` → its latest version; ``.../<name>/<version>`` → itself."""
    if not os.path.exists(model_path):
        raise UserError(f"{model_path}: no such model directory")
    if not os.path.isdir(model_path):
        raise UserError(f"{model_path}: not a directory (expected saved_models/<name> or saved_models/<name>/<version>)")
    if os.path.isfile(os.path.join(model_path, "saved_model.pb")):
        return model_path
    versions = {v: path for v, path in version_dirs(model_path).items() if os.path.isfile(os.path.join(path, "saved_model.pb"))}
    if versions:
        return versions[max(versions)]
    if os.path.basename(os.path.normpath(model_path)).isdigit():
        raise UserError(f"{model_path}: not a SavedModel (no saved_model.pb)")
    raise UserError(
        f"{model_path}: no exported versions (expected integer version folders such as "
        f"{os.path.join(model_path, '1')} holding saved_model.pb)"
    )


def load_export(model_path: str) -> tuple[str, Any, dict[str, Any]]:
    """``(version_dir, loaded SavedModel, metadata)`` of an export."""
    version_dir = resolve_version_dir(model_path)
    try:
        loaded = tf.saved_model.load(version_dir)
    except Exception as exc:  # corrupt or foreign files: TF raises many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{version_dir}: cannot load the SavedModel ({first})") from None
    serve = loaded.signatures.get("serving_default")
    if serve is None or "user_id" not in serve.structured_input_signature[1]:
        raise UserError(f"{version_dir}: not a tfrs_irns export (no serving_default signature taking user_id)")
    metadata: dict[str, Any] = {}
    path = os.path.join(version_dir, METADATA_FILE)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as fh:
            metadata = json.load(fh)
    return version_dir, loaded, metadata


def _titles(version_dir: str, wanted: set[str]) -> dict[str, str]:
    titles: dict[str, str] = {}
    path = os.path.join(version_dir, "assets", ITEMS_FILE)
    if not os.path.isfile(path):
        return titles
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            item, _, title = line.rstrip("\n").partition("\t")
            if item in wanted:
                titles[item] = title
    return titles


def history_ids(model_path: str, values: list[str], files: Optional[list[str]] = None) -> list[str]:
    """Item ids from ``values`` and the text ``files``.

    A value is one id when the model knows it whole (ids may contain commas:
    "Toy Story, The"), else it is split on commas ("ID,ID,..."); a file has one
    id per line, taken whole. Order kept.
    """
    version_dir = resolve_version_dir(model_path)
    whole = set(_titles(version_dir, set(values)))
    ids: list[str] = []
    for value in values:
        ids.extend([value] if value in whole else [i.strip() for i in value.split(",") if i.strip()])
    for path in files or []:
        try:
            with open(path, encoding="utf-8") as fh:
                ids.extend(line.rstrip("\r\n") for line in fh if line.strip())
        except OSError as exc:
            raise UserError(f"files={path}: cannot read it ({exc.strerror or exc})", arguments=["files"]) from None
        except UnicodeDecodeError as exc:
            raise UserError(
                f"files={path}: not UTF-8 text ({exc.reason} at byte {exc.start})", arguments=["files"]
            ) from None
    return ids


def _seen(loaded: Any, users: tf.Tensor) -> list[list[str]]:
    """Each user's training items the export stores (none for older exports)."""
    if not hasattr(loaded, "seen_item_ids"):
        return [[] for _ in range(int(users.shape[0]))]
    return [[i.decode("utf-8") for i in row if i] for row in loaded.seen_item_ids(users).numpy()]


def _from_index(
    version_dir: str, loaded: Any, users: tf.Tensor, k: int, exclude: list[set[str]]
) -> dict[str, np.ndarray]:
    """The ANN index's answer, shaped as ``serving_default``'s (rows padded with
    '' / -inf); ``exclude[b]`` holds ids left out of row ``b``."""
    from tfrs_irns.export.ann import AnnIndex
    from tfrs_irns.export.embeddings import embeddings_dir, read_item_ids

    folder = embeddings_dir(version_dir)
    if not os.path.isdir(folder):
        raise UserError(
            f"index=True: {version_dir} has no {os.path.basename(folder)} folder beside it (exported without an ANN index)",
            arguments=["index"],
        )
    index = AnnIndex.load(folder)
    query = loaded.signatures["query_embedding"](user_id=users)["embedding"].numpy()
    ids = read_item_ids(folder)
    # Ask for the excluded items on top, then drop them: k are left whenever the catalogue has them.
    scores, rows = index.search(query, min(k + max((len(e) for e in exclude), default=0), len(ids)))
    out_ids = np.full((len(query), k), b"", dtype=object)
    out_scores = np.full((len(query), k), -np.inf, np.float32)
    for b in range(len(query)):
        kept = [(r, s) for r, s in zip(rows[b], scores[b]) if r >= 0 and ids[r] not in exclude[b]][:k]
        out_ids[b, : len(kept)] = [ids[r].encode("utf-8") for r, _ in kept]
        out_scores[b, : len(kept)] = [s for _, s in kept]
    return {"item_ids": out_ids, "scores": out_scores}


def _check_history_signature(version_dir: str, loaded: Any, history: list[str]) -> None:
    if HISTORY_SIGNATURE not in loaded.signatures:
        raise UserError(
            f"history: {version_dir} has no {HISTORY_SIGNATURE} signature (its user tower reads no item timelines)",
            arguments=["history"],
        )
    if not history:
        raise UserError("history: give at least one item id", arguments=["history"])


def _from_history(version_dir: str, loaded: Any, history: list[str], k: int, export_k: int) -> dict[str, Any]:
    """``recommend_from_history``'s answer for one history."""
    _check_history_signature(version_dir, loaded, history)
    if k > export_k:
        raise UserError(
            f"k={k}: {version_dir} returns at most {export_k} items from a history (its top-k size); "
            f"ask for at most {export_k}",
            arguments=["k"],
        )
    return loaded.signatures[HISTORY_SIGNATURE](item_ids=tf.constant([history]))


def _answer(
    version_dir: str, loaded: Any, users: tf.Tensor, k: int, export_k: int, index: bool, include_seen: bool
) -> dict[str, Any]:
    """``item_ids`` [B, k'] and ``scores`` of ``users``, as the export's signatures
    (or its ANN index) give them; seen items left out unless ``include_seen``."""
    sigs = loaded.signatures
    if index:
        exclude = [set() for _ in range(int(users.shape[0]))] if include_seen else [set(s) for s in _seen(loaded, users)]
        return _from_index(version_dir, loaded, users, k, exclude)
    if k <= export_k and not include_seen:
        return sigs["serving_default"](user_id=users)
    if "recommend_k" in sigs:
        return sigs["recommend_k"](
            user_id=users, k=tf.constant(k, tf.int32), include_seen=tf.constant(bool(include_seen))
        )
    # An export from before seen items were stored: nothing is excluded anyway.
    if k <= export_k:
        return sigs["serving_default"](user_id=users)
    if "recommend_k_excluding" in sigs:
        return sigs["recommend_k_excluding"](
            user_id=users, k=tf.constant(k, tf.int32), exclude_item_ids=tf.zeros([int(users.shape[0]), 0], tf.string)
        )
    raise UserError(
        f"k={k}: {version_dir} returns at most {export_k} items (its top-k size); ask for at most {export_k}",
        arguments=["k"],
    )


def recommend(
    model_path: str,
    user_id: Optional[str] = None,
    k: int = 10,
    out: TextIO | None = None,
    index: bool = False,
    history: Optional[list[str]] = None,
    include_seen: bool = False,
    names: Mapping[str, str] = {},
) -> list[dict[str, Any]]:
    """Print (and return) the top ``k`` items of ``user_id`` as a numbered table.

    The user's training items are left out (the export stores them), unless
    ``include_seen``. ``k`` beyond the export's own top-k size goes through the
    ``recommend_k`` signature; beyond the catalogue it is clipped.
    An unknown user gets the out-of-vocabulary user's recommendations. With
    ``index``, the export's ANN index answers instead of the brute-force scan.
    With ``history`` (raw item ids, oldest first) instead of ``user_id``, the
    ``recommend_from_history`` signature answers, those items excluded; a
    history of only unknown items gets the most popular items, said so.
    ``names``: how the caller spells the arguments the notes name (CLI flags).
    """
    out = out or sys.stdout
    rows, notes, header = _recommend_one(model_path, user_id, k, index, history, include_seen, names)
    print(header, file=out)
    for note in notes:
        print(f"note: {note}", file=out)
    width_id = max([len("item_id")] + [len(r["item_id"]) for r in rows])
    print(f"{'rank':>4}  {'score':>10}  {'item_id':<{width_id}}  title", file=out)
    for r in rows:
        print(f"{r['rank']:>4}  {r['score']:>10.4f}  {r['item_id']:<{width_id}}  {r['title']}", file=out)
    return rows


def recommend_json(
    model_path: str,
    user_id: Optional[str] = None,
    k: int = 10,
    out: TextIO | None = None,
    index: bool = False,
    history: Optional[list[str]] = None,
    include_seen: bool = False,
    names: Mapping[str, str] = {},
) -> dict[str, Any]:
    """As :func:`recommend`, printed as one JSON object."""
    out = out or sys.stdout
    rows, notes, _ = _recommend_one(model_path, user_id, k, index, history, include_seen, names)
    answer = {"user_id": user_id, "history": history, "items": rows, "notes": notes}
    if history is None:
        del answer["history"]
    else:
        del answer["user_id"]
    print(json.dumps(answer, ensure_ascii=False), file=out)
    return answer


def _recommend_one(
    model_path: str, user_id: Optional[str], k: int, index: bool, history: Optional[list[str]], include_seen: bool,
    names: Mapping[str, str],
) -> tuple[list[dict[str, Any]], list[str], str]:
    """``(rows, notes, header line)`` of one user's or one history's answer (notes spelling
    the arguments they name as ``names`` says)."""
    if k < 1:
        raise UserError(f"k: must be at least 1, got {k}", arguments=["k"])
    version_dir, loaded, metadata = load_export(model_path)
    serve = loaded.signatures["serving_default"]
    export_k = int(serve.structured_outputs["item_ids"].shape[-1])
    users = tf.constant([str(user_id)])
    notes: list[str] = []
    if history is not None:
        if index:
            raise UserError(
                "index=True answers for a user_id; a history goes through recommend_from_history",
                arguments=["index"],
            )
        _check_history_signature(version_dir, loaded, history)
        known = set(_titles(version_dir, set(history)))
        unknown = [i for i in dict.fromkeys(history) if i not in known]
        if unknown:
            notes.append(
                f"{len(unknown)} of the history items are not in the model's catalogue and are ignored: "
                + ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            )
        popular = [str(i) for i in metadata.get("popular_items", [])]
        if history and not known and popular:
            # Nothing the model knows to start from: the most popular items, not all-zero scores in id order.
            notes.append("none of the history items is known: these are the most popular items (by training interactions)")
            ids = popular[:k]
            result: Any = {"item_ids": np.array([[i.encode("utf-8") for i in ids]]),
                           "scores": np.full((1, len(ids)), np.nan, np.float32)}
        else:
            result = _from_history(version_dir, loaded, history, k, export_k)
    else:
        result = _answer(version_dir, loaded, users, k, export_k, index, include_seen)
    ids_row = [i.decode("utf-8") for i in np.asarray(result["item_ids"])[0, :k]]
    scores_row = [float(s) for s in np.asarray(result["scores"])[0, :k]]
    kept = [(i, s) for i, s in zip(ids_row, scores_row) if i]  # '' pads: fewer left than asked
    titles = _titles(version_dir, {i for i, _ in kept})
    rows = [
        {"rank": r, "item_id": i, "title": titles.get(i, ""), "score": s}
        for r, (i, s) in enumerate(kept, start=1)
    ]
    source = " (ANN index)" if index else ""
    who = f"user {user_id!r}" if history is None else f"a history of {len(history)} items"
    header = f"top {len(rows)} items for {who} from {version_dir}{source}"
    if history is None:
        if hasattr(loaded, "user_index") and int(loaded.user_index(users).numpy()[0]) == 0:
            notes.append(
                f"user {user_id!r} is not in the model's training data; these are the "
                "recommendations of the out-of-vocabulary (unknown) user"
            )
        seen = _seen(loaded, users)[0]
        if seen and not include_seen:
            notes.append(reword(
                f"the {len(seen)} items the user already has are left out (include_seen keeps them)",
                ["include_seen"], names,
            ))
    num_items = int(metadata.get("num_items", 0)) or None
    if len(rows) < k:
        if num_items is not None and len(rows) < min(k, num_items):
            notes.append(f"only {len(rows)} items are left to recommend (the catalogue has {num_items})")
        else:
            notes.append(f"the catalogue has only {len(rows)} items")
    return rows, notes, header


#: Output formats of :func:`recommend_many`, by file suffix.
BULK_FORMATS = (".jsonl", ".parquet")


def read_user_ids(path: str) -> list[str]:
    """User ids from a text file, one per line (blank lines skipped)."""
    try:
        with open(path, encoding="utf-8") as fh:
            users = [line.rstrip("\r\n") for line in fh if line.strip()]
    except OSError as exc:
        raise UserError(f"path={path}: cannot read it ({exc.strerror or exc})", arguments=["path"]) from None
    except UnicodeDecodeError as exc:
        raise UserError(
            f"path={path}: not UTF-8 text ({exc.reason} at byte {exc.start})", arguments=["path"]
        ) from None
    if not users:
        raise UserError(f"path={path}: no user ids (expected one per line)", arguments=["path"])
    return users


def _all_titles(version_dir: str) -> dict[str, str]:
    titles: dict[str, str] = {}
    path = os.path.join(version_dir, "assets", ITEMS_FILE)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                item, _, title = line.rstrip("\n").partition("\t")
                titles[item] = title
    return titles


def recommend_many(
    model_path: str,
    users: list[str],
    output: str,
    k: int = 10,
    index: bool = False,
    include_seen: bool = False,
    batch_size: int = 1024,
    progress_every: float = 10.0,
) -> dict[str, Any]:
    """Write the top ``k`` of every user in ``users`` to ``output`` (``.jsonl`` or
    ``.parquet``), one row per user, in their order: ``user_id``, ``known``
    (in the training data), ``item_ids``, ``scores``, ``titles``. Users are
    scored ``batch_size`` at a time through the same signatures as
    :func:`recommend` (so the answers are the same); a progress line goes to
    stderr every ``progress_every`` seconds. Returns counts and users/s.
    """
    import time

    from tfrs_irns.data.progress import Progress

    suffix = os.path.splitext(output)[1].lower()
    if suffix not in BULK_FORMATS:
        raise UserError(f"output={output}: expected a {' or '.join(BULK_FORMATS)} file name", arguments=["output"])
    if os.path.isdir(output):
        raise UserError(f"output={output}: is a folder, expected a file name", arguments=["output"])
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise UserError(f"output={output}: folder {folder} does not exist", arguments=["output"])
    if k < 1:
        raise UserError(f"k: must be at least 1, got {k}", arguments=["k"])
    if batch_size < 1:
        raise ValueError(f"batch_size must be > 0, got {batch_size}")
    version_dir, loaded, _ = load_export(model_path)
    export_k = int(loaded.signatures["serving_default"].structured_outputs["item_ids"].shape[-1])
    titles = _all_titles(version_dir)
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    unknown = 0
    with Progress(f"recommending for {len(users):,} users", after=progress_every, every=progress_every,
                  total=len(users), unit="users") as progress:
        for first in range(0, len(users), batch_size):
            chunk = tf.constant(users[first : first + batch_size])
            result = _answer(version_dir, loaded, chunk, k, export_k, index, include_seen)
            known = loaded.user_index(chunk).numpy() > 0 if hasattr(loaded, "user_index") else np.ones(len(chunk), bool)
            unknown += int((~known).sum())
            for user, ok, ids, scores in zip(
                users[first : first + batch_size], known, np.asarray(result["item_ids"]), np.asarray(result["scores"])
            ):
                row_ids = [i.decode("utf-8") for i in ids[:k] if i]
                rows.append({
                    "user_id": user,
                    "known": bool(ok),
                    "item_ids": row_ids,
                    "scores": [float(s) for s in scores[: len(row_ids)]],
                    "titles": [titles.get(i, "") for i in row_ids],
                })
            progress.update(min(first + batch_size, len(users)))
    seconds = time.perf_counter() - start
    _write_rows(rows, output, suffix)
    return {
        "users": len(users), "unknown_users": unknown, "output": output, "seconds": round(seconds, 3),
        "users_per_second": round(len(users) / seconds, 1) if seconds > 0 else None,
    }


def _write_rows(rows: list[dict[str, Any]], output: str, suffix: str) -> None:
    """Write atomically: a crash leaves the old file or none, never half a file."""
    from tfrs_irns._files import atomic_open

    if suffix == ".jsonl":
        with atomic_open(output) as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "user_id": pa.array([r["user_id"] for r in rows], pa.string()),
        "known": pa.array([r["known"] for r in rows], pa.bool_()),
        "item_ids": pa.array([r["item_ids"] for r in rows], pa.list_(pa.string())),
        "scores": pa.array([r["scores"] for r in rows], pa.list_(pa.float32())),
        "titles": pa.array([r["titles"] for r in rows], pa.list_(pa.string())),
    })
    with atomic_open(output, "wb") as fh:
        pq.write_table(table, fh)
