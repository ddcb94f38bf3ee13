"""Full-corpus retrieval evaluation: ranking, metrics, protocol and baselines."""

from tfrs_irns._lazy import lazy_names

# Public name -> the module that defines it, loaded on first use (PEP 562): the
# package's params module, which the config imports, loads no TensorFlow.
_EXPORTS = {
    "CHUNK_SIZE": "tfrs_irns.evaluation.ranking",
    "DEFAULT_KS": "tfrs_irns.evaluation.evaluate",
    "ProtocolArgs": "tfrs_irns.evaluation.evaluate",
    "TIE_RULE": "tfrs_irns.evaluation.ranking",
    "UNRANKABLE": "tfrs_irns.evaluation.ranking",
    "coverage": "tfrs_irns.evaluation.metrics",
    "embed_all": "tfrs_irns.evaluation.evaluate",
    "evaluate_embeddings": "tfrs_irns.evaluation.evaluate",
    "evaluate_model": "tfrs_irns.evaluation.evaluate",
    "evaluate_on_split": "tfrs_irns.evaluation.evaluate",
    "hit_rate": "tfrs_irns.evaluation.metrics",
    "mrr": "tfrs_irns.evaluation.metrics",
    "ndcg": "tfrs_irns.evaluation.metrics",
    "popular_baseline": "tfrs_irns.evaluation.baselines",
    "popular_baseline_arrays": "tfrs_irns.evaluation.baselines",
    "popularity_embeddings": "tfrs_irns.evaluation.baselines",
    "popularity_head": "tfrs_irns.evaluation.metrics",
    "rank_and_top_k": "tfrs_irns.evaluation.ranking",
    "recall": "tfrs_irns.evaluation.metrics",
    "target_ranks": "tfrs_irns.evaluation.ranking",
    "top_k": "tfrs_irns.evaluation.ranking",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)
