"""The ANN index's settings, defined once: the ``export.ann`` config section
and the argument of :class:`~tfrs_irns.export.ann.AnnIndex`. No TensorFlow,
no faiss: the config imports it (``*/params.py`` are layer 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tfrs_irns._params import POSITIVE, Params, param

#: The fields that shape the index itself (what ``index.json`` records); the others steer the export's check of it.
INDEX_FIELDS = ("kind", "hnsw_m", "ef_construction", "ef_search", "nlist", "nprobe", "pq_m", "pq_bits")


@dataclass(frozen=True)
class AnnParams(Params):
    """The approximate nearest-neighbour index of ``export.index: faiss`` (inner product over the item embeddings).

    Serving a large catalogue cannot score every item per query; an ANN index
    answers from a graph (HNSW) or compressed inverted lists (IVF-PQ) at a
    recall the export measures against exact search and tunes up to
    ``target_recall``.

    Raises:
      ValueError: naming the field out of range, when built.
    """

    kind: Literal["hnsw", "ivfpq", "flat"] = param(
        "hnsw", "hnsw: a navigable small-world graph; ivfpq: inverted lists of product-quantised vectors; "
        "flat: exact (brute force inside FAISS)"
    )
    hnsw_m: int = param(32, "hnsw: graph neighbours per node (memory and recall grow with it)", check=POSITIVE)
    ef_construction: int = param(
        40, "hnsw: candidates kept while building (build time and recall grow with it; FAISS default 40)",
        check=POSITIVE,
    )
    ef_search: int = param(
        128, "hnsw: candidates kept while searching (latency and recall grow with it)", check=POSITIVE
    )
    nlist: int = param(1024, "ivfpq: inverted lists (at most one per 39 items)", check=POSITIVE)
    nprobe: int = param(32, "ivfpq: lists scored per query (latency and recall grow with it)", check=POSITIVE)
    pq_m: int = param(16, "ivfpq: bytes per compressed vector; must divide model.embedding_dim", check=POSITIVE)
    pq_bits: int = param(
        8, "ivfpq: bits per sub-quantiser code", check=(lambda v: 1 <= v <= 16, "must be in [1, 16]")
    )
    recall_users: int = param(
        1000, "test users (at most) whose index answers are compared with exact brute force", check=POSITIVE
    )
    target_recall: float = param(
        0.95, "the export raises ef_search (hnsw) or nprobe (ivfpq), doubling it, on up to recall_users sample "
        "users until the index's recall@100 against exact search reaches this (or says in metrics.json that it "
        "cannot); 1.0 asks for exact answers", check=(lambda v: 0 < v <= 1, "must be in (0, 1]")
    )
