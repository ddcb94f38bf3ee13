"""In-graph negative samplers for IRNS."""

from tfrs_irns.sampling.samplers import NegativeSampler, UniformSampler, UnigramSampler

__all__ = ["NegativeSampler", "UniformSampler", "UnigramSampler"]
