"""tfrs_irns: two-tower retrieval with In-batch Random Negative Sampling.

Importing the package first pins Keras 2 (``tf-keras``), which TFRS 0.7.7
needs; see :mod:`tfrs_irns._keras`. The names below are the public API, in
the order data flows through them.
"""

from tfrs_irns import _keras  # noqa: F401  (must run before anything touches tf.keras)

from tfrs_irns.config import Config, load_config  # noqa: E402
from tfrs_irns.data.prepare import PreparedData, prepare_data  # noqa: E402
from tfrs_irns.batching.pipeline import TrainPipeline  # noqa: E402
from tfrs_irns.batching.gcbs_callback import GCBSCallback  # noqa: E402
from tfrs_irns.sampling import UniformSampler, UnigramSampler  # noqa: E402
from tfrs_irns.tasks import IRNSRetrieval  # noqa: E402
from tfrs_irns.layers import CandidateTower, QueryTower  # noqa: E402
from tfrs_irns.models import TwoTowerModel, build_model  # noqa: E402
from tfrs_irns.evaluation import evaluate_model, popular_baseline  # noqa: E402
from tfrs_irns.evaluation.validation import EpochMetrics  # noqa: E402
from tfrs_irns.export import export_model, recommend  # noqa: E402
from tfrs_irns.training import load_run, train  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Config",
    "load_config",
    "PreparedData",
    "prepare_data",
    "TrainPipeline",
    "GCBSCallback",
    "UniformSampler",
    "UnigramSampler",
    "IRNSRetrieval",
    "CandidateTower",
    "QueryTower",
    "TwoTowerModel",
    "build_model",
    "evaluate_model",
    "popular_baseline",
    "EpochMetrics",
    "export_model",
    "recommend",
    "load_run",
    "train",
]
