"""Scoring primitives: metrics with confidence intervals, and string similarity."""
from harness.scoring._metrics import CorpusMetric, Metric, MetricValue, PassAtK, accuracy, bootstrap_ci, mean, pass_at_k, wilson
from harness.scoring._text import levenshtein_similarity

__all__ = ["CorpusMetric", "Metric", "MetricValue", "PassAtK", "accuracy", "bootstrap_ci", "levenshtein_similarity", "mean", "pass_at_k", "wilson"]
