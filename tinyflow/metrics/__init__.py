"""Evaluation metrics (flow errors against ground truth, GT-free focus ratios)."""
