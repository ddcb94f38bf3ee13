"""Retrieval tasks: the IRNS loss."""

from tfrs_irns.tasks.irns import MODES, IRNSRetrieval, irns_task_from_config, softmax_cross_entropy

__all__ = ["MODES", "IRNSRetrieval", "irns_task_from_config", "softmax_cross_entropy"]
