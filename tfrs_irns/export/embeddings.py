"""The item embeddings of an export, in files other tools read.

At a large catalogue, retrieval is served by an approximate nearest-neighbour
index over the item embeddings (FAISS, ScaNN, a vector database), built
offline and refreshed on its own schedule. So an export also hands the item
embeddings over, beside the version folder:

    <base_dir>/<name>/<version>/              the SavedModel TF Serving loads
    <base_dir>/<name>/<version>.embeddings/   item_embeddings.npy   float32 [N, d] (numpy.load)
                                              item_ids.tsv          item_id <TAB> title, row i = line i
                                              vectors.tsv, metadata.tsv   TensorBoard projector (when asked)
                                              faiss.index, index.json     the ANN index (export.index: faiss)

*Beside*, not in the version folder nor in its ``assets.extra/``: TF Serving
(and whatever copies models to serving replicas) loads or copies the whole
version folder, and these files are as large as the model again (256 MB for
1M items at d = 64, plus the index) while serving never reads them; an index
can also be rebuilt without touching the model. TF Serving only loads
integer-named folders, so ``<version>.embeddings`` is invisible to it. The
folder appears whole or not at all (written under a temporary name, then
renamed).
"""

from __future__ import annotations

import os
import shutil
from typing import Callable, Optional, Sequence

import numpy as np

SUFFIX = ".embeddings"
EMBEDDINGS_FILE = "item_embeddings.npy"
IDS_FILE = "item_ids.tsv"
PROJECTOR_VECTORS = "vectors.tsv"
PROJECTOR_METADATA = "metadata.tsv"


def embeddings_dir(version_dir: str) -> str:
    """The folder beside ``version_dir`` holding its item embeddings."""
    return os.path.normpath(version_dir) + SUFFIX


def _clean(text: str) -> str:
    return str(text).replace("\t", " ").replace("\n", " ").replace("\r", " ")


def write_item_embeddings(
    version_dir: str,
    item_embeddings: np.ndarray,
    item_ids: Sequence[str],
    titles: Optional[Sequence[str]] = None,
    projector: bool = False,
    extra: Optional[Callable[[str], None]] = None,
) -> str:
    """Write ``item_embeddings`` (``[N, d]``, no OOV row) and their ids beside
    ``version_dir``; ``extra(folder)`` may add files (an index) before the
    folder is published. Returns the folder."""
    emb = np.asarray(item_embeddings, np.float32)
    if emb.ndim != 2 or emb.shape[0] != len(item_ids):
        raise ValueError(f"item_embeddings has shape {emb.shape}, expected [{len(item_ids)}, d]")
    if titles is not None and len(titles) != len(item_ids):
        raise ValueError(f"titles has {len(titles)} entries, expected {len(item_ids)}")
    final = embeddings_dir(version_dir)
    if os.path.exists(final):
        raise ValueError(f"{final} already exists")
    tmp = os.path.join(os.path.dirname(final), f".tmp-{os.path.basename(final)}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        np.save(os.path.join(tmp, EMBEDDINGS_FILE), emb)
        names = [_clean(t) for t in titles] if titles is not None else [""] * len(item_ids)
        with open(os.path.join(tmp, IDS_FILE), "w", encoding="utf-8", newline="\n") as fh:
            fh.writelines(f"{i}\t{t}\n" for i, t in zip(item_ids, names))
        if projector:
            np.savetxt(os.path.join(tmp, PROJECTOR_VECTORS), emb, fmt="%.6g", delimiter="\t")
            with open(os.path.join(tmp, PROJECTOR_METADATA), "w", encoding="utf-8", newline="\n") as fh:
                fh.write("item_id\ttitle\n")  # two columns: the projector wants a header
                fh.writelines(f"{i}\t{t}\n" for i, t in zip(item_ids, names))
        if extra is not None:
            extra(tmp)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_item_ids(folder: str) -> list[str]:
    """The item id of each embedding row of an embeddings folder."""
    with open(os.path.join(folder, IDS_FILE), encoding="utf-8") as fh:
        return [line.rstrip("\n").partition("\t")[0] for line in fh]


def read_item_embeddings(folder: str) -> tuple[np.ndarray, list[str]]:
    """``(embeddings [N, d], item ids [N])`` of an embeddings folder."""
    return np.load(os.path.join(folder, EMBEDDINGS_FILE)), read_item_ids(folder)
