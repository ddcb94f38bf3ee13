"""Retrieval tasks: the IRNS loss.

The numerical kernels the loss runs on are public in
:mod:`tfrs_irns.tasks.kernels`.
"""

from tfrs_irns._lazy import lazy_names

# Loaded on first use (PEP 562): the package's params module, which the config imports, loads no TensorFlow.
__getattr__, __dir__, __all__ = lazy_names(__name__, """
    params: MODES default_logq NegativesParams
    irns: IRNSRetrieval
""")
