"""``tfrs-irns recommend``: the top items for one user, from an export.

It goes through the same SavedModel signatures TF Serving would call, so what
it prints is what a served model answers.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Optional, TextIO

import numpy as np
import tensorflow as tf

from tfrs_irns.errors import UserError
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


def _from_index(version_dir: str, loaded: Any, users: tf.Tensor, k: int) -> dict[str, np.ndarray]:
    """The ANN index's answer, shaped as ``serving_default``'s."""
    from tfrs_irns.export.ann import AnnIndex
    from tfrs_irns.export.embeddings import embeddings_dir, read_item_ids

    folder = embeddings_dir(version_dir)
    if not os.path.isdir(folder):
        raise UserError(f"--index: {version_dir} has no {os.path.basename(folder)} folder beside it; "
                        "export with --set export.index=faiss")
    index = AnnIndex.load(folder)
    query = loaded.signatures["query_embedding"](user_id=users)["embedding"].numpy()
    scores, rows = index.search(query, k)
    ids = read_item_ids(folder)
    found = rows[0] >= 0
    return {"item_ids": np.array([[ids[r].encode("utf-8") for r in rows[0][found]]]),
            "scores": scores[:, found]}


def _from_history(version_dir: str, loaded: Any, history: list[str], k: int, export_k: int) -> dict[str, Any]:
    """``recommend_from_history``'s answer for one history."""
    if HISTORY_SIGNATURE not in loaded.signatures:
        raise UserError(
            f"--history: {version_dir} has no {HISTORY_SIGNATURE} signature (its user tower has no history: "
            "train with --set \"model.user_features=[history]\")"
        )
    if not history:
        raise UserError("--history: give at least one item id (ID,ID,...)")
    if k > export_k:
        raise UserError(
            f"-k {k}: {version_dir} returns at most {export_k} items from a history (exported with "
            f"export.k={export_k}); use -k {export_k} or re-export with --set export.k={k}"
        )
    return loaded.signatures[HISTORY_SIGNATURE](item_ids=tf.constant([history]))


def recommend(
    model_path: str,
    user_id: Optional[str] = None,
    k: int = 10,
    out: TextIO | None = None,
    index: bool = False,
    history: Optional[list[str]] = None,
) -> list[dict[str, Any]]:
    """Print (and return) the top ``k`` items of ``user_id`` as a numbered table.

    ``k`` beyond the export's ``export.k`` goes through the
    ``recommend_k_excluding`` signature; beyond the catalogue it is clipped.
    An unknown user gets the out-of-vocabulary user's recommendations. With
    ``index``, the export's ANN index answers instead of the brute-force scan.
    With ``history`` (raw item ids, oldest first) instead of ``user_id``, the
    ``recommend_from_history`` signature answers, those items excluded.
    """
    out = out or sys.stdout
    if k < 1:
        raise UserError(f"-k: must be at least 1, got {k}")
    version_dir, loaded, metadata = load_export(model_path)
    serve = loaded.signatures["serving_default"]
    export_k = int(serve.structured_outputs["item_ids"].shape[-1])
    users = tf.constant([str(user_id)])
    if history is not None:
        if index:
            raise UserError("--index answers for a --user; --history goes through recommend_from_history")
        result = _from_history(version_dir, loaded, history, k, export_k)
    elif index:
        result = _from_index(version_dir, loaded, users, k)
    elif k <= export_k:
        result = serve(user_id=users)
    elif "recommend_k_excluding" in loaded.signatures:
        result = loaded.signatures["recommend_k_excluding"](
            user_id=users, k=tf.constant(k, tf.int32), exclude_item_ids=tf.zeros([1, 0], tf.string)
        )
    else:
        raise UserError(
            f"-k {k}: {version_dir} returns at most {export_k} items (exported with export.k={export_k}); "
            f"use -k {export_k} or re-export with --set export.k={k}"
        )
    ids = [i.decode("utf-8") for i in np.asarray(result["item_ids"])[0, :k]]
    scores = [float(s) for s in np.asarray(result["scores"])[0, :k]]
    titles = _titles(version_dir, set(ids))
    rows = [
        {"rank": r, "item_id": i, "title": titles.get(i, ""), "score": s}
        for r, (i, s) in enumerate(zip(ids, scores), start=1)
    ]

    source = " (ANN index)" if index else ""
    who = f"user {user_id!r}" if history is None else f"a history of {len(history)} items"
    print(f"top {len(rows)} items for {who} from {version_dir}{source}", file=out)
    if history is not None:
        unknown = sorted(set(history) - set(_titles(version_dir, set(history))))
        if unknown:
            print(
                f"note: {len(unknown)} of the history items are not in the model's catalogue and are ignored: "
                + ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else ""),
                file=out,
            )
    if history is None and hasattr(loaded, "user_index") and int(loaded.user_index(users).numpy()[0]) == 0:
        print(
            f"note: user {user_id!r} is not in the model's training data; these are the "
            "recommendations of the out-of-vocabulary (unknown) user",
            file=out,
        )
    if len(rows) < k:
        print(f"note: the catalogue has only {len(rows)} items", file=out)
    width_id = max([len("item_id")] + [len(r["item_id"]) for r in rows])
    print(f"{'rank':>4}  {'score':>10}  {'item_id':<{width_id}}  title", file=out)
    for r in rows:
        print(f"{r['rank']:>4}  {r['score']:>10.4f}  {r['item_id']:<{width_id}}  {r['title']}", file=out)
    return rows
