"""What the CLI runs besides training: card, pages, audit, evaluation, init, monitoring, selection, scoring."""

__all__ = ["audit", "card", "evaluate", "init", "monitor", "pages", "score", "select"]
