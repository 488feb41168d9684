"""What the CLI runs besides training: card, explanation pages, audit, evaluation, monitoring, selection, scoring."""

__all__ = ["audit", "card", "evaluate", "monitor", "pages", "score", "select"]
