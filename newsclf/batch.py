"""Batch prediction: articles from text files, JSON Lines or a stream in, one JSON object per article out."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from newsclf.cleaning import article_text
from newsclf.errors import NewsclfError
from newsclf.model import NewsClassifier

# Articles predicted per call: large enough for batch speed, small enough to keep memory flat.
_BATCH = 1000


@dataclass(frozen=True)
class Article:
    """One article to predict and the ``id`` its answer carries."""

    id: Any
    text: Any  # what the record holds; the model reads None as empty and other values as str()


def read_text(data: bytes, source: str, warn: Callable[[str], None]) -> str:
    """Decode one input as UTF-8; undecodable bytes become U+FFFD, with a warning naming ``source``."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        warn(f"{source} is not valid UTF-8 (byte {exc.start}); undecodable bytes were replaced with U+FFFD")
        return data.decode("utf-8-sig", errors="replace")


def text_articles(paths: Iterable[str], stdin: BinaryIO, warn: Callable[[str], None]) -> list[Article]:
    """One article per plain-text file (``-`` is standard input); the id is the path as given."""
    return [
        Article(path, read_text(_read(path, stdin), path if path != "-" else "standard input", warn)) for path in paths
    ]


def jsonl_articles(paths: Iterable[str], stdin: BinaryIO, warn: Callable[[str], None]) -> list[Article]:
    """Every record of JSON Lines files (``-`` is standard input), read and checked before any prediction.

    A record is an object with a ``text`` field and optionally ``id`` and ``title``; a title is
    put before the text, as in training. Blank lines are skipped.
    """
    articles = []
    for path in paths:
        source = path if path != "-" else "standard input"
        for number, line in enumerate(read_text(_read(path, stdin), source, warn).splitlines(), start=1):
            if line.strip():
                articles.append(_record(line, f"{source} line {number}"))
    return articles


def predictions(
    model: NewsClassifier,
    articles: list[Article],
    top_k: int | None = None,
    explain: bool = False,
    paragraphs: bool = False,
) -> Iterator[dict[str, Any]]:
    """One JSON-ready dict per article: its id and prediction, plus terms and paragraphs if asked.

    ``topic_probabilities`` are listed most probable first, the ``top_k`` most probable only
    when ``top_k`` is given.
    """
    for start in range(0, len(articles), _BATCH):
        batch = articles[start : start + _BATCH]
        for article, prediction in zip(batch, model.predict([article.text for article in batch])):
            ranked = sorted(prediction["topic_probabilities"].items(), key=lambda item: -item[1])
            prediction["topic_probabilities"] = dict(ranked[:top_k] if top_k else ranked)
            row = {"id": article.id} | prediction
            if explain:
                row["explanation"] = model.explain(article.text)
            if paragraphs:
                row["paragraphs"] = model.paragraph_tones(article.text)
            yield row


def write_jsonl(rows: Iterable[dict[str, Any]], output: str | None, stdout: TextIO) -> int:
    """Write one JSON object per line to ``output`` (replaced only when complete) or ``stdout``; returns the count."""
    if output is None:
        return _write(rows, stdout)
    target = Path(output)
    if not target.parent.is_dir():
        raise NewsclfError(
            f"cannot write {output}: folder {target.parent} does not exist; create it or choose another --output"
        )
    handle = tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=target.parent, prefix=f".{target.name}.", delete=False
    )
    try:
        with handle:
            count = _write(rows, handle)
        os.replace(handle.name, target)
    except BaseException:
        os.unlink(handle.name)
        raise
    return count


def _write(rows: Iterable[dict[str, Any]], handle: TextIO) -> int:
    count = 0
    for row in rows:
        line = json.dumps(row, ensure_ascii=False, allow_nan=False)
        if not line.isascii():  # a lone surrogate (in an id, say) cannot be written as UTF-8
            line = line.encode("utf-8", errors="replace").decode("utf-8")
        handle.write(line + "\n")
        count += 1
    return count


def _read(path: str, stdin: BinaryIO) -> bytes:
    if path == "-":
        return stdin.read()
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise NewsclfError(f"input file not found: {path}") from None
    except IsADirectoryError:
        raise NewsclfError(f"{path} is a folder; pass the article files inside it") from None
    except OSError as exc:
        raise NewsclfError(f"cannot read {path}: {exc.strerror}") from None


def _record(line: str, where: str) -> Article:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise NewsclfError(f"{where}: not valid JSON ({exc.msg}); each line must be one JSON object") from None
    if not isinstance(record, dict):
        raise NewsclfError(
            f'{where}: a JSON {type(record).__name__}, not an object such as {{"id": 1, "text": "..."}}'
        )
    if "text" not in record:
        raise NewsclfError(
            f'{where}: no "text" field (fields: {sorted(record)}); each record needs the article\'s text'
        )
    text = record["text"]
    # Only a text gets its title; anything else is left for the model to read (None as empty, else str()).
    return Article(record.get("id"), article_text(record.get("title"), text) if isinstance(text, str) else text)
