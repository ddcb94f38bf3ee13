"""Retrieval tasks: the IRNS loss.

The numerical kernels the loss runs on are public in
:mod:`tfrs_irns.tasks.kernels`.
"""

from tfrs_irns._lazy import lazy_names

# Public name -> the module that defines it, loaded on first use (PEP 562): the
# package's params module, which the config imports, loads no TensorFlow.
_EXPORTS = {
    "MODES": "tfrs_irns.tasks.params",
    "IRNSRetrieval": "tfrs_irns.tasks.irns",
    "default_logq": "tfrs_irns.tasks.params",
    "NegativesParams": "tfrs_irns.tasks.params",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)
