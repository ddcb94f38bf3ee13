"""tfrs_irns: two-tower retrieval with In-batch Random Negative Sampling.

Importing the package first pins Keras 2 (``tf-keras``), which TFRS 0.7.7
needs; see :mod:`tfrs_irns._keras`.
"""

from tfrs_irns import _keras  # noqa: F401  (must run before anything touches tf.keras)

__version__ = "0.1.0"
