"""Reading labelled articles: sources, row rules, in-memory loading, the streamed reader, review, de-duplication."""

__all__ = ["articles", "corrections", "dedup", "loading", "sources", "stream", "streaming_dedup"]
