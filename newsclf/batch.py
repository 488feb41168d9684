"""Batch prediction: articles from text files, JSON Lines or a stream in, one JSON object per article out."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from newsclf._files import temporary_beside
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


def jsonl_articles(paths: Iterable[str], stdin: BinaryIO, warn: Callable[[str], None]) -> Iterator[Article]:
    """Every record of JSON Lines files (``-`` is standard input), read line by line as it is used, so
    memory stays flat however long the input; a bad line is an error naming its file and line when it is
    reached (read the files once before to check every line first).

    A record is an object with a ``text`` field and optionally ``id`` and ``title``; a title is
    put before the text, as in training. Blank lines are skipped.
    """
    for path in paths:
        source = path if path != "-" else "standard input"
        with _lines(path, stdin) as lines:
            for number, raw in enumerate(lines, start=1):
                try:
                    line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    warn(
                        f"{source} line {number} is not valid UTF-8 (byte {exc.start}); undecodable bytes were "
                        "replaced with U+FFFD"
                    )
                    line = raw.decode("utf-8-sig" if number == 1 else "utf-8", errors="replace")
                if line.strip():
                    yield _record(line, f"{source} line {number}")


def predictions(
    model: NewsClassifier,
    articles: Iterable[Article],
    top_k: int | None = None,
    explain: bool = False,
    paragraphs: bool = False,
) -> Iterator[dict[str, Any]]:
    """One JSON-ready dict per article: its id and prediction, plus terms and paragraphs if asked.

    ``topic_probabilities`` are listed most probable first, the ``top_k`` most probable only
    when ``top_k`` is given.
    """
    articles = iter(articles)
    while batch := list(itertools.islice(articles, _BATCH)):
        for article, prediction in zip(batch, model.predict([article.text for article in batch])):
            ranked = sorted(prediction["topic_probabilities"].items(), key=lambda item: -item[1])
            prediction["topic_probabilities"] = dict(ranked[:top_k] if top_k else ranked)
            row = {"id": article.id} | prediction
            if explain:
                row["explanation"] = model.explain(article.text)
            if paragraphs:
                row["paragraphs"] = model.paragraph_tones(article.text)
            yield row


def check_output(output: str) -> Path:
    """Refuse an output file the final write would fail on, before any prediction; returns the file to write.

    A symbolic link is followed, as ``open`` would. Refused: a missing folder, a folder or a device in
    the file's place, and a folder this process cannot create files in (tried, not guessed from modes).
    """
    target = Path(os.path.realpath(output))
    if not target.parent.is_dir():
        raise NewsclfError(
            f"cannot write {output}: folder {target.parent} does not exist; create it or choose another --output"
        )
    if target.is_dir():
        raise NewsclfError(
            f"cannot write {output}: it is a folder; pass a file name, such as {output}/predictions.jsonl"
        )
    if target.exists() and not target.is_file():
        raise NewsclfError(
            f"cannot write {output}: it is not a regular file; omit --output to write to standard output"
        )
    probe = temporary_beside(target)
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as exc:
        raise NewsclfError(
            f"cannot write {output}: cannot create files in {target.parent} ({exc.strerror}); "
            "check its permissions or choose another --output"
        ) from None
    os.unlink(probe)
    return target


def presented(
    rows: Iterable[dict[str, Any]], digits: int | None = 4, threshold: float | None = None
) -> Iterator[dict[str, Any]]:
    """Predictions as people read them: every probability and weight rounded to ``digits`` places (None
    keeps them whole), and with ``threshold`` a topic or tone whose probability is below it reported as
    undecided (None) and named in ``undecided``, as fastText's ``predict-prob k threshold`` abstains."""
    for row in rows:
        if threshold is not None:
            undecided = [task for task in ("topic", "tone") if (row.get(f"{task}_probability") or 1.0) < threshold]
            row |= {task: None for task in undecided} | {"undecided": undecided}
        yield _rounded(row, digits) if digits is not None else row


def _rounded(value: Any, digits: int) -> Any:
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {key: _rounded(item, digits) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item, digits) for item in value]
    return value


def write_jsonl(rows: Iterable[dict[str, Any]], output: str | None, stdout: TextIO, fmt: str = "jsonl") -> int:
    """Write one JSON object per line (``fmt`` ``csv``: a CSV of the scalar fields; ``table``: aligned
    columns for people) to ``output`` (replaced only when complete) or ``stdout``; returns the count.

    A new file gets the permissions ``open(output, "w")`` would give (0666 less the umask); a replaced file
    keeps its own.
    """
    write = _WRITERS[fmt]
    if output is None:
        return write(rows, stdout)
    target = check_output(output)
    mode = stat.S_IMODE(target.stat().st_mode) if target.is_file() else None
    temporary = temporary_beside(target)
    descriptor = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)  # the umask applies, as for open()
    try:
        if mode is not None:
            os.fchmod(descriptor, mode)
        with open(descriptor, "w", encoding="utf-8") as handle:
            count = write(rows, handle)
            handle.flush()
            os.fsync(handle.fileno())  # so a crash just after the rename cannot leave an empty file in its place
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
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
        if count % _BATCH == 0:  # a reader of a long stream gets each batch as it is predicted
            handle.flush()
    return count


# The fields CSV and table output show, in order; nested ones (probabilities per label, explanations) are JSON only.
_SCALARS = (
    "id",
    "topic",
    "topic_probability",
    "tone",
    "tone_probability",
    "tone_score",
    "tone_applies",
    "tone_applies_probability",
    "empty",
    "undecided",
)


def _write_csv(rows: Iterable[dict[str, Any]], handle: TextIO) -> int:
    import csv

    writer = csv.writer(handle, lineterminator="\n")
    count = 0
    for row in rows:
        if not count:
            columns = [name for name in _SCALARS if name in row]
            writer.writerow(columns)
        writer.writerow([_cell(row.get(name)) for name in columns])
        count += 1
    return count


def _write_table(rows: Iterable[dict[str, Any]], handle: TextIO) -> int:
    widths = {"id": 20, "topic": 26, "topic_probability": 6, "tone": 11, "tone_probability": 6}
    titles = {"id": "id", "topic": "topic", "topic_probability": "p", "tone": "tone", "tone_probability": "p"}
    count = 0
    for row in rows:
        if not count:
            columns = [name for name in widths if name in row]
            handle.write("  ".join(titles[name].ljust(widths[name]) for name in columns).rstrip() + "\n")
        cells = [_cell(row.get(name), "undecided" if name in ("topic", "tone") else "-") for name in columns]
        if row.get("tone_applies") is False and "tone" in columns:  # the axis does not apply to this article
            cells[columns.index("tone")] = "n/a"
        line = "  ".join(cell[: widths[name]].ljust(widths[name]) for name, cell in zip(columns, cells))
        handle.write(line.rstrip() + "\n")
        count += 1
    return count


def _cell(value: Any, missing: str = "") -> str:
    if value is None:
        return missing
    if isinstance(value, list):
        return ";".join(str(item) for item in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


_WRITERS = {"jsonl": _write, "csv": _write_csv, "table": _write_table}
FORMATS = tuple(_WRITERS)


@contextlib.contextmanager
def _lines(path: str, stdin: BinaryIO) -> Iterator[Iterator[bytes]]:
    """The lines of one input as bytes, read as they are asked for."""
    if path == "-":
        yield _checked_lines(stdin, "standard input")
        return
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise _unreadable(path, exc) from None
    with handle:
        yield _checked_lines(handle, path)


def _checked_lines(handle: BinaryIO, source: str) -> Iterator[bytes]:
    try:
        yield from handle
    except OSError as exc:  # standard input is a folder, say
        raise NewsclfError(f"cannot read {source}: {exc.strerror}; pipe the articles in, or pass files") from None


def _unreadable(path: str, exc: OSError) -> NewsclfError:
    if isinstance(exc, FileNotFoundError):
        return NewsclfError(f"input file not found: {path}")
    if isinstance(exc, IsADirectoryError):
        return NewsclfError(f"{path} is a folder; pass the article files inside it")
    return NewsclfError(f"cannot read {path}: {exc.strerror}")


def _read(path: str, stdin: BinaryIO) -> bytes:
    if path == "-":
        try:
            return stdin.read()
        except OSError as exc:  # standard input is a folder, say
            raise NewsclfError(f"cannot read standard input: {exc.strerror}; pipe the articles in") from None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc) from None


def _record(line: str, where: str) -> Article:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise NewsclfError(f"{where}: not valid JSON ({exc.msg}); each line must be one JSON object") from None
    except (ValueError, RecursionError) as exc:  # an integer of over 4300 digits, arrays nested thousands deep
        raise NewsclfError(
            f"{where}: cannot read this JSON ({str(exc).split(':')[0]}); quote very long numbers, nest less deeply"
        ) from None
    if not isinstance(record, dict):
        raise NewsclfError(
            f'{where}: a JSON {type(record).__name__}, not an object such as {{"id": 1, "text": "..."}}'
        )
    if "text" not in record:
        raise NewsclfError(
            f'{where}: no "text" field (fields: {sorted(record)}); each record needs the article\'s text'
        )
    _require_json_id(record.get("id"), where)
    text = record["text"]
    # Only a text gets its title; anything else is left for the model to read (None as empty, else str()).
    return Article(record.get("id"), article_text(record.get("title"), text) if isinstance(text, str) else text)


def _require_json_id(value: Any, where: str) -> None:
    """An id is echoed in the output, so it must be a JSON value: any, except that Python's reader also
    accepts NaN and Infinity, which JSON has not."""
    try:
        json.dumps(value, allow_nan=False)
    except (ValueError, RecursionError):
        raise NewsclfError(
            f"{where}: the id holds NaN or Infinity (or is nested too deeply), which JSON output cannot carry; "
            "use a string or a finite number"
        ) from None
