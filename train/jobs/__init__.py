"""What the CLI runs besides training: card, pages, audit, data checks, evaluation, init, monitor, select, scoring."""

__all__ = ["audit", "card", "check_data", "evaluate", "init", "monitor", "pages", "score", "select"]
