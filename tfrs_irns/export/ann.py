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
An index keeps two promises here. **Recall**: :meth:`AnnIndex.tune` raises the
search parameter (``ef_search`` for HNSW, ``nprobe`` for IVF-PQ), doubling it,
on sample queries until recall@k against exact search reaches a target (the
export's ``export.ann.target_recall``), or says it cannot (IVF-PQ's compressed
vectors cap what any ``nprobe`` finds); the tuned value is saved with the
index. **Count**: a graph walk or the probed lists can hold fewer than ``k``
items (``k`` = 3000 over 4,926 items found 2,281); a row that comes back short
is answered by exact search over the index's own vectors, so :meth:`AnnIndex.search`
returns ``min(k, N)`` items for every query.

``faiss-cpu`` is an optional dependency (``pip install -e '.[ann]'``); it is
imported only when an index is built or loaded. ``kind="flat"`` is exact
(a brute-force FAISS index), for tests and small catalogues.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from typing import Any, Optional

import numpy as np

from tfrs_irns import _faiss
from tfrs_irns.errors import UserError
from tfrs_irns.export.params import INDEX_FIELDS, AnnParams
from tfrs_irns.topk import rank_top_k

INDEX_FILE = "faiss.index"
INFO_FILE = "index.json"


def import_faiss() -> Any:
    """The ``faiss`` module, or a :class:`UserError` saying how to install it."""
    return _faiss.import_faiss("the ANN index")


class AnnIndex:
    """A FAISS inner-product index over ``[N, d]`` item embeddings; rows are
    0-based item rows (item index - 1)."""

    def __init__(self, params: AnnParams, index: Any, info: dict[str, Any], items: Optional[np.ndarray] = None) -> None:
        self.params, self.index, self.info = params, index, info
        # The [N, d] vectors, for exact answers where the index finds fewer than k (kept at build,
        # read from the embeddings file beside the index when loaded).
        self._items = items
        self._folder: Optional[str] = None

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
            # An inner-product HNSW graph is not navigable (no triangle inequality: a few long
            # vectors are everyone's best neighbour), and no ef_search finds what the graph lost:
            # 0.90 recall@100 at ef_search = N on clustered vectors. Searched as L2 over one extra
            # coordinate sqrt(R^2 - |x|^2) (R the largest norm; the query's is 0), the nearest items are
            # exactly the highest inner products (Bachrach et al. 2014), and the graph navigable.
            norms = np.einsum("ij,ij->i", x, x)
            info["max_norm_sq"] = float(norms.max(initial=0.0))
            x = _augment(x, info["max_norm_sq"])
            index = faiss.IndexHNSWFlat(d + 1, params.hnsw_m)
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
        info["params"] = {name: value for name, value in asdict(params).items() if name in INDEX_FIELDS}
        return cls(params, index, info, np.ascontiguousarray(items, np.float32))

    @property
    def search_param(self) -> Optional[str]:
        """The parameter :meth:`tune` raises: ``ef_search``, ``nprobe``, or None (flat is exact)."""
        return {"hnsw": "ef_search", "ivfpq": "nprobe"}.get(self.params.kind)

    def _get(self) -> int:
        return int(self.index.hnsw.efSearch if self.params.kind == "hnsw" else self.index.nprobe)

    def _set(self, value: int) -> None:
        if self.params.kind == "hnsw":
            self.index.hnsw.efSearch = int(value)
        else:
            self.index.nprobe = int(value)
        self.info[str(self.search_param)] = int(value)

    def tune(self, queries: np.ndarray, k: int, target: float, max_value: Optional[int] = None) -> dict[str, Any]:
        """Double the search parameter until recall@k of ``queries`` against exact
        search reaches ``target``; returns (and records in ``info["tuning"]``) the
        steps, the value kept and whether the target was reached. Never lowers
        the configured value. The cap: the catalogue size for ``ef_search``,
        ``nlist`` for ``nprobe`` (or ``max_value``)."""
        if not 0 < target <= 1:
            raise ValueError(f"target must be in (0, 1], got {target}")
        queries = np.ascontiguousarray(queries, np.float32)
        n = int(self.index.ntotal)
        k = min(int(k), n)
        exact = exact_top_k(queries, self._vectors(), k)
        name = self.search_param
        steps: list[dict[str, Any]] = []
        if name is None:  # flat: exact already
            recall = recall_at_k(self._search(queries, k)[1], exact)
            steps.append({"recall": round(recall, 4)})
        else:
            cap = int(max_value or (n if name == "ef_search" else self.index.nlist))
            value = self._get()
            while True:
                self._set(value)
                recall = recall_at_k(self._search(queries, k)[1], exact)
                steps.append({name: value, "recall": round(recall, 4)})
                if recall >= target or value >= cap:
                    break
                value = min(2 * value, cap)
        reached = bool(recall >= target)
        tuning: dict[str, Any] = {
            "target_recall": target, f"recall@{k}": round(recall, 4), "reached": reached,
            "queries": int(len(queries)), "steps": steps,
        }
        if name is not None:
            tuning[name] = self._get()
        if not reached:
            tuning["why"] = (
                f"{name or 'the index'} at its cap ({self._get() if name else '-'}) reaches recall@{k} {recall:.4f} < {target}"
                + ("; product quantisation loses it: raise pq_m or use kind hnsw" if self.params.kind == "ivfpq" else "")
            )
        self.info["tuning"] = tuning
        return tuning

    def _vectors(self) -> np.ndarray:
        if self._items is None:
            from tfrs_irns.export.embeddings import EMBEDDINGS_FILE  # noqa: PLC0415

            path = os.path.join(self._folder or "", EMBEDDINGS_FILE)
            if self._folder is None or not os.path.isfile(path):
                raise UserError(f"{self._folder}: the index needs its item embeddings ({EMBEDDINGS_FILE}) beside it")
            self._items = np.ascontiguousarray(np.load(path), np.float32)
        return self._items

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The index's own answer: inner products, rows (-1 where it found nothing)."""
        if "max_norm_sq" not in self.info:
            return self.index.search(queries, k)
        # L2 over the augmented vectors: |q|^2 + R^2 - 2 q.x, so q.x = (|q|^2 + R^2 - distance) / 2.
        distances, rows = self.index.search(_augment(queries, None), k)
        norms = np.einsum("ij,ij->i", queries, queries)[:, None]
        return (norms + self.info["max_norm_sq"] - distances) / 2, rows

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores [B, k], rows [B, k])``, best first. Every row holds
        ``min(k, N)`` items: rows the index answers short are answered by exact
        search; row -1 (score -inf) pads only past the catalogue's end."""
        queries = np.ascontiguousarray(queries, np.float32)
        scores, rows = self._search(queries, int(k))
        short = np.flatnonzero((rows[:, : min(int(k), int(self.index.ntotal))] < 0).any(axis=1))
        if len(short):
            items = self._vectors()
            exact = exact_top_k(queries[short], items, int(k))
            rows[short, : exact.shape[1]] = exact
            scores[short, : exact.shape[1]] = np.take_along_axis(queries[short] @ items.T, exact, axis=1)
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
            raise UserError(f"{folder}: no ANN index ({INDEX_FILE}); the export was written without one")
        with open(os.path.join(folder, INFO_FILE), encoding="utf-8") as fh:
            info = json.load(fh)
        params = AnnParams(**info["params"])
        index = faiss.read_index(path)
        if params.kind == "hnsw":
            index.hnsw.efSearch = int(info.get("ef_search", params.ef_search))  # the tuned value, if tuned
        elif params.kind == "ivfpq":
            index.nprobe = info["nprobe"]
        loaded = cls(params, index, info)
        loaded._folder = folder
        return loaded


def _augment(x: np.ndarray, max_norm_sq: Optional[float]) -> np.ndarray:
    """Items: ``[x, sqrt(R^2 - |x|^2)]``; queries (``max_norm_sq`` None): ``[x, 0]``."""
    extra = np.zeros((len(x), 1), np.float32)
    if max_norm_sq is not None:
        extra[:, 0] = np.sqrt(np.maximum(max_norm_sq - np.einsum("ij,ij->i", x, x), 0.0))
    return np.ascontiguousarray(np.concatenate([x, extra], axis=1), np.float32)


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
