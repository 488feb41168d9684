"""The streamed reader: articles read from a source larger than memory, in batches, never all at once.

Rows come through ``datasets`` (its Arrow files read in batches into memory freed after each, see
:func:`_column_batches`) and are parsed by the rule in-memory loading uses
(:func:`newsclf.train.data.articles.parse_row`). :func:`scan` is the first pass over them: every
row checked, ids checked unique (8 bytes per article), texts cleaned and fingerprinted for
de-duplication (newsclf.train.data.streaming_dedup), then the split assigned (a stratified one
exactly as in memory); per article only a few bytes (labels, split, fingerprints) are kept. The
streaming fitter (newsclf.train.fit.streaming) reads the rows again with :func:`read_rows` on
every later pass.
"""

from __future__ import annotations

import contextlib
import glob
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from newsclf.cleaning import ArticleCleaner
from newsclf.errors import NewsclfError
from newsclf.train.config import DataConfig, ExperimentConfig
from newsclf.train.data.articles import SPLIT_NAMES, DataError, LoadReport, parse_row, require_columns, split_of
from newsclf.train.data.sources import SourceError, detect_format, read_dataset, scratch_prefix
from newsclf.train.data.sources import describe as describe_source
from newsclf.train.data.streaming_dedup import StreamingDeduplicator
from newsclf.train.progress import Meter

# Split codes of a scan, one per article: an article removed as a copy is DROPPED; CALIBRATION marks
# training articles the streaming fitter holds out of its epochs to calibrate on.
TRAIN, VALIDATION, TEST, DROPPED, CALIBRATION = 0, 1, 2, -1, 3
NO_TONE = -1
_GLOB_MARKS = "*?["
# glibc's mallopt parameter for the size from which blocks are mapped (and unmapped when freed) alone.
_M_MMAP_THRESHOLD = -3
# The one field of the row standing for a broken JSON Lines line in a marked copy (see _marked_copy).
BROKEN_LINE = "_newsclf_broken_line"
# Source file (path, mtime, size) -> its marked copy, and the temporary folder holding the copies.
_MARKED_COPIES: dict[tuple, str] = {}
_SCRATCH: list[Path] = []

__all__ = ["Rows", "Scan", "StreamingError", "iter_batches", "read_rows", "release_memory", "scan"]


class StreamingError(NewsclfError):
    """Data or a run that streaming training cannot go on with."""


@dataclass
class Rows:
    """One batch of checked rows: their position among all good rows, and their fields."""

    positions: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    tones: list[str | None] = field(default_factory=list)
    dates: list[str | None] = field(default_factory=list)
    split_values: list[Any] = field(default_factory=list)
    places: list[tuple[str, int]] = field(default_factory=list)  # (file, row) of each, for messages


@dataclass
class Scan:
    """What the scan pass learnt, a few bytes per article."""

    report: LoadReport
    split: np.ndarray  # TRAIN / VALIDATION / TEST, or DROPPED for a removed copy
    topic: np.ndarray  # index into topic_labels
    tone: np.ndarray  # index into tone_labels, NO_TONE where there is none
    bad_rows: int = 0
    bad_examples: list[str] = field(default_factory=list)
    dedup: dict[str, int] = field(default_factory=dict)
    dedup_bytes_per_article: int = 0


def iter_batches(
    data: DataConfig, batch_size: int, split_column: str = "", skip_broken_lines: bool = False
) -> Iterator[tuple[str, list[dict]]]:
    """``(where, rows)`` batches of raw rows, each row a dict with ``_row`` (its 1-based number in
    ``where``): every file a glob in ``data.source`` matches, in name order, or the one source.

    A JSON Lines line that is not a JSON object stops with its file and line named; with
    ``skip_broken_lines`` it comes as a row holding only ``BROKEN_LINE`` (what is wrong with it).
    """
    for where in _sources(data):
        dataset = _open(where, data, skip_broken_lines)
        require_columns(set(dataset.column_names) - {BROKEN_LINE}, data, split_column, where)
        row = 0
        for batch in _column_batches(dataset, batch_size):
            names = list(batch)
            rows = []
            for values in zip(*(batch[name] for name in names)):
                row += 1
                rows.append(dict(zip(names, values), _row=row))
            yield where, rows


def _open(where: str, data: DataConfig, skip_broken_lines: bool):
    """The dataset of one source; for a JSON Lines file with broken lines, of its copy with them marked."""
    marked = _MARKED_COPIES.get(_version(where))
    if marked:
        return read_dataset(marked, "json", data.split_name)
    try:
        return read_dataset(where, data.format, data.split_name)
    except SourceError:
        if detect_format(where, data.format) != "json":
            raise
        path = Path(describe_source(where)).expanduser()
        if not skip_broken_lines:
            _require_json_lines(path)
            raise
        copy = _marked_copy(path)
        if copy is None:  # no broken line: the file fails for another reason, said by the reader
            raise
        _MARKED_COPIES[_version(where)] = str(copy)
        return read_dataset(str(copy), "json", data.split_name)


def _version(where: str) -> tuple:
    """A source file as it is now (a changed file gets a new marked copy)."""
    path = Path(describe_source(where)).expanduser()
    stat = path.stat() if path.is_file() else None
    return (str(path), stat.st_mtime_ns, stat.st_size) if stat else (str(path),)


def _broken(line: bytes) -> str:
    """What is wrong with one JSON Lines line, or "" (blank lines are skipped by every reader)."""
    import json

    if not line.strip():
        return ""
    try:
        value = json.loads(line)
    except UnicodeDecodeError:  # not UTF-8: newsclf.train.data.sources names such a line itself
        return ""
    except ValueError as exc:
        return f"is not valid JSON ({exc.msg})"
    return "" if isinstance(value, dict) else f"is a JSON {type(value).__name__}, not an object"


def _require_json_lines(path: Path) -> None:
    """Name the first line of a JSON Lines file that is not a JSON object (datasets' own error names none)."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if problem := _broken(line):
                raise StreamingError(
                    f"{path}: line {number} {problem}; fix or remove the line, or set fit.skip_bad_rows = true "
                    "to skip and count such lines"
                )


def _marked_copy(path: Path) -> Path | None:
    """A copy of the JSON Lines file at ``path`` with each broken line replaced by a ``BROKEN_LINE``
    row saying what is wrong (so every pass sees it at its place and the scan counts it); None
    when no line is broken. Written into a temporary folder removed when the process exits."""
    import json

    if not _SCRATCH:
        import atexit
        import shutil

        _SCRATCH.append(Path(tempfile.mkdtemp(prefix=scratch_prefix("marked"))))
        atexit.register(shutil.rmtree, _SCRATCH[0], True)
    copy = _SCRATCH[0] / f"{len(list(_SCRATCH[0].iterdir()))}-{path.name}"
    broken, declared = 0, False
    with open(path, "rb") as source, open(copy, "wb") as target:
        for number, line in enumerate(source, start=1):
            if problem := _broken(line):
                broken += 1
                line = (json.dumps({BROKEN_LINE: f"line {number} {problem}"}) + "\n").encode()
            elif not declared and line.strip():
                # datasets fixes the columns from the file's first block (~10 MB): the marker column must
                # be in it, or a broken line further on is refused as a column the schema lacks.
                with contextlib.suppress(ValueError):  # not UTF-8: left for the reader to name
                    line, declared = (json.dumps(json.loads(line) | {BROKEN_LINE: ""}) + "\n").encode(), True
            target.write(line)
    if not broken:
        copy.unlink()
        return None
    return copy


def _column_batches(dataset, batch_size: int) -> Iterator[dict[str, list]]:
    """``{column: values}`` batches of ``batch_size`` rows, as ``dataset.iter`` gives them.

    Read from the dataset's Arrow files with plain reads into memory freed after each batch, not
    through the memory map ``dataset.iter`` reads: mapped pages, once read, stay in the process's
    resident memory until the map is closed, so a pass over a 1M-article file would add the whole
    file to it. A dataset that is not its files as they are (an indices mapping or a slice left by
    ``select``, a cast, no files) is read with ``dataset.iter``.
    """
    import pyarrow as pa

    files = [entry["filename"] for entry in dataset.cache_files]
    if getattr(dataset, "_indices", None) is not None or not files or not _is_its_files(dataset, files):
        yield from dataset.iter(batch_size=batch_size)
        return
    decode = dataset.features.decode_batch  # values as datasets gives them (a JSON column of mixed types)
    pending: list = []
    held = read = 0
    for name in files:
        with pa.OSFile(name) as handle:
            for record in pa.ipc.open_stream(handle):
                pending.append(record)
                held += record.num_rows
                read += record.num_rows
                while held >= batch_size:
                    table = pa.Table.from_batches(pending)
                    yield decode(table.slice(0, batch_size).to_pydict())
                    rest = table.slice(batch_size)
                    pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield decode(pa.Table.from_batches(pending).to_pydict())
    if read != len(dataset):
        raise StreamingError(f"read {read} rows of {len(dataset)} from the Arrow files {files}; report this as a bug")


def _is_its_files(dataset, files: list[str]) -> bool:
    """Whether ``dataset`` is its Arrow files as they are: the same columns and types and every row
    (not a slice or a cast of them; rows counted through the map, which reads only their headers)."""
    import pyarrow as pa

    rows = 0
    for name in files:
        with pa.memory_map(name) as handle:
            reader = pa.ipc.open_stream(handle)
            if not reader.schema.equals(dataset.data.schema, check_metadata=False):
                return False
            rows += sum(batch.num_rows for batch in reader)
    return rows == len(dataset) == dataset.data.num_rows


def _sources(data: DataConfig) -> list[str]:
    """The files of a glob source, sorted; otherwise the source itself."""
    source = data.source
    if source.startswith("hub:") or not any(mark in source for mark in _GLOB_MARKS):
        return [source]
    files = sorted(path for path in glob.glob(str(Path(source).expanduser()), recursive=True) if Path(path).is_file())
    if not files:
        raise StreamingError(f"data.source {source!r} matches no file; check the pattern")
    for path in files:
        detect_format(path, data.format)  # an unknown suffix is an error before anything is read
    return files


def read_rows(config: ExperimentConfig, scan: Scan | None = None) -> Iterator[Rows]:
    """Checked rows in batches of ``fit.batch_size``, in data order; positions count the good rows.

    A row that cannot be used (not text, a label neither allowed nor mapped, no topic, a bad date
    under a temporal split) stops with one line naming its file and row, or with
    ``fit.skip_bad_rows`` is skipped and counted in ``scan``; so is a JSON Lines line that is not a
    JSON object (see :func:`iter_batches`). Empty texts and dropped labels are skipped and counted
    as in-memory loading counts them.
    """
    data, fit = config.data, config.fit
    split_column = config.split.column if config.split.mode == "column" else ""
    position = 0
    rows = Rows()
    dropped: Counter = Counter()
    for where, raw_rows in iter_batches(data, fit.batch_size, split_column, fit.skip_bad_rows):
        for raw in raw_rows:
            if scan is not None:
                scan.report.rows += 1
            try:
                parsed = _parse_row(raw, data, config, where)
            except DataError as exc:
                if not fit.skip_bad_rows:
                    raise
                if scan is not None:
                    scan.bad_rows += 1
                    if len(scan.bad_examples) < 20:
                        scan.bad_examples.append(str(exc))
                continue
            if parsed is None:
                if scan is not None:
                    scan.report.skipped_empty += 1
                continue
            if isinstance(parsed, str):
                dropped[parsed] += 1
                continue
            rows.positions.append(position)
            rows.places.append((where, raw["_row"]))
            for values, value in zip(
                (rows.ids, rows.texts, rows.topics, rows.tones, rows.dates, rows.split_values), parsed
            ):
                values.append(value)
            position += 1
        if len(rows.positions) >= fit.batch_size:
            yield rows
            rows = Rows()
    if rows.positions:
        yield rows
    if scan is not None:
        scan.report.dropped_by_label = dict(sorted(dropped.items()))


def _parse_row(raw: dict, data: DataConfig, config: ExperimentConfig, where: str):
    """The row's (id, text, topic, tone, date, split value) by :func:`parse_row`; None for an empty
    text; the raw label (a str) for a row dropped by label. A bad row raises DataError naming file and row."""
    if raw.get(BROKEN_LINE):
        raise DataError(f"{where}: {raw[BROKEN_LINE]}")
    item_id = raw.get(data.id_column) if data.id_column else None
    item_id = str(item_id) if item_id is not None else f"row-{raw['_row']}"
    parsed = parse_row(raw, data, config.split, f"{where}: row {raw['_row']} (id {item_id})")
    return parsed if parsed is None or isinstance(parsed, str) else (item_id, *parsed)


def scan(config: ExperimentConfig, progress: Callable[[str], None]) -> Scan:
    """The scan pass: check every row, check ids are unique, de-duplicate, assign splits and labels
    (see the module docstring)."""
    report = LoadReport(source=describe_source(config.data.source), fingerprint=_fingerprint(config.data))
    result = Scan(report, np.empty(0, np.int8), np.empty(0, np.int8), np.empty(0, np.int8))
    dedup = (
        StreamingDeduplicator(config.dedup.near_threshold, config.dedup.shingle_size, seed=config.seed)
        if config.dedup.enabled
        else None
    )
    dedup_cleaner = ArticleCleaner()  # the cleaner in-memory de-duplication uses, whatever [features] says
    topic_index = {label: i for i, label in enumerate(config.data.topic_labels)}
    tone_index = {label: i for i, label in enumerate(config.data.tone_labels)}
    splits, topics, tones, ids = [], [], [], []
    meter = Meter("scan", progress)
    for rows in read_rows(config, result):
        if dedup is not None:
            dedup.add(list(dedup_cleaner.transform(rows.texts)))
        if config.split.mode != "stratified":
            splits.append(_assign_splits(rows, config))
        topics.append(np.array([topic_index[t] for t in rows.topics], dtype=np.int8))
        tones.append(np.array([NO_TONE if t is None else tone_index[t] for t in rows.tones], dtype=np.int8))
        if config.data.id_column:
            ids.append(id_digests(rows.ids))
        meter.advance(len(rows.positions))
    if not topics:
        raise DataError(
            f"{report.source}: no articles left; the data is empty, every {config.data.text_column!r} is blank, "
            "or every label is dropped"
        )
    result.topic, result.tone = np.concatenate(topics), np.concatenate(tones)
    if ids:
        _require_unique_ids(config, np.concatenate(ids))
    del ids
    keep = np.ones(len(result.topic), dtype=bool)
    if dedup is not None:
        keep, result.dedup = dedup.keep()
        result.dedup_bytes_per_article = dedup.bytes_per_article
        report.duplicates_removed = int((~keep).sum())
        del dedup
    if config.split.mode == "stratified":
        result.split = _stratified_splits(result.topic, keep, config)
    else:
        result.split = np.concatenate(splits)
        result.split[~keep] = DROPPED
    release_memory()
    return result


def id_digests(ids: list[str]) -> np.ndarray:
    """8-byte digests of article ids: what the uniqueness check keeps per article (8 MB per million)."""
    import hashlib

    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(item.encode(), digest_size=8).digest()) for item in ids),
        dtype=np.uint64,
        count=len(ids),
    )


def _require_unique_ids(config: ExperimentConfig, digests: np.ndarray) -> None:
    """Fail on the first article (in data order) whose id an earlier one has, naming both places, as
    in-memory loading does; the ids themselves are read again only to name them."""
    order = np.argsort(digests, kind="stable")
    ordered = digests[order]
    repeats = np.flatnonzero(ordered[1:] == ordered[:-1])
    if not len(repeats):
        return
    # Each repeat's later position, earliest first; its first holder is the first of its digest's run.
    later = order[repeats + 1]
    first_of_run = order[np.searchsorted(ordered, ordered[repeats + 1], side="left")]
    for position, first in sorted(zip(later.tolist(), first_of_run.tolist())):
        found = _rows_at(config, {first, position})
        (first_id, first_place), (item_id, place) = found[first], found[position]
        if first_id == item_id:  # not two ids whose digests collide
            raise DataError(
                f"id {item_id!r} is on {_place(first_place)} and {_place(place)}; ids must be unique, so fix the "
                f'{config.data.id_column!r} column or set data.id_column = "" to number the rows'
            )


def _rows_at(config: ExperimentConfig, positions: set[int]) -> dict[int, tuple[str, tuple[str, int]]]:
    """(id, (file, row)) of the good rows at ``positions``, read again from the source."""
    found = {}
    for rows in read_rows(config):
        for i, position in enumerate(rows.positions):
            if position in positions:
                found[position] = (rows.ids[i], rows.places[i])
        if len(found) == len(positions):
            break
    return found


def _place(place: tuple[str, int]) -> str:
    return f"{place[0]}: row {place[1]}"


def _stratified_splits(topics: np.ndarray, keep: np.ndarray, config: ExperimentConfig) -> np.ndarray:
    """Split codes of the kept articles, stratified by topic as in-memory training splits them
    (newsclf.train.data.loading.split_indices on the same articles gives the same split); removed copies DROPPED.

    A copy is removed before splitting, so a duplicate group is in one split only (its first article's).
    """
    from newsclf.train.data.loading import split_indices

    kept = np.flatnonzero(keep)
    # Codes ordered as the labels' names are, so the split is the one the names themselves give.
    rank = np.argsort(np.argsort(np.array(config.data.topic_labels, dtype=object)))
    train, validation, test = split_indices(rank[topics[kept]], config.split, config.seed)
    split = np.full(len(topics), DROPPED, dtype=np.int8)
    for code, chosen in ((TRAIN, train), (VALIDATION, validation), (TEST, test)):
        split[kept[np.asarray(chosen, dtype=np.int64)]] = code
    return split


def _fingerprint(data: DataConfig) -> str:
    """The SHA-256 of the source file (of the files' own SHA-256s for a glob); empty for the hub."""
    import hashlib

    from newsclf._files import sha256_file

    files = [Path(where) for where in _sources(data) if not where.startswith("hub:")]
    files = [path if path.is_absolute() else Path(describe_source(str(path))) for path in files]
    if len(files) == 1 and files[0].is_file():
        return sha256_file(files[0])
    digest = hashlib.sha256()
    for path in files:
        digest.update((sha256_file(path) if path.is_file() else str(path)).encode())
    return digest.hexdigest() if files else ""


def _assign_splits(rows: Rows, config: ExperimentConfig) -> np.ndarray:
    """Split codes by date (temporal) or the data's own column, by the rule in-memory loading uses
    (``stratified`` is decided after the scan, see :func:`_stratified_splits`)."""
    return np.array(
        [SPLIT_NAMES.index(split_of(day, value, config.split)) for day, value in zip(rows.dates, rows.split_values)],
        dtype=np.int8,
    )


def release_memory() -> None:
    """Give the memory freed by a pass back to the system (glibc keeps freed small blocks for reuse,
    which after a pass over millions of rows holds hundreds of MB that no later pass needs)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def free_large_blocks_at_once() -> None:
    """Have glibc give blocks of 1 MB and more back to the system as soon as they are freed. By
    default it raises that threshold (to up to 32 MB) whenever such a block is freed, after which the
    per-batch arrays of tens of MB land on a heap that fragments and grows from pass to pass."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, 1 << 20)


def _glibc():
    """The C library when it is glibc (the memory calls above are glibc's), else None."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None
