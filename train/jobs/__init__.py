"""What the CLI runs besides training: the model card, explanation pages, label audit, evaluation, cluster scoring."""

__all__ = ["audit", "card", "evaluate", "pages", "score"]
