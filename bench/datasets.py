"""The real, human-labelled news in ../shared/data (never shipped): where each file is and how it loads.

CEP (Wikipedia Current Events Portal summaries, 2010-2017, topic and tone), AG News and BBC News
(topic only), and CAMEO (hand-coded event classes, with a tone derived from them).
"""

from __future__ import annotations

from pathlib import Path

from newsclf.train.config import DataConfig, SplitConfig
from newsclf.train.data.articles import Articles, DataError
from newsclf.train.data.loading import load_articles, split_by_date

CEP_FILE = Path("cep") / "cep-2010-2017.jsonl"
AGNEWS_FILE = Path("agnews") / "agnews-test.jsonl"
BBC_FILE = Path("bbc") / "bbc.jsonl"
CAMEO_FILE = Path("cameo") / "cameo-train.jsonl"
DATA_FILES = (CEP_FILE, AGNEWS_FILE, BBC_FILE, CAMEO_FILE)
# The suggested development split of the CEP data, as experiments/cep.toml has it: fit on
# 2010-2016, validate on 2017.
CEP_SPLIT = SplitConfig(mode="temporal", train_until="2016-12-31", validation_until="2017-12-31")

AGNEWS_LABELS = ("World", "Sports", "Business", "Sci/Tech")
BBC_LABELS = ("business", "entertainment", "politics", "sport", "tech")
CAMEO_LABELS = (
    "make_statement_appeal",
    "verbal_cooperation",
    "material_cooperation",
    "verbal_conflict",
    "material_conflict",
)


def real_data_file(data_dir: Path, relative: Path) -> Path:
    """A file of the shared real-data folder, or a clear error naming what is missing."""
    path = Path(data_dir) / relative
    if not path.is_file():
        raise DataError(
            f"real data not found: {path}; pass --data with the folder that holds cep/, bbc/, agnews/ and cameo/"
        )
    return path


def require_data(data_dir: Path) -> None:
    """Fail with one clear line, before any work, when a file of the real-data folder is missing."""
    for relative in DATA_FILES:
        real_data_file(data_dir, relative)


def cep_articles(data_dir: Path) -> Articles:
    """The CEP items as articles, topic from its ``label`` column."""
    path = real_data_file(data_dir, CEP_FILE)
    return load_articles(DataConfig(source=str(path), topic_column="label"))[0]


def cep_development_split(cep: Articles) -> tuple[Articles, Articles]:
    """The CEP items dated up to 2016-12-31 (fit) and in 2017 (validation), by the temporal split
    training uses; an item without an ISO date is an error, as in training."""
    train, validation, _ = split_by_date(cep, CEP_SPLIT, "CEP")
    return train, validation


def agnews_articles(data_dir: Path) -> Articles:
    """The AG News test split: title and text, topic from ``label``."""
    return _labelled(data_dir, AGNEWS_FILE, AGNEWS_LABELS)


def bbc_articles(data_dir: Path) -> Articles:
    """BBC News as it is, duplicates included (see :func:`deduplicate`)."""
    return _labelled(data_dir, BBC_FILE, BBC_LABELS)


def cameo_articles(data_dir: Path) -> Articles:
    """The CAMEO training sentences: event class as topic, and the tone it implies (or none)."""
    return _labelled(data_dir, CAMEO_FILE, CAMEO_LABELS, tone_column="tone")


def deduplicate(articles: Articles) -> tuple[Articles, int]:
    """Keep the first of articles whose text is the same ignoring whitespace, case and punctuation.

    Returns the kept articles and how many were dropped. Duplicates left in would sit on both
    sides of a fold and inflate the scores.
    """
    from newsclf.train.data.dedup import find_duplicates

    found = find_duplicates(articles.texts, threshold=1.0)
    return articles.subset(found.keep), found.removed


def _labelled(data_dir: Path, relative: Path, labels: tuple[str, ...], tone_column: str = "") -> Articles:
    path = real_data_file(data_dir, relative)
    return load_articles(
        DataConfig(source=str(path), topic_column="label", tone_column=tone_column, topic_labels=labels)
    )[0]
