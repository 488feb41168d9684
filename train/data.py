"""Labelled articles in, stratified splits out; everything is read through Hugging Face datasets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from train.config import DataConfig, SplitConfig
from train._files import sha256_file
from train.errors import NewsclfError
from train.paths import corpus_path


class DataError(NewsclfError):
    """Data that cannot be trained on as it is."""


@dataclass(frozen=True)
class Articles:
    """Labelled articles, column-wise. ``tones`` holds None where the tone does not apply,
    ``dates`` (ISO strings) None where the data has no date."""

    ids: list[str]
    texts: list[str]
    topics: list[str]
    tones: list[str | None]
    dates: list[str | None]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices) -> "Articles":
        """The articles at ``indices``, in that order."""
        columns = (self.ids, self.texts, self.topics, self.tones, self.dates)
        return Articles(*([column[i] for i in indices] for column in columns))

    def with_tone(self) -> "Articles":
        """Only the articles that carry a tone label."""
        return self.subset([i for i, tone in enumerate(self.tones) if tone is not None])


@dataclass(frozen=True)
class Splits:
    """Train, validation and test articles, and where they came from."""

    train: Articles
    validation: Articles
    test: Articles
    source: Path
    fingerprint: str
    skipped_empty: int


def resolve_source(config: DataConfig) -> Path:
    """The data file a config points at: the shipped corpus or a user path."""
    path = corpus_path() if config.source == "corpus" else Path(config.source).expanduser()
    if not path.is_file():
        raise DataError(f"data file not found: {path}; pass --data with the path of a JSON Lines file")
    return path


def load_articles(config: DataConfig) -> tuple[Articles, Path, int]:
    """Read and validate labelled articles; returns them, the file, and how many empty rows were skipped."""
    path = resolve_source(config)
    dataset = _read_json_lines(path)
    columns = set(dataset.column_names)
    for required in (config.text_column, config.topic_column):
        if required not in columns:
            raise DataError(f"{path}: column {required!r} not found; the file has {sorted(columns)}")

    def column(name: str) -> list:
        return dataset[name] if name in columns else [None] * len(dataset)

    ids = [str(i) if i is not None else f"row-{n + 1}" for n, i in enumerate(column(config.id_column))]
    titles, bodies = column(config.title_column), dataset[config.text_column]
    topics, tones, dates = dataset[config.topic_column], column(config.tone_column), column(config.date_column)
    kept = Articles([], [], [], [], [])
    skipped = 0
    rows = zip(ids, titles, bodies, topics, tones, dates)
    for row, (item_id, title, body, topic, tone, date) in enumerate(rows, start=1):
        text = "\n\n".join(part.strip() for part in (title, body) if isinstance(part, str) and part.strip())
        if not text:
            skipped += 1
            continue
        where = f"{path}: row {row} (id {item_id})"
        if topic not in config.topic_labels:
            raise DataError(f"{where}: topic {topic!r} is not in data.topic_labels; fix the row or add the label to the experiment")
        if tone is not None and tone not in config.tone_labels:
            raise DataError(f"{where}: tone {tone!r} is not in data.tone_labels or null; fix the row or add the label")
        columns = (kept.ids, kept.texts, kept.topics, kept.tones, kept.dates)
        for values, value in zip(columns, (item_id, text, topic, tone, None if date is None else str(date))):
            values.append(value)
    if not kept:
        raise DataError(f"{path}: no articles with text; the file is empty or every {config.text_column!r} is blank")
    return kept, path, skipped


def split_articles(articles: Articles, config: SplitConfig, seed: int) -> tuple[Articles, Articles, Articles]:
    """Stratified (by topic) train / validation / test split, reproducible for a seed."""
    from sklearn.model_selection import train_test_split

    indices = list(range(len(articles)))
    held_out = config.validation + config.test
    try:
        train_idx, rest_idx = train_test_split(indices, test_size=held_out, stratify=articles.topics, random_state=seed)
        rest_topics = [articles.topics[i] for i in rest_idx]
        val_idx, test_idx = train_test_split(
            rest_idx, test_size=config.test / held_out, stratify=rest_topics, random_state=seed
        )
    except ValueError as exc:
        raise DataError(f"cannot split {len(articles)} articles stratified by topic ({exc}); add articles to the rare topics") from None
    return articles.subset(train_idx), articles.subset(val_idx), articles.subset(test_idx)


def load_splits(data: DataConfig, split: SplitConfig, seed: int) -> Splits:
    """Load, validate and split the configured data."""
    articles, path, skipped = load_articles(data)
    train, validation, test = split_articles(articles, split, seed)
    return Splits(train, validation, test, path, sha256_file(path), skipped)


def _read_json_lines(path: Path):
    import datasets

    datasets.disable_progress_bars()
    try:
        return datasets.load_dataset("json", data_files=str(path), split="train")
    except Exception as exc:  # datasets wraps parse errors in several exception types
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot read as JSON Lines ({reason})") from None

