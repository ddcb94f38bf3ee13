"""Full-corpus retrieval evaluation: ranking, metrics, protocol and baselines."""

from tfrs_irns.evaluation.baselines import popular_baseline, popular_baseline_arrays, popularity_embeddings
from tfrs_irns.evaluation.evaluate import (
    DEFAULT_KS,
    ProtocolArgs,
    embed_all,
    evaluate_embeddings,
    evaluate_model,
    evaluate_on_split,
)
from tfrs_irns.evaluation.metrics import coverage, hit_rate, mrr, ndcg, popularity_head, recall
from tfrs_irns.evaluation.ranking import CHUNK_SIZE, TIE_RULE, UNRANKABLE, rank_and_top_k, target_ranks, top_k

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_KS",
    "ProtocolArgs",
    "TIE_RULE",
    "UNRANKABLE",
    "coverage",
    "embed_all",
    "evaluate_embeddings",
    "evaluate_model",
    "evaluate_on_split",
    "hit_rate",
    "mrr",
    "ndcg",
    "popular_baseline",
    "popular_baseline_arrays",
    "popularity_embeddings",
    "popularity_head",
    "rank_and_top_k",
    "recall",
    "target_ranks",
    "top_k",
]
