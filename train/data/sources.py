"""Read a data source into a Hugging Face ``Dataset``: JSON Lines, CSV, Parquet, a
``save_to_disk`` folder, or a hub dataset (``hub:owner/name[@revision]``)."""

from __future__ import annotations

import os
from pathlib import Path

from newsclf._files import HOST, process_alive
from newsclf.errors import NewsclfError
from newsclf.train.paths import corpus_path

HUB_PREFIX = "hub:"
FORMATS = ("auto", "json", "csv", "parquet", "disk", "hub")
_SUFFIXES = {
    ".jsonl": "json",
    ".json": "json",
    ".ndjson": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_TEXT_FORMATS = ("json", "csv")
_FORMAT_NAMES = {"json": "JSON Lines", "csv": "CSV", "parquet": "Parquet"}


class SourceError(NewsclfError):
    """A data source that cannot be read."""


def describe(source: str) -> str:
    """The source as users should see it in messages: the corpus path, a file path or the hub id."""
    return str(corpus_path()) if source == "corpus" else source


def detect_format(source: str, declared: str = "auto") -> str:
    """The reader for ``source``: the declared format, or one guessed from the source itself."""
    if declared != "auto":
        return declared
    if source.startswith(HUB_PREFIX):
        return "hub"
    path = Path(describe(source))
    if path.is_dir():
        return "disk"
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise SourceError(
            f"{path}: unknown format {path.suffix or '(no suffix)'!r}; use .jsonl, .csv, .parquet, a save_to_disk "
            "folder or hub:owner/name, or set data.format"
        )
    return fmt


def read_dataset(source: str, fmt: str = "auto", split: str = "train"):
    """Load ``source`` through ``datasets`` and return one split as a memory-mapped ``Dataset``."""
    import datasets

    fmt = detect_format(source, fmt)
    if fmt == "hub":
        return _read_hub(source, split)
    path = Path(describe(source)).expanduser()
    if not path.exists():
        raise SourceError(f"data file not found: {path}; pass --data with the path of your data")
    _require_readable(path)
    if fmt == "disk":
        try:
            loaded = datasets.load_from_disk(str(path))
        except (FileNotFoundError, ValueError) as exc:
            raise SourceError(f"{path}: not a folder written by Dataset.save_to_disk ({_first_line(exc)})") from None
        return _pick_split(loaded, split, str(path))
    if fmt in _TEXT_FORMATS:
        _check_utf8(path)
    try:
        return datasets.load_dataset(fmt, data_files=str(path), split="train", cache_dir=_scratch_cache())
    except Exception as exc:  # datasets wraps parser errors in several exception types
        raise SourceError(f"{path}: cannot read as {_FORMAT_NAMES[fmt]} ({_first_line(_root_cause(exc))})") from None


def parse_hub(source: str) -> tuple[str, str | None]:
    """Split ``hub:owner/name[@revision]`` into the dataset name and the revision (or None)."""
    name, _, revision = source[len(HUB_PREFIX) :].partition("@")
    if not name:
        raise SourceError(f"{source!r}: expected hub:owner/name or hub:owner/name@revision")
    return name, revision or None


def _read_hub(source: str, split: str):
    """``hub:owner/name[@revision]``; the same call reads a local dataset folder given as the name."""
    import datasets

    name, revision = parse_hub(source)
    try:
        loaded = datasets.load_dataset(name, revision=revision)
    except Exception as exc:  # network, authentication and not-found errors all land here
        raise SourceError(f"hub dataset {name!r} could not be loaded ({_first_line(exc)})") from None
    return _pick_split(loaded, split, source)


def _pick_split(loaded, split: str, where: str):
    if hasattr(loaded, "keys"):  # a DatasetDict
        if split not in loaded:
            raise SourceError(f"{where}: no split {split!r}; it has {sorted(loaded)}; set data.split_name")
        return loaded[split]
    return loaded


def _require_readable(path: Path) -> None:
    """Name a permission problem or an empty file in one line, before datasets reports either as a
    generation error."""
    try:
        if path.is_dir():
            next(path.iterdir(), None)
            return
        with open(path, "rb") as handle:
            empty = not handle.read(1)
    except PermissionError:
        raise SourceError(f"{path}: permission denied; make it readable for this user (chmod u+r)") from None
    if empty:
        raise SourceError(f"{path}: the file is empty; pass a file with one labelled article per line or row")


def _check_utf8(path: Path) -> None:
    """Fail on the first line that is not UTF-8, naming it, before a parser fails vaguely."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SourceError(
                    f"{path}: line {number} is not valid UTF-8 (byte {exc.start + 1}); re-export the file as UTF-8"
                ) from None


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost error: datasets reports parser failures as 'An error occurred while generating'."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    return exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


_SCRATCH: list[str] = []


def _scratch_cache() -> str:
    """A cache folder for the Arrow copy ``datasets`` makes of a local file, removed when the process
    exits: the file itself is the lasting copy, and the Hugging Face cache would otherwise keep one
    more for every file ever trained on (hub datasets keep that cache, where it saves a download)."""
    if not _SCRATCH:
        import atexit
        import shutil
        import tempfile

        remove_stale_scratch()
        _SCRATCH.append(tempfile.mkdtemp(prefix=scratch_prefix("datasets")))
        atexit.register(shutil.rmtree, _SCRATCH[0], True)
    return _SCRATCH[0]


def scratch_prefix(kind: str) -> str:
    """The name start of a temporary folder of this process (see :func:`remove_stale_scratch`)."""
    return f"newsclf-{kind}-{HOST}-{os.getpid()}-"


def remove_stale_scratch() -> None:
    """Remove the temporary folders (Arrow copies of the data, streaming's counts and marked copies:
    gigabytes for a large corpus) that trainings on this host killed before they could clean up left
    behind, once their process is gone (a temporary folder may be shared between hosts)."""
    import re
    import shutil
    import tempfile

    for folder in Path(tempfile.gettempdir()).glob(f"newsclf-*-{HOST}-*-*"):
        found = re.fullmatch(rf"newsclf-(?:datasets|counts|marked)-{HOST}-(\d+)-\w+", folder.name)
        if found and folder.is_dir() and not process_alive(int(found.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
