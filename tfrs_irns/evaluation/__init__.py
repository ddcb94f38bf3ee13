"""Full-corpus retrieval evaluation: ranking, metrics, protocol and baselines."""

from tfrs_irns._lazy import lazy_names

# Loaded on first use (PEP 562): the package's params module, which the config imports, loads no TensorFlow.
__getattr__, __dir__, __all__ = lazy_names(__name__, """
    ranking: CHUNK_SIZE TIE_RULE UNRANKABLE rank_and_top_k target_ranks top_k
    evaluate: DEFAULT_KS ProtocolArgs embed_all evaluate_embeddings evaluate_model evaluate_on_split
    metrics: coverage hit_rate mrr ndcg popularity_head recall
    baselines: popular_baseline popular_baseline_arrays popularity_embeddings
""")
