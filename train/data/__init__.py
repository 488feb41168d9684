"""Reading labelled articles: sources, row rules, loading, the streamed reader, review, new labels, dedup."""

__all__ = ["added", "articles", "corrections", "dedup", "loading", "sources", "stream", "streaming_dedup"]
