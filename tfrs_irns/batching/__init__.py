"""Batching: which training examples share a batch, epoch by epoch."""
