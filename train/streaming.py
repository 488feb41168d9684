"""Training on corpora larger than memory (``[fit] mode = "streaming"``).

No list of all texts is ever built. The source is read through ``datasets`` (its Arrow files read
in batches into memory freed after each, see :func:`_column_batches`) in two passes:

1. *scan*: every row is checked and mapped as in-memory loading checks it, ids checked unique
   (8 bytes per article), cleaned, fingerprinted for de-duplication (train/streaming_dedup.py);
   then the split is assigned (a stratified one exactly as in memory); per article only a few
   bytes (labels, split, fingerprints) are kept;
2. *count*: document frequencies of the hashed n-grams of the kept training articles
   (features/hashing.py) and the class counts that give the class weights; the training
   articles' hashed counts are kept on disk for the epochs (``CountCache``); the validation and
   test articles to score on (up to ``fit.held_out_limit`` each, a seeded sample) and a slice of
   training articles held out for calibration are kept in memory;
3. *epochs*: the cached counts, shuffled within a buffer of ``fit.shuffle_buffer`` articles,
   update SGD logistic classifiers (topic, tone, tone-applies) with ``partial_fit``. After each
   epoch: validation macro-F1 as MLflow step metrics, a checkpoint artifact, early stopping.

Then the best epoch's model is calibrated on the held-out training slice, evaluated, explained,
logged, registered, promoted and given a model card by the in-memory code (train/calibration.py,
train/training.py's evaluation, train/explanation_pages.py, train/card.py). The model is the same
kind ``fit_model`` makes (clean -> tfidf -> classifier pipelines in a NewsClassifier) with hashed
TF-IDF blocks. ``resume`` continues a run from its last checkpoint, in the same MLflow run.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import glob
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import FeatureUnion, Pipeline

from features.hashing import CountCache, DocumentFrequencies, build_hashed_steps, hashed_counts, take_rows
from newsclf.cleaning import ArticleCleaner
from newsclf.errors import NewsclfError
from newsclf.model import APPLIES, NOT_APPLICABLE, NewsClassifier
from newsclf.steps import CLASSIFIER
from train.config import DataConfig, ExperimentConfig, flatten
from train.data import (
    SPLIT_NAMES,
    Articles,
    DataError,
    LoadReport,
    Splits,
    checked_text,
    iso_date,
    map_label,
    require_columns,
)
from train.metrics import VALIDATION_SCORE, metric_name, selection_score
from train.sources import SourceError, detect_format, read_dataset, remove_stale_scratch, scratch_prefix
from train.sources import describe as describe_source
from train.streaming_dedup import StreamingDeduplicator

CHECKPOINT = "checkpoint.joblib"
CHECKPOINT_FOLDER = "checkpoints"
_TRAIN, _VALIDATION, _TEST, _DROPPED = 0, 1, 2, -1
# Training articles held out of the epochs to fit the probability calibration on (see _hold_out_for_calibration).
_CALIBRATION = 3
# The share of the training articles held out for calibration (at most fit.held_out_limit), and the
# fewest worth holding out: below it the model is left uncalibrated.
_CALIBRATION_SHARE = 1 / 20
_CALIBRATION_MIN = 20
_NO_TONE = -1
_GLOB_MARKS = "*?["
# Seconds between progress lines.
_PROGRESS_EVERY = 2.0
# glibc's mallopt parameter for the size from which blocks are mapped (and unmapped when freed) alone.
_M_MMAP_THRESHOLD = -3
# Validation articles transformed at a time when scoring an epoch.
_SCORING_CHUNK = 2000
# The one field of the row standing for a broken JSON Lines line in a marked copy (see _marked_copy).
BROKEN_LINE = "_newsclf_broken_line"
# Source file (path, mtime, size) -> its marked copy, and the temporary folder holding the copies.
_MARKED_COPIES: dict[tuple, str] = {}
_SCRATCH: list[Path] = []


class StreamingError(NewsclfError):
    """Data or a run that streaming training cannot go on with."""


@dataclass
class _Rows:
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
class _Scan:
    """What the scan pass learnt, a few bytes per article."""

    report: LoadReport
    split: np.ndarray  # _TRAIN / _VALIDATION / _TEST, or _DROPPED for a removed copy
    topic: np.ndarray  # index into topic_labels
    tone: np.ndarray  # index into tone_labels, _NO_TONE where there is none
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
    except UnicodeDecodeError:  # not UTF-8: train.sources names such a line itself
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


def read_rows(config: ExperimentConfig, scan: _Scan | None = None) -> Iterator[_Rows]:
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
    rows = _Rows()
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
            rows = _Rows()
    if rows.positions:
        yield rows
    if scan is not None:
        scan.report.dropped_by_label = dict(sorted(dropped.items()))


def _parse_row(raw: dict, data: DataConfig, config: ExperimentConfig, where: str):
    """The row's (id, text, topic, tone, date, split value); None for an empty text; the raw label
    (a str) for a row dropped by label. Raises DataError naming file and row for a bad row."""
    row = raw["_row"]
    if raw.get(BROKEN_LINE):
        raise DataError(f"{where}: {raw[BROKEN_LINE]}")
    item_id = raw.get(data.id_column) if data.id_column else None
    item_id = str(item_id) if item_id is not None else f"row-{row}"
    label = f"{where}: row {row} (id {item_id})"
    title = raw.get(data.title_column) if data.title_column else None
    body = raw.get(data.text_column)
    text = checked_text(title, body, data, label)
    if not text:
        return None
    raw_topic = raw.get(data.topic_column)
    topic = map_label(raw_topic, "topic", data.topic_map, data.topic_drop, data.topic_labels, label)
    if topic is None:
        return str(raw_topic)
    raw_tone = raw.get(data.tone_column) if data.tone_column else None
    tone = map_label(raw_tone, "tone", data.tone_map, data.tone_drop, data.tone_labels, label)
    date = iso_date(raw.get(data.date_column)) if data.date_column else None
    split_value = raw.get(config.split.column) if config.split.mode == "column" else None
    if config.split.mode == "temporal":
        import datetime

        try:
            date = datetime.date.fromisoformat(str(date)[:10]).isoformat()
        except ValueError:
            raise DataError(
                f"{label}: date {date!r} is not an ISO date (YYYY-MM-DD); a temporal split needs one on every row"
            ) from None
    if config.split.mode == "column" and split_value not in SPLIT_NAMES:
        raise DataError(f"{label}: {config.split.column} is {split_value!r}; it must be one of {list(SPLIT_NAMES)}")
    return item_id, text, topic, tone, date, split_value


def scan(config: ExperimentConfig, progress: Callable[[str], None]) -> _Scan:
    """The scan pass: check every row, check ids are unique, de-duplicate, assign splits and labels
    (see the module docstring)."""
    report = LoadReport(source=describe_source(config.data.source), fingerprint=_fingerprint(config.data))
    result = _Scan(report, np.empty(0, np.int8), np.empty(0, np.int8), np.empty(0, np.int8))
    dedup = (
        StreamingDeduplicator(config.dedup.near_threshold, config.dedup.shingle_size, seed=config.seed)
        if config.dedup.enabled
        else None
    )
    dedup_cleaner = ArticleCleaner()  # the cleaner in-memory de-duplication uses, whatever [features] says
    topic_index = {label: i for i, label in enumerate(config.data.topic_labels)}
    tone_index = {label: i for i, label in enumerate(config.data.tone_labels)}
    splits, topics, tones, ids = [], [], [], []
    meter = _Meter("scan", progress)
    for rows in read_rows(config, result):
        if dedup is not None:
            dedup.add(list(dedup_cleaner.transform(rows.texts)))
        if config.split.mode != "stratified":
            splits.append(_assign_splits(rows, config))
        topics.append(np.array([topic_index[t] for t in rows.topics], dtype=np.int8))
        tones.append(np.array([_NO_TONE if t is None else tone_index[t] for t in rows.tones], dtype=np.int8))
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
        result.split[~keep] = _DROPPED
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
    (train.data.split_indices on the same articles gives the same split); removed copies _DROPPED.

    A copy is removed before splitting, so a duplicate group is in one split only (its first article's).
    """
    from train.data import split_indices

    kept = np.flatnonzero(keep)
    # Codes ordered as the labels' names are, so the split is the one the names themselves give.
    rank = np.argsort(np.argsort(np.array(config.data.topic_labels, dtype=object)))
    train, validation, test = split_indices(rank[topics[kept]], config.split, config.seed)
    split = np.full(len(topics), _DROPPED, dtype=np.int8)
    for code, chosen in ((_TRAIN, train), (_VALIDATION, validation), (_TEST, test)):
        split[kept[np.asarray(chosen, dtype=np.int64)]] = code
    return split


def release_memory() -> None:
    """Give the memory freed by a pass back to the system (glibc keeps freed small blocks for reuse,
    which after a pass over millions of rows holds hundreds of MB that no later pass needs)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def _free_large_blocks_at_once() -> None:
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


def _assign_splits(rows: _Rows, config: ExperimentConfig) -> np.ndarray:
    """Split codes by date (temporal) or the data's own column (``stratified`` is decided after the
    scan, see :func:`_stratified_splits`)."""
    split = config.split
    if split.mode == "temporal":
        return np.array(
            [
                _TRAIN if day <= split.train_until else _VALIDATION if day <= split.validation_until else _TEST
                for day in rows.dates
            ],
            dtype=np.int8,
        )
    return np.array([SPLIT_NAMES.index(value) for value in rows.split_values], dtype=np.int8)


@dataclass
class _State:
    """Everything a checkpoint holds: the classifiers after ``epoch`` epochs and the best so far."""

    epoch: int
    classifiers: dict[str, SGDClassifier]
    best: dict[str, SGDClassifier]
    best_score: float = -1.0
    best_epoch: int = 0
    stale_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


def train_streaming(
    config: ExperimentConfig, tracking_uri: str, progress: Callable[[str], None], resume: str | None = None
):
    """Streaming training of ``config`` into a new MLflow run, or into run ``resume`` from its last checkpoint."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from train.card import CARD_ARTIFACT, model_card
    from train.explanation_pages import log_explanation_pages
    from train.promotion import promote
    from train.registry import describe, register
    from train.tracking import (
        connect,
        end_stale_runs,
        liveness,
        log_streamed_inputs,
        run_name,
        run_tags,
        use_experiment,
    )
    from train.training import (
        EXPERIMENT_DESCRIPTION,
        TrainResult,
        evaluate_and_log,
        log_model_with_metrics,
        log_promotion,
    )

    review = [key for key in ("corrections", "label_issues") if str(getattr(config.data, key, "")).strip()]
    if review:
        raise StreamingError(
            f"data.{review[0]} is applied by in-memory loading only; train in memory or apply it to the data first"
        )
    _free_large_blocks_at_once()
    remove_stale_scratch()
    if connect(tracking_uri):
        client = MlflowClient(tracking_uri)
        experiment = client.get_experiment_by_name(config.tracking.experiment)
        for stale in end_stale_runs(client, [experiment.experiment_id] if experiment else []):
            progress(f"marked run {stale.run_id} ({stale.name}) KILLED: {stale.reason}")
    client = MlflowClient(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    use_experiment(config.tracking.experiment, EXPERIMENT_DESCRIPTION)
    state = _resumed_state(client, config, resume) if resume else None
    with (
        mlflow.start_run(run_id=resume, run_name=None if resume else run_name(config)) as run,
        liveness(tracking_uri, run.info.run_id),
    ):
        try:
            mlflow.log_params(flatten(config))
        except MlflowException:
            raise StreamingError(
                f"run {resume} was trained with other settings than {config.name}; resume it with the same "
                "--experiment, --data and --set, or start a new run"
            ) from None
        progress("scanning the data: checking rows, de-duplicating, assigning splits")
        scanned = scan(config, progress)
        trained_on = run.data.tags.get("data_fingerprint")
        if resume and trained_on and trained_on != scanned.report.fingerprint:
            raise StreamingError(
                f"run {resume} trained on other data than {scanned.report.source} holds now (SHA-256 "
                f"{trained_on[:12]}, now {scanned.report.fingerprint[:12]}); resume it with the data it "
                "started with, or start a new run"
            )
        mlflow.set_tags(run_tags(config, scanned.report) | {"newsclf.fit_mode": "streaming"})
        # Held out first, so every count of training articles is of those the epochs see.
        mlflow.log_param("dataset.calibration_articles", _hold_out_for_calibration(scanned, config))
        sizes = {split: int((scanned.split == code).sum()) for code, split in enumerate(SPLIT_NAMES)}
        _log_scan(scanned, config, sizes)
        datasets = log_streamed_inputs(config.data, scanned.report, sizes)
        (_, cleaner), (_, features) = build_hashed_steps(config.features, config.fit.n_features)
        progress("counting document frequencies of the hashed n-grams")
        with tempfile.TemporaryDirectory(prefix=scratch_prefix("counts")) as scratch:
            cache = CountCache(Path(scratch) / "counts", [block.n_features for _, block in features.transformer_list])
            held_out = _count(config, scanned, features, cleaner, cache, progress)
            cache.close()
            progress(
                f"{cache.rows:,} training articles' hashed counts kept on disk for the epochs "
                f"({cache.path.stat().st_size / 2**20:,.0f} MB, removed at the end)"
            )
            has_tone = bool(config.data.tone_column) and bool((scanned.tone[scanned.split == _TRAIN] >= 0).any())
            classifiers = _new_classifiers(config, scanned, has_tone)
            state = state or _State(0, classifiers, copy.deepcopy(classifiers))
            _fit_epochs(config, scanned, features, cleaner, cache, state, held_out["validation"], progress)
        state.classifiers = state.best  # the last epoch's classifiers are not needed any more: free them
        uncalibrated = _model(
            config, cleaner, features, state.best, {"experiment": config.name, "run_id": run.info.run_id}
        )
        release_memory()
        model = _calibrated(uncalibrated, config, held_out, progress)
        progress(f"evaluating the epoch-{state.best_epoch} model on validation and test")
        metrics: dict[str, float] = {}
        for part in ("validation", "test"):  # one split at a time: their feature matrices are never held together
            metrics |= evaluate_and_log(model, uncalibrated, {part: held_out[part]})
            release_memory()
        log_explanation_pages(model, held_out["validation"], run.info.run_id)
        examples = held_out["validation"].texts[:2] or held_out["test"].texts[:2]
        info, score = log_model_with_metrics(model, metrics, datasets, examples)
        name = config.tracking.registered_model
        progress(f"registering {name}")
        version = register(
            info.model_uri, name, {"validation_score": f"{score:.6f}", "data_fingerprint": scanned.report.fingerprint}
        )
        empty = Articles([], [], [], [], [])
        splits = Splits(empty, held_out["validation"], held_out["test"], scanned.report, has_tone=has_tone)
        promotion = promote(model, version, splits, config, tracking_uri)
        log_promotion(promotion, name, version, tracking_uri)
        progress("writing the model card")
        card = model_card(name, version, config, splits, model, model, promotion, run.info.run_id, sizes)
        mlflow.log_text(card, CARD_ARTIFACT)
        describe(name, version, card)
        mlflow.set_tags({"registered_version": version, "promoted": str(promotion.promoted).lower()})
    progress(f"done: {name} version {version}" + ("" if promotion.promoted else f" not promoted: {promotion.reason}"))
    return TrainResult(
        run.info.run_id, name, version, promotion.promoted, metrics | {VALIDATION_SCORE: score}, promotion.reason
    )


def _resumed_state(client, config: ExperimentConfig, run_id: str) -> _State:
    """The last checkpoint of ``run_id``, after checking the run can be continued."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise StreamingError(
            f"run {run_id!r} not found in the tracking store; pass the id of a killed streaming run"
        ) from None
    if run.info.status == "FINISHED":
        raise StreamingError(f"run {run_id} finished; there is nothing to resume, start a new run instead")
    experiment = client.get_experiment(run.info.experiment_id)
    if experiment.name != config.tracking.experiment:
        raise StreamingError(
            f"run {run_id} belongs to experiment {experiment.name!r}, not {config.tracking.experiment!r}; "
            "resume it with the experiment file it was started with"
        )
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = client.download_artifacts(run_id, f"{CHECKPOINT_FOLDER}/{CHECKPOINT}", folder)
        except (MlflowException, OSError):
            raise StreamingError(
                f"run {run_id} has no checkpoint (it stopped before its first epoch ended); start a new run"
            ) from None
        state = joblib.load(path)
    if not isinstance(state, _State):
        raise StreamingError(f"run {run_id}: {CHECKPOINT} is not a newsclf streaming checkpoint; start a new run")
    return state


def _log_scan(scanned: _Scan, config: ExperimentConfig, sizes: dict[str, int]) -> None:
    """Counts per split (``sizes``) and label, what de-duplication and the bad rows removed, on the active run."""
    import mlflow

    from train.tracking import log_data_counts

    report = scanned.report
    summary: dict[str, Any] = {
        "source": report.source,
        "rows_read": report.rows,
        "skipped_empty_text": report.skipped_empty,
        "dropped_by_label": report.dropped_by_label,
        "bad_rows_skipped": scanned.bad_rows,
        "bad_row_examples": scanned.bad_examples,
        "duplicates_removed": report.duplicates_removed,
        "deduplication": scanned.dedup | {"bytes_per_article": scanned.dedup_bytes_per_article},
        "splits": {},
    }
    for code, name in enumerate(SPLIT_NAMES):
        chosen = scanned.split == code
        topics = Counter(scanned.topic[chosen].tolist())
        tones = Counter(scanned.tone[chosen].tolist())
        summary["splits"][name] = {
            "articles": sizes[name],
            "topics": {config.data.topic_labels[i]: n for i, n in sorted(topics.items())},
            "tones": {("none" if i < 0 else config.data.tone_labels[i]): n for i, n in sorted(tones.items())},
        }
    mlflow.log_dict(summary, "data/summary.json")
    log_data_counts(report, sizes, bad_rows_skipped=scanned.bad_rows)
    if not sizes["train"] or not sizes["validation"]:
        raise DataError(
            f"{report.source}: the split leaves {sizes['train']} train and "
            f"{sizes['validation']} validation articles; move the cut-offs or add articles"
        )


def _count(
    config: ExperimentConfig,
    scanned: _Scan,
    features: FeatureUnion,
    cleaner,
    cache: CountCache,
    progress: Callable[[str], None],
) -> dict[str, Articles]:
    """The count pass: set each hashed block's idf, keep the training articles' counts in ``cache``
    for the epochs; return the held-out articles to score and calibrate on. Cleaning and hashing, most
    of its time, runs on the cluster's workers under ``newsclf train --cluster`` (train.cluster)."""
    from train.cluster import ordered_map

    rng = np.random.default_rng(config.seed)
    chosen = {}
    for code, name in ((_VALIDATION, "validation"), (_TEST, "test"), (_CALIBRATION, "calibration")):
        where = np.flatnonzero(scanned.split == code)
        if len(where) > config.fit.held_out_limit:
            where = np.sort(rng.choice(where, config.fit.held_out_limit, replace=False))
        chosen[name] = np.zeros(len(scanned.split), dtype=bool)
        chosen[name][where] = True
    held_out = {name: Articles([], [], [], [], []) for name in chosen}
    frequencies = DocumentFrequencies(features)
    meter = _Meter("counting", progress, total=len(scanned.split))
    read: collections.deque[_Rows] = collections.deque()  # the batches being hashed, in order

    def training_texts() -> Iterator[list[str]]:
        for rows in read_rows(config):
            read.append(rows)
            yield [rows.texts[i] for i in np.flatnonzero(scanned.split[rows.positions] == _TRAIN)]

    for counts in ordered_map(_hashed_counts, training_texts(), cleaner, features.transformer_list):
        rows = read.popleft()
        positions = np.array(rows.positions)
        if counts is not None:
            cache.append(frequencies.add(counts))
        for name, mask in chosen.items():
            for i in np.flatnonzero(mask[positions]).tolist():
                articles = held_out[name]
                for column, value in zip(
                    articles._columns(), (rows.ids[i], rows.texts[i], rows.topics[i], rows.tones[i], rows.dates[i])
                ):
                    column.append(value)
        meter.advance(len(positions))
    frequencies.apply(config.features)
    release_memory()
    return held_out


def _hashed_counts(texts: list[str], cleaner, blocks) -> list | None:
    """The hashed blocks' count matrices of ``texts`` after cleaning (None for none): the count pass's
    work per batch, which a cluster's workers can do."""
    return hashed_counts(list(cleaner.transform(texts)), blocks) if texts else None


def _hold_out_for_calibration(scanned: _Scan, config: ExperimentConfig) -> int:
    """Move a seeded sample of the training articles out of the epochs, for calibration; how many.

    In-memory training calibrates by cross-fitting (train/calibration.py), which refits the
    classifier K times: impossible in one streaming pass. Instead the maps are fitted on the final
    classifiers' scores of training articles they never saw: ``_CALIBRATION_SHARE`` of them, at most
    ``fit.held_out_limit`` (10,000 of 700,000 train articles costs the classifiers nothing
    measurable; 5% of a small corpus costs a little). None with ``calibration.methods = ["none"]``.
    """
    if tuple(config.calibration.methods) == ("none",):
        return 0
    train = np.flatnonzero(scanned.split == _TRAIN)
    size = min(config.fit.held_out_limit, int(len(train) * _CALIBRATION_SHARE))
    if size < _CALIBRATION_MIN:
        return 0
    rng = np.random.default_rng([config.seed, _CALIBRATION])
    scanned.split[rng.choice(train, size, replace=False)] = _CALIBRATION
    return size


def _calibrated(
    model: NewsClassifier, config: ExperimentConfig, held_out: dict[str, Articles], progress: Callable[[str], None]
) -> NewsClassifier:
    """``model`` calibrated as in-memory training calibrates (train/calibration.py), on the held-out
    training articles; ``model`` itself when none were held out."""
    import mlflow

    from train.calibration import calibrate
    from train.training import log_calibration

    articles = held_out["calibration"]
    if not len(articles):
        mlflow.set_tag(
            "calibration.note",
            "left uncalibrated: calibration.methods is ['none'] or too few training articles to hold some out",
        )
        return model
    progress(
        f"calibrating probabilities ({', '.join(config.calibration.methods)}) on {len(articles)} training "
        "articles held out of the epochs"
    )
    calibration = calibrate(model, config.calibration, articles, held_out["validation"], config.seed, held_out=True)
    log_calibration(calibration, progress)
    return calibration.model


def _class_weights(codes: np.ndarray, labels: tuple[str, ...], setting: str) -> dict[str, float] | None:
    """``balanced`` weights (n / (k * count)) from the counting pass, over the labels present."""
    if setting == "none":
        return None
    counts = Counter(codes.tolist())
    total = sum(counts.values())
    return {labels[i]: total / (len(counts) * n) for i, n in counts.items()}


def _new_classifiers(config: ExperimentConfig, scanned: _Scan, has_tone: bool) -> dict[str, SGDClassifier]:
    train = scanned.split == _TRAIN
    topics = scanned.topic[train]
    if len(set(topics.tolist())) < 2:
        raise DataError(
            "task topic: the training split has fewer than two classes; add articles of the missing labels"
        )
    classifiers = {
        "topic": _sgd(
            config.topic, config.seed, _class_weights(topics, config.data.topic_labels, config.topic.class_weight)
        )
    }
    if has_tone:
        tones = scanned.tone[train]
        toned = tones[tones >= 0]
        if len(set(toned.tolist())) < 2:
            raise DataError("task tone: the training split has fewer than two tones; add articles of the missing tone")
        classifiers["tone"] = _sgd(
            config.tone, config.seed, _class_weights(toned, config.data.tone_labels, config.tone.class_weight)
        )
        if (tones < 0).any():
            applies = np.where(tones >= 0, 0, 1)
            classifiers["tone_applies"] = _sgd(
                config.tone, config.seed, _class_weights(applies, (APPLIES, NOT_APPLICABLE), config.tone.class_weight)
            )
    return classifiers


def _sgd(settings, seed: int, class_weight: dict[str, float] | None) -> SGDClassifier:
    # Logistic loss, so the model has probabilities; partial_fit takes class weights only as a mapping.
    return SGDClassifier(loss="log_loss", alpha=settings.alpha, class_weight=class_weight, random_state=seed)


def _fit_epochs(
    config: ExperimentConfig,
    scanned: _Scan,
    features: FeatureUnion,
    cleaner,
    cache: CountCache,
    state: _State,
    validation: Articles,
    progress: Callable[[str], None],
) -> None:
    """Epochs of shuffled partial_fit from ``state.epoch`` on, on the training articles' counts in
    ``cache`` (in data order); validation and a checkpoint after each."""
    import mlflow

    fit = config.fit
    train = np.flatnonzero(scanned.split == _TRAIN)
    # Labels of the cached rows; tone code -1 (none) picks the None at the end.
    topics = np.array(config.data.topic_labels, dtype=object)[scanned.topic[train]]
    tone_codes = scanned.tone[train]
    tones = np.array([*config.data.tone_labels, None], dtype=object)[tone_codes]
    classes = {
        "topic": list(config.data.topic_labels),
        "tone": list(config.data.tone_labels),
        "tone_applies": [APPLIES, NOT_APPLICABLE],
    }
    while state.epoch < fit.epochs and state.stale_epochs < fit.patience:
        epoch = state.epoch + 1
        rng = np.random.default_rng([config.seed, epoch])
        meter = _Meter(f"epoch {epoch}/{fit.epochs}", progress, total=len(train))
        done = 0
        for pieces in cache.chunks(fit.shuffle_buffer):
            chunk = slice(done, done + sum(piece[0].shape[0] for piece in pieces))
            labels = (topics[chunk], tones[chunk], tone_codes[chunk])
            meter.advance(_update(state.classifiers, pieces, labels, features, fit.batch_size, classes, rng))
            done = chunk.stop
        scores = _validation_scores(state.classifiers, validation, cleaner, features)
        score = selection_score(scores)
        mlflow.log_metrics(
            {metric_name("learning_curve", "validation", task, "macro_f1"): value for task, value in scores.items()}
            | {metric_name("learning_curve", "validation", "score"): score},
            step=epoch,
        )
        state.history.append({"epoch": epoch, "validation_score": score} | scores)
        state.epoch = epoch
        if score > state.best_score:
            state.best_score, state.best_epoch, state.stale_epochs = score, epoch, 0
            state.best = copy.deepcopy(state.classifiers)
        else:
            state.stale_epochs += 1
        _checkpoint(state)
        release_memory()
        progress(
            f"epoch {epoch}: validation score {score:.4f} ({', '.join(f'{t} {v:.4f}' for t, v in scores.items())}); "
            f"best {state.best_score:.4f} at epoch {state.best_epoch}"
        )
    if state.stale_epochs >= fit.patience and state.epoch < fit.epochs:
        progress(f"stopped early: no better validation score for {fit.patience} epochs")
    mlflow.log_metric(metric_name("learning_curve", "best_epoch"), state.best_epoch)


def _validation_scores(classifiers, validation: Articles, cleaner, features: FeatureUnion) -> dict[str, float]:
    """Macro-F1 of the topic and tone classifiers on the validation articles, transformed
    ``_SCORING_CHUNK`` at a time: their whole matrix (~200 MB for 20,000 articles of 75 words) would
    otherwise be the largest thing held through the epochs."""
    from train.metrics import macro_f1, task_labels

    predicted: dict[str, list[str]] = {task: [] for task in ("topic", "tone") if task in classifiers}
    for start in range(0, len(validation), _SCORING_CHUNK):
        matrix = features.transform(cleaner.transform(validation.texts[start : start + _SCORING_CHUNK]))
        for task, labels in predicted.items():
            labels.extend(str(label) for label in classifiers[task].predict(matrix))
    scores = {}
    for task, labels in predicted.items():
        truth = validation.topics if task == "topic" else validation.tones
        kept = [i for i, label in enumerate(truth) if label is not None]
        if kept:
            y_true = [truth[i] for i in kept]
            known = task_labels([str(label) for label in classifiers[task].classes_], y_true)
            scores[task] = macro_f1(y_true, [labels[i] for i in kept], known)
    return scores


def _update(classifiers, pieces, labels, features: FeatureUnion, batch_size: int, classes, rng) -> int:
    """partial_fit every classifier on a chunk of articles (the cached counts of :meth:`CountCache.chunks`,
    and the articles' topics, tones and tone codes), shuffled, ``batch_size`` at a time."""
    from scipy import sparse

    topics, tones, tone_codes = labels
    vectorizers = [vectorizer for _, vectorizer in features.transformer_list]
    order = rng.permutation(len(topics))
    for start in range(0, len(order), batch_size):
        # Sorted within the batch (partial_fit shuffles a batch's articles itself), so rows are gathered in order.
        chosen = np.sort(order[start : start + batch_size])
        # What features.transform gives for these articles' texts (FeatureUnion stacks its blocks so).
        blocks = take_rows(pieces, chosen)
        matrix = sparse.hstack(
            [vectorizer.weighted(block) for vectorizer, block in zip(vectorizers, blocks)], format="csr"
        )
        del blocks
        classifiers["topic"].partial_fit(matrix, topics[chosen], classes=classes["topic"])
        toned = np.flatnonzero(tone_codes[chosen] >= 0)
        if "tone" in classifiers and len(toned):
            classifiers["tone"].partial_fit(matrix[toned], tones[chosen][toned], classes=classes["tone"])
        if "tone_applies" in classifiers:
            applies = np.where(tone_codes[chosen] >= 0, APPLIES, NOT_APPLICABLE)
            classifiers["tone_applies"].partial_fit(matrix, applies, classes=classes["tone_applies"])
    return len(order)


def _checkpoint(state: _State) -> None:
    """The state after an epoch, as the run's checkpoint artifact (replacing the previous one)."""
    import mlflow

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / CHECKPOINT
        joblib.dump(state, path)
        mlflow.log_artifact(str(path), CHECKPOINT_FOLDER)


def _model(config: ExperimentConfig, cleaner, features: FeatureUnion, classifiers, metadata: dict) -> NewsClassifier:
    """The NewsClassifier of the chosen classifiers: clean -> hashed tfidf -> classifier per task."""
    steps = [("clean", cleaner), ("tfidf", features)]
    pipelines = {
        task: Pipeline(steps + [(CLASSIFIER, classifiers[task])]) for task in ("topic", "tone") if task in classifiers
    }
    return NewsClassifier(
        pipelines["topic"],
        pipelines.get("tone"),
        metadata | {"fit_mode": "streaming"},
        classifiers.get("tone_applies"),
    )


class _Meter:
    """Progress of one pass: articles done, articles/s and the time left, at most every two seconds."""

    def __init__(self, what: str, progress: Callable[[str], None], total: int | None = None):
        self._what, self._progress, self._total = what, progress, total
        self._done, self._start, self._last = 0, time.perf_counter(), time.perf_counter()

    def advance(self, n: int) -> None:
        self._done += n
        now = time.perf_counter()
        finished = self._total is not None and self._done >= self._total
        if now - self._last < _PROGRESS_EVERY and not finished:
            return
        self._last = now
        rate = self._done / max(now - self._start, 1e-9)
        line = (
            f"{self._what}: {self._done:,}"
            + (f"/{self._total:,}" if self._total else "")
            + f" articles, {rate:,.0f}/s"
        )
        if self._total and rate > 0:
            line += f", ETA {_duration((self._total - self._done) / rate)}"
        self._progress(line)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
