"""Retrieval tasks: the IRNS loss.

The numerical kernels the loss runs on are public in
:mod:`tfrs_irns.tasks.kernels`.
"""

from tfrs_irns.tasks.irns import MODES, IRNSRetrieval, default_logq

__all__ = ["MODES", "IRNSRetrieval", "default_logq"]
