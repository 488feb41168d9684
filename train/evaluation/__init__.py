"""Judging models: metrics, figures, paired comparisons, the evaluation report."""

__all__ = ["comparison", "evaluate", "figures", "metrics", "report", "short_texts"]
