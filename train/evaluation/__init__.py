"""Judging models: metrics, figures, paired comparisons, the evaluation report."""

__all__ = ["comparison", "figures", "metrics", "report"]
