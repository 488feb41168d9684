"""Score many files of articles on a Dask cluster (``newsclf predict --cluster``): plan partitions,
score each on a worker, write one Parquet file per partition, resume what a killed job left.

Every path handed to the workers (inputs, output folder, a model folder or a ``sqlite:///`` store)
must be the same on every machine: a shared file system (see newsclf.train.cluster).
"""

from __future__ import annotations

import glob
import io
import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from newsclf._files import remove_temporary, temporary_beside
from newsclf.batch import Article, jsonl_articles
from newsclf.errors import NewsclfError
from newsclf.loading import load_model
from newsclf.model import NewsClassifier

# Bytes of input per partition: a minute or two of one worker's time on CEP-sized items, so the scheduler's
# overhead per task is nothing, yet little to redo after a lost worker and a few hundred MB of memory at most.
PARTITION_BYTES = 64 * 2**20
# Written in the output folder; files starting with "_" or "." are skipped by Parquet dataset readers.
PLAN_FILE = "_newsclf_plan.json"
_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
_WHOLE_FILE = -1  # a partition's stop when the file could not be split: it is read (and fails) on a worker
# Models loaded by the workers of this process, keyed by worker, model URI and store: one load per worker.
_worker_models: dict[tuple[str, str, str | None], NewsClassifier] = {}
_worker_models_lock = threading.Lock()

__all__ = ["PARTITION_BYTES", "ScoringJob", "ScoringSummary", "input_files", "plan_scoring", "score_on_cluster"]


@dataclass(frozen=True)
class Partition:
    """One task's share of the input: bytes [start, stop) of a JSON Lines file, or row groups [start, stop)
    of a Parquet file; ``output`` is the Parquet file it writes in the output folder."""

    path: str
    kind: str
    start: int
    stop: int
    output: str


@dataclass
class ScoringSummary:
    """What one cluster scoring run did; ``failures`` and ``warnings`` are one line each."""

    partitions: int
    skipped: int = 0
    articles: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def line(self) -> str:
        """The one-line summary printed at the end of a run."""
        rate = self.articles / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{self.partitions} partitions ({self.skipped} already complete, skipped), {self.articles} articles "
            f"scored in {self.seconds:.1f} s ({rate:,.0f} articles/s), {len(self.failures)} failed"
        )


@dataclass(frozen=True)
class _Outcome:
    output: str
    articles: int
    error: str | None = None
    warnings: tuple[str, ...] = ()


def input_files(pattern: str) -> list[str]:
    """The files ``pattern`` names (a glob; ``**`` crosses folders), absolute and sorted; refused when none
    match or one is of an unknown format."""
    paths = sorted(os.path.abspath(path) for path in glob.glob(os.path.expanduser(pattern), recursive=True))
    files = [path for path in paths if os.path.isfile(path)]
    if not files:
        raise NewsclfError(
            f"--input {pattern} matches no file; pass a file or a glob such as 'articles/*.jsonl' (quoted)"
        )
    for path in files:
        if Path(path).suffix.lower() not in _FORMATS:
            raise NewsclfError(
                f"--input: {path} is neither JSON Lines (.jsonl, .ndjson) nor Parquet (.parquet); "
                "narrow the glob or rename the file"
            )
    return files


def plan_partitions(files: list[str], partition_bytes: int = PARTITION_BYTES) -> list[Partition]:
    """Split each file into partitions of about ``partition_bytes``: JSON Lines at line ends, Parquet at
    row-group boundaries; a file that cannot be read or split is one partition, which fails on its worker."""
    root = os.path.commonpath([os.path.dirname(path) for path in files])
    partitions = []
    labels: dict[str, str] = {}
    for path in files:
        # Output names flatten folders into "__": refuse two inputs that would write the same files.
        label = os.path.relpath(path, root).replace(os.sep, "__")
        if label in labels:
            raise NewsclfError(
                f"--input: {labels[label]} and {path} would both be written as {label}.part-*.parquet; "
                "rename one of them or score them in separate runs"
            )
        labels[label] = path
        kind = _FORMATS[Path(path).suffix.lower()]
        try:
            ranges = (
                _jsonl_ranges(path, partition_bytes) if kind == "jsonl" else _row_group_ranges(path, partition_bytes)
            )
        except Exception:  # unreadable, or not Parquet at all: the worker names the problem
            ranges = [(0, _WHOLE_FILE)]
        partitions.extend(
            Partition(path, kind, start, stop, f"{label}.part-{number:05d}.parquet")
            for number, (start, stop) in enumerate(ranges)
        )
    return partitions


@dataclass(frozen=True)
class ScoringJob:
    """What a cluster scoring run will do, checked and recorded before any cluster is asked."""

    model_uri: str
    tracking_uri: str | None
    folder: Path
    partitions: list[Partition]

    def pending(self) -> list[Partition]:
        """The partitions whose output file is not there yet."""
        return [partition for partition in self.partitions if not (self.folder / partition.output).exists()]


def plan_scoring(
    model_uri: str, tracking_uri: str | None, pattern: str, output: str, partition_bytes: int = PARTITION_BYTES
) -> ScoringJob:
    """Check the inputs and the output folder, split the inputs into partitions and record them in the folder
    (or check that a rerun into it is for the same work, so that skipping its finished partitions is right)."""
    model_uri, tracking_uri = _shared_location(model_uri), _shared_store(tracking_uri)
    files = input_files(pattern)
    folder = _output_folder(output)
    # A glob such as 'data/**' may reach into the output folder: its Parquet files are results, not inputs.
    files = [path for path in files if not path.startswith(f"{folder}{os.sep}")]
    if not files:
        raise NewsclfError(f"--input {pattern} matches only files in --output {output}; pass the input files")
    partitions = plan_partitions(files, partition_bytes)
    _keep_plan(folder, model_uri, partition_bytes, files, partitions)
    return ScoringJob(model_uri, tracking_uri, folder, partitions)


def score_on_cluster(
    client: Any, job: ScoringJob, progress: Callable[[str], None] = lambda message: None
) -> ScoringSummary:
    """Score the job's partitions on the cluster, one Parquet file per partition in its folder; partitions
    whose file is already there (from an interrupted run) are skipped.

    Each file is written to a temporary name and renamed when complete, so a file in the folder is always a
    whole partition. A partition that fails (a malformed line, an unreadable file) is reported in
    ``failures`` with its file named; the others still complete. Each worker loads the model once.
    """
    from distributed import as_completed

    pending = job.pending()
    summary = ScoringSummary(len(job.partitions), skipped=len(job.partitions) - len(pending))
    if not pending:
        return summary
    progress(f"scoring {len(pending)} of {len(job.partitions)} partitions on {len(client.nthreads())} workers")
    start = time.perf_counter()
    # One load up front: a wrong --model is one error, not one per partition.
    client.submit(_check_model_on_worker, job.model_uri, job.tracking_uri, pure=False).result()
    futures = client.map(
        _score_partition,
        pending,
        folder=str(job.folder),
        model_uri=job.model_uri,
        tracking_uri=job.tracking_uri,
        pure=False,
    )
    by_future = dict(zip(futures, pending))
    for future in as_completed(futures):
        partition = by_future[future]
        try:
            outcome = future.result()
        except Exception as exc:  # a bug, or a partition whose workers kept dying (KilledWorker)
            summary.failures.append(f"{_describe(partition)}: {type(exc).__name__}: {exc}")
            continue
        summary.warnings.extend(outcome.warnings)
        if outcome.error:
            summary.failures.append(outcome.error)
        else:
            summary.articles += outcome.articles
    summary.seconds = time.perf_counter() - start
    return summary


def _score_partition(partition: Partition, folder: str, model_uri: str, tracking_uri: str | None) -> _Outcome:
    """On a worker: read, score and write one partition; a bad input is returned as an error, not raised,
    so the scheduler does not retry what would fail again."""
    target = Path(folder) / partition.output
    if target.exists():  # done by an earlier attempt whose worker died before reporting it
        return _Outcome(partition.output, 0)
    warnings: list[str] = []
    try:
        articles = _read_partition(partition, warnings)
    except NewsclfError as exc:
        return _Outcome(partition.output, 0, str(exc), tuple(warnings))
    model = _load_on_worker(model_uri, tracking_uri)
    frame = model.predict_frame([article.text for article in articles])
    frame.insert(0, "id", [_id_text(article.id) for article in articles])
    for column in ("id", "topic", "tone"):
        if column in frame:  # a fixed type, even for a partition of empty articles whose labels are all null
            frame[column] = frame[column].astype("string")
    _write_parquet(frame, target)
    return _Outcome(partition.output, len(frame), None, tuple(warnings))  # the rows written


def _check_model_on_worker(model_uri: str, tracking_uri: str | None) -> None:
    """Load the model on a worker (and keep it there), returning nothing: the model stays where it is used."""
    _load_on_worker(model_uri, tracking_uri)


def _load_on_worker(model_uri: str, tracking_uri: str | None) -> NewsClassifier:
    """The model, loaded once per worker (and kept while it lives), whatever the number of partitions."""
    from distributed import get_worker

    key = (get_worker().id, model_uri, tracking_uri)
    with _worker_models_lock:
        if key not in _worker_models:
            _worker_models[key] = load_model(model_uri, tracking_uri)
        return _worker_models[key]


def _read_partition(partition: Partition, warnings: list[str]) -> list[Article]:
    """The partition's articles, through newsclf.batch's reading and checks of JSON Lines records."""
    data, first = (_read_bytes(partition), None) if partition.kind == "jsonl" else _parquet_as_jsonl(partition)
    try:
        return list(
            jsonl_articles(["-"], io.BytesIO(data), lambda message: warnings.append(_locate(message, partition)))
        )
    except NewsclfError as exc:
        raise NewsclfError(_locate(str(exc), partition, first)) from None


def _read_bytes(partition: Partition) -> bytes:
    try:
        with open(partition.path, "rb") as handle:
            handle.seek(partition.start)
            return handle.read() if partition.stop == _WHOLE_FILE else handle.read(partition.stop - partition.start)
    except OSError as exc:
        raise NewsclfError(f"cannot read {partition.path}: {exc.strerror}") from None


def _parquet_as_jsonl(partition: Partition) -> tuple[bytes, int]:
    """The rows as JSON Lines, so they get the very checks JSON Lines records get; and the number of the
    partition's first row in the file."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(partition.path)
        groups = (
            range(parquet.num_row_groups) if partition.stop == _WHOLE_FILE else range(partition.start, partition.stop)
        )
        names = parquet.schema_arrow.names
        if "text" not in names:
            raise NewsclfError(
                f'{partition.path}: no "text" column (columns: {names}); each row needs the article\'s text'
            )
        table = parquet.read_row_groups(
            list(groups), columns=[name for name in ("id", "title", "text") if name in names]
        )
        first = 1 + sum(parquet.metadata.row_group(group).num_rows for group in range(groups.start))
    except NewsclfError:
        raise
    except Exception as exc:  # pyarrow's errors for a truncated or non-Parquet file
        raise NewsclfError(
            f"{partition.path}: not a readable Parquet file ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        ) from None
    # default=str: dates and decimals in an id column become their text, as a JSON reader would see them.
    lines = "".join(json.dumps(row, default=str, ensure_ascii=False) + "\n" for row in table.to_pylist())
    return lines.encode("utf-8", errors="surrogatepass"), first


def _locate(message: str, partition: Partition, first: int | None = None) -> str:
    """newsclf.batch names the partition "standard input"; put its file and line (or row) in that place."""
    match = re.match(r"standard input line (\d+)", message)
    if match and partition.kind == "parquet":
        return f"{partition.path} row {first + int(match[1]) - 1}{message[match.end() :]}"
    if match:
        line = _lines_before(partition) + int(match[1])
        return f"{partition.path} line {line}{message[match.end() :]}"
    return message.replace("standard input", _describe(partition), 1)


def _lines_before(partition: Partition) -> int:
    """Lines of the file before the partition; counted only for an error message, so only on that path."""
    count, left = 0, partition.start
    with open(partition.path, "rb") as handle:
        while left > 0:
            block = handle.read(min(left, 1 << 20))
            if not block:
                break
            count += block.count(b"\n")
            left -= len(block)
    return count


def _describe(partition: Partition) -> str:
    if partition.stop == _WHOLE_FILE:
        return partition.path
    unit = "bytes" if partition.kind == "jsonl" else "row groups"
    return f"{partition.path} ({unit} {partition.start}-{partition.stop})"


def _id_text(value: Any) -> str | None:
    """A text id as given; any other JSON id (a number, a list) as its JSON text, so the column has one type."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _write_parquet(frame: Any, target: Path) -> None:
    """Written whole under a temporary name, then renamed: a file at ``target`` is always a whole partition."""
    temporary = temporary_beside(target)
    try:
        with open(temporary, "xb") as handle:
            frame.to_parquet(handle, index=False)
            handle.flush()
            os.fsync(handle.fileno())  # so a crash just after the rename cannot leave a partial file in its place
        os.replace(temporary, target)
    except BaseException:
        remove_temporary(temporary)
        raise


def _jsonl_ranges(path: str, partition_bytes: int) -> list[tuple[int, int]]:
    """Byte ranges of about ``partition_bytes``, each ending just after a line end (or at the end of the file)."""
    size = os.path.getsize(path)
    bounds = [0]
    with open(path, "rb") as handle:
        while bounds[-1] + partition_bytes < size:
            handle.seek(bounds[-1] + partition_bytes)
            handle.readline()  # on to the end of the line the cut fell in
            if handle.tell() >= size:
                break
            bounds.append(handle.tell())
    return list(zip(bounds, bounds[1:] + [size]))


def _row_group_ranges(path: str, partition_bytes: int) -> list[tuple[int, int]]:
    """Runs of whole row groups of about ``partition_bytes`` (uncompressed) each."""
    import pyarrow.parquet as pq

    metadata = pq.ParquetFile(path).metadata
    ranges, start, size = [], 0, 0
    for group in range(metadata.num_row_groups):
        size += metadata.row_group(group).total_byte_size
        if size >= partition_bytes:
            ranges.append((start, group + 1))
            start, size = group + 1, 0
    if start < metadata.num_row_groups or not ranges:
        ranges.append((start, metadata.num_row_groups))
    return ranges


def _output_folder(output: str) -> Path:
    """The output folder, made if missing (not its parents); refused when it is a file or not writable."""
    folder = Path(os.path.abspath(output))
    if folder.exists() and not folder.is_dir():
        raise NewsclfError(f"--output {output} is a file; with --cluster pass a folder for the Parquet files")
    if not folder.parent.is_dir():
        raise NewsclfError(f"--output {output}: folder {folder.parent} does not exist; create it first")
    try:
        folder.mkdir(exist_ok=True)
        probe = temporary_beside(folder / PLAN_FILE)
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        os.unlink(probe)
    except OSError as exc:
        raise NewsclfError(
            f"cannot write in --output {output} ({exc.strerror}); check its permissions or choose another folder"
        ) from None
    return folder


def _keep_plan(folder: Path, model_uri: str, partition_bytes: int, files: list[str], partitions: list[Partition]):
    """Record what the folder's files are predictions of, or check that a rerun is for the same work: skipping
    partitions is only right when the same model scores the same, unchanged files split the same way."""
    plan = {
        "model": model_uri,
        "partition_bytes": partition_bytes,
        "inputs": [
            {"path": path, "size": (stat := os.stat(path)).st_size, "mtime_ns": stat.st_mtime_ns} for path in files
        ],
        "partitions": [asdict(partition) for partition in partitions],
    }
    path = folder / PLAN_FILE
    if path.exists():
        try:
            earlier = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            earlier = None
        if earlier != plan:
            what = (
                "another model"
                if isinstance(earlier, dict) and earlier.get("model") != model_uri
                else "other or changed inputs, or another partition size"
            )
            raise NewsclfError(
                f"--output {folder} holds predictions of another run ({what}); "
                "choose a new folder, or empty this one to start over"
            )
        return
    temporary = temporary_beside(path)
    temporary.write_text(json.dumps(plan, indent=1), encoding="utf-8")
    os.replace(temporary, path)


def _shared_location(model_uri: str) -> str:
    """A model folder as an absolute path, since workers do not run in this folder."""
    return os.path.abspath(model_uri) if os.path.isdir(model_uri) else model_uri


def _shared_store(tracking_uri: str | None) -> str | None:
    """A relative ``sqlite:///`` store as an absolute one, since workers do not run in this folder."""
    prefix = "sqlite:///"
    if tracking_uri and tracking_uri.startswith(prefix) and not tracking_uri.startswith(prefix + "/"):
        return prefix + os.path.abspath(tracking_uri[len(prefix) :])
    return tracking_uri
