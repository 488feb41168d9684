"""What the CLI runs besides training: model card, explanation pages, audit, evaluation, monitoring, scoring."""

__all__ = ["audit", "card", "evaluate", "monitor", "pages", "score"]
