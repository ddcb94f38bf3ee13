"""Retrieval tasks: the IRNS loss."""

from tfrs_irns.tasks.irns import MODES, IRNSRetrieval, irns_task_from_config, logsumexp_excluding, masked_logsumexp

__all__ = ["MODES", "IRNSRetrieval", "irns_task_from_config", "masked_logsumexp", "logsumexp_excluding"]
