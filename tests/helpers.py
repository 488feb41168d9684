"""Helpers the tests share: slices of the shipped corpus, small configs and models, throwaway stores.

Fixtures live in conftest.py; this module holds plain functions, imported where they are used.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import shutil
import tempfile
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path

from newsclf.cleaning import article_text
from newsclf.train.config import config_from_dict
from newsclf.train.paths import corpus_path

# ../shared beside the project (or $NEWSCLF_SHARED): the real data and the seed article.
SHARED = Path(os.environ.get("NEWSCLF_SHARED", Path(__file__).resolve().parents[2] / "shared"))
PROJECT = Path(__file__).resolve().parents[1]


def read_corpus() -> list[dict]:
    """Every item of the shipped corpus, as parsed JSON."""
    with open(corpus_path(), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def corpus_slice(per_topic: int) -> list[dict]:
    """The first ``per_topic`` items of every topic, so every split sees every topic."""
    by_topic: dict[str, list[dict]] = defaultdict(list)
    for item in read_corpus():
        if len(by_topic[item["topic"]]) < per_topic:
            by_topic[item["topic"]].append(item)
    return [item for items in by_topic.values() for item in items]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """``rows`` as a JSON Lines file at ``path``."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def small_config(source: Path, seed: int = 13, **sections) -> object:
    """The default experiment, pointed at ``source``, with cheaper features and any overrides."""
    raw = {
        "seed": seed,
        "name": "test",
        "data": {"source": str(source)},
        "features": {"char": {"ngram_range": [3, 4]}},
        # Calibration cross-fits every task again; the tests of calibration turn it on themselves.
        "calibration": {"methods": ["none"]},
        "tracking": {"experiment": "test-experiment", "registered_model": "test-model"},
    }
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return config_from_dict(raw)


_EMPTY_STORE: list[Path] = []


def new_store(database: Path) -> str:
    """The URI of a new, empty SQLite tracking store at ``database``: a copy of one this test process
    created once, since MLflow's schema migrations take seconds per new store."""
    if not _EMPTY_STORE:
        from mlflow.tracking import MlflowClient

        folder = Path(tempfile.mkdtemp(prefix="newsclf-empty-store-"))
        atexit.register(shutil.rmtree, folder, True)
        cwd = Path.cwd()
        os.chdir(folder)  # the default experiment's artifact folder, fixed at creation, is this one
        try:
            MlflowClient(f"sqlite:///{folder / 'mlflow.db'}").search_experiments()
        finally:
            os.chdir(cwd)
        _EMPTY_STORE.append(folder / "mlflow.db")
    shutil.copy(_EMPTY_STORE[0], database)
    return f"sqlite:///{database}"


def train_into_new_store(folder: Path, **sections):
    """Train ``small_config`` (with ``sections`` overridden) on 10 articles per topic into a new SQLite
    store in ``folder``."""
    from newsclf.train.training import run as train

    config = small_config(write_jsonl(folder / "small.jsonl", corpus_slice(10)), **sections)
    uri = new_store(folder / "mlflow.db")
    return config, uri, train(config, uri)


def as_articles(items: list[dict]):
    """Corpus rows as Articles, title and text joined as load_articles does."""
    from newsclf.train.data.articles import Articles

    return Articles(
        [item["id"] for item in items],
        [article_text(item["title"], item["text"]) for item in items],
        [item["topic"] for item in items],
        [item["tone"] for item in items],
        [None] * len(items),
    )


def tiny_classifier(items: list[dict]):
    """A NewsClassifier fitted in memory on ``items`` with word features only: fast, still real."""
    from newsclf.features.tfidf import FeatureConfig, NgramConfig
    from newsclf.model import NewsClassifier
    from newsclf.train.config import ClassifierConfig
    from newsclf.train.fit.pipeline import build_pipeline

    articles = as_articles(items)
    features = FeatureConfig(char=NgramConfig(enabled=False))
    toned = articles.with_tone()
    topic = build_pipeline(features, ClassifierConfig(), seed=0).fit(articles.texts, articles.topics)
    tone = build_pipeline(features, ClassifierConfig(), seed=0).fit(toned.texts, toned.tones)
    return NewsClassifier(topic, tone, metadata={"experiment": "unit"})


def build_small_model(per_topic: int = 6):
    """A NewsClassifier fitted in memory on a corpus slice, through training's own fit_model:
    word and char_wb features, tone and the tone-applies model."""
    from newsclf.train.fit.in_memory import fit_model

    config = config_from_dict(
        {"name": "unit", "features": {"char": {"analyzer": "char_wb", "ngram_range": [2, 4], "min_df": 2}}}
    )
    config = dataclasses.replace(config, seed=0)
    return fit_model(config, as_articles(corpus_slice(per_topic)), has_tone=True, metadata={"experiment": "unit"})


def as_ordinary_user(command: list[str]) -> list[str]:
    """``command`` run without root's power to read any file, so permission errors happen as for a user."""
    if os.geteuid() != 0:
        return command
    dropped = "-dac_override,-dac_read_search"
    return ["setpriv", f"--bounding-set={dropped}", f"--inh-caps={dropped}", *command]


class RenderedPage(HTMLParser):
    """A page read back as a browser would: its tags and attributes, its text, and the text of each line."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags, self.attributes, self.text, self.lines = set(), [], [], []
        self._line_depth = None
        self._depth = 0
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes.extend(attrs)
        if tag != "meta":
            self._depth += 1
        classes = (dict(attrs).get("class") or "").split()
        if tag == "li" and "line" in classes:
            self.lines.append((classes[1], []))
            self._line_depth = self._depth

    def handle_endtag(self, tag):
        if self._line_depth == self._depth:
            self._line_depth = None
        self._depth -= 1

    def handle_data(self, data):
        self.text.append(data)
        if self._line_depth is not None:
            self.lines[-1][1].append(data)

    @property
    def visible(self) -> str:
        return "".join(self.text)

    def line_texts(self) -> list[tuple[str, str]]:
        return [(kind, "".join(parts)) for kind, parts in self.lines]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_answering(url: str, process, log: Path, seconds: float) -> None:
    """Poll ``url`` until it answers; fail with the server's log if ``process`` ends or ``seconds`` pass."""
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, log.read_text()
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline, "the server did not start: " + log.read_text()
            time.sleep(1)
