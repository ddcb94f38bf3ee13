"""An approximate nearest-neighbour index over the item embeddings (FAISS).

Brute force scores every item for every query: exact, and at 1M items a
memory-bound scan of the whole table per call. Production retrieval at
catalogue scale asks an ANN index instead: a graph (HNSW: greedy search over
a navigable small-world graph, ``ef_search`` candidates kept) or an inverted
file with product quantisation (IVF-PQ: score ``nprobe`` of ``nlist``
clusters, each vector compressed to ``pq_m`` bytes). Both trade recall for
speed, so an index is only worth what its recall against exact brute force
says: :func:`recall_at_k` measures that on real queries.

The score is the two-tower one, the inner product (``METRIC_INNER_PRODUCT``).
``faiss-cpu`` is an optional dependency (``pip install -e '.[ann]'``); it is
imported only when an index is built or loaded. ``kind="flat"`` is exact
(a brute-force FAISS index), for tests and small catalogues.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tfrs_irns.errors import UserError
from tfrs_irns.topk import rank_top_k

INDEX_FILE = "faiss.index"
INFO_FILE = "index.json"
KINDS = ("flat", "hnsw", "ivfpq")


def import_faiss():
    """The ``faiss`` module, or a :class:`UserError` saying how to install it."""
    try:
        import faiss  # noqa: PLC0415
    except ImportError:
        raise UserError(
            "the ANN index needs faiss, which is not installed: pip install -e '.[ann]' (or pip install faiss-cpu)"
        ) from None
    return faiss


@dataclass(frozen=True)
class AnnParams:
    """How the index is built and searched (see the module doc for what each trades)."""

    kind: str = "hnsw"
    hnsw_m: int = 32
    ef_construction: int = 40
    ef_search: int = 128
    nlist: int = 1024
    nprobe: int = 32
    pq_m: int = 16
    pq_bits: int = 8

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        for name in ("hnsw_m", "ef_construction", "ef_search", "nlist", "nprobe", "pq_m", "pq_bits"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


class AnnIndex:
    """A FAISS inner-product index over ``[N, d]`` item embeddings; rows are
    0-based item rows (item index - 1)."""

    def __init__(self, params: AnnParams, index: Any, info: dict[str, Any]) -> None:
        self.params, self.index, self.info = params, index, info

    @classmethod
    def build(cls, items: np.ndarray, params: AnnParams, seed: int = 0) -> "AnnIndex":
        faiss = import_faiss()
        x = np.ascontiguousarray(items, np.float32)
        n, d = x.shape
        start = time.perf_counter()
        info: dict[str, Any] = {"kind": params.kind, "num_items": n, "dim": d}
        if params.kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif params.kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = params.ef_construction
            index.hnsw.efSearch = params.ef_search
        else:
            if d % params.pq_m:
                raise ValueError(f"pq_m ({params.pq_m}) must divide the embedding dimension ({d})")
            if n < 2**params.pq_bits:
                raise UserError(
                    f"an ivfpq index needs at least 2**pq_bits = {2 ** params.pq_bits} items, the catalogue has {n}; "
                    "use kind hnsw or flat, or a smaller pq_bits"
                )
            # FAISS wants ~39 training points per centroid: fewer lists on small catalogues.
            nlist = max(1, min(params.nlist, n // 39))
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFPQ(quantizer, d, nlist, params.pq_m, params.pq_bits, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(seed)
            sample = x[rng.choice(n, size=min(n, 256 * nlist, max(nlist * 39, 2**params.pq_bits * 39)), replace=False)]
            index.train(sample)
            index.nprobe = min(params.nprobe, nlist)
            info["nlist"], info["nprobe"] = nlist, int(index.nprobe)
        index.add(x)
        info["build_seconds"] = round(time.perf_counter() - start, 3)
        info["params"] = asdict(params)
        return cls(params, index, info)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores [B, k], rows [B, k])``; row -1 (score -inf) when fewer than k are found."""
        scores, rows = self.index.search(np.ascontiguousarray(queries, np.float32), int(k))
        scores = np.where(rows < 0, -np.inf, scores)
        return scores, rows

    @property
    def size_bytes(self) -> int:
        faiss = import_faiss()
        return int(faiss.serialize_index(self.index).size)

    def save(self, folder: str) -> None:
        faiss = import_faiss()
        faiss.write_index(self.index, os.path.join(folder, INDEX_FILE))
        with open(os.path.join(folder, INFO_FILE), "w", encoding="utf-8") as fh:
            json.dump(self.info, fh, indent=2)

    @classmethod
    def load(cls, folder: str) -> "AnnIndex":
        faiss = import_faiss()
        path = os.path.join(folder, INDEX_FILE)
        if not os.path.isfile(path):
            raise UserError(f"{folder}: no ANN index ({INDEX_FILE}); export with export.index: faiss")
        with open(os.path.join(folder, INFO_FILE), encoding="utf-8") as fh:
            info = json.load(fh)
        params = AnnParams(**info["params"])
        index = faiss.read_index(path)
        if params.kind == "hnsw":
            index.hnsw.efSearch = params.ef_search
        elif params.kind == "ivfpq":
            index.nprobe = info["nprobe"]
        return cls(params, index, info)


def exact_top_k(queries: np.ndarray, items: np.ndarray, k: int, rows_per_block: int = 256) -> np.ndarray:
    """Rows of the exact top ``k`` items by inner product (ties to the lower row):
    the package's ranking primitive (:func:`tfrs_irns.topk.rank_top_k`), ``rows_per_block`` queries per chunk."""
    _, rows, _ = rank_top_k(queries, items, k, chunk_size=rows_per_block)
    return rows


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each row's exact top k that the approximate answer holds."""
    if len(exact) == 0:
        return float("nan")
    k = exact.shape[1]
    return float(np.mean([len(set(a.tolist()) & set(e.tolist())) / k for a, e in zip(approx, exact)]))
