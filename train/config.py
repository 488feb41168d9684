"""Experiment configuration: one TOML file per experiment, validated into frozen dataclasses."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import itertools
import math
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from newsclf.errors import NewsclfError
from newsclf.features.tfidf import FeatureConfig
from newsclf.train.classifiers import KINDS, hyperparameters_read
from newsclf.train.paths import experiments_dir

TOPICS = (
    "armed_conflicts_attacks",
    "international_relations",
    "politics_elections",
    "law_crime",
    "disasters_accidents",
    "business_economy",
    "health_environment",
    "sports",
    "arts_culture",
    "science_technology",
)
TONES = ("military", "diplomatic")
SPLIT_MODES = ("stratified", "temporal", "column")
# MLflow's rules for an alias (mlflow.utils.validation): it must not look like a version either.
_ALIAS = re.compile(r"[\w\-]{1,255}")
_VERSION_ALIAS = re.compile(r"[vV]\d+")


class ConfigError(NewsclfError):
    """An experiment file or override that does not describe a valid experiment."""


@dataclass(frozen=True)
class DataConfig:
    """Where the labelled articles come from, which columns hold what, and how labels map.

    ``source`` is ``corpus`` (the shipped corpus), a JSON Lines / CSV / Parquet file, a
    ``save_to_disk`` folder, or ``hub:owner/name[@revision]``. ``topic_map`` renames or merges
    source labels (``tech = "science_technology"``); labels in ``topic_drop`` drop the row. An
    empty ``tone_column`` means the data has no tone: only the topic model is trained.
    """

    source: str = "corpus"
    format: str = "auto"
    split_name: str = "train"
    text_column: str = "text"
    title_column: str = "title"
    topic_column: str = "topic"
    tone_column: str = "tone"
    id_column: str = "id"
    date_column: str = "date"
    topic_labels: tuple[str, ...] = TOPICS
    tone_labels: tuple[str, ...] = TONES
    topic_map: dict[str, str] = field(default_factory=dict)
    topic_drop: tuple[str, ...] = ()
    tone_map: dict[str, str] = field(default_factory=dict)
    tone_drop: tuple[str, ...] = ()
    # The review loop (train/data/corrections.py, `newsclf audit`): a JSON Lines or CSV file of reviewed
    # labels and drops, and the audit's label_issues.jsonl with the quality below which its items
    # are left out (0 = keep them all).
    corrections: str = ""
    label_issues: str = ""
    exclude_label_issues: float = 0.0
    # New labels (`newsclf select`'s file, labelled; train/data/added.py): new ids join the train
    # split after splitting, ids the data already has are corrections.
    added_labels: tuple[str, ...] = ()

    def __post_init__(self):
        from newsclf.train.data.sources import FORMATS

        if not self.source.strip():
            raise ValueError("source must be 'corpus', a file or folder path, or hub:owner/name")
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {list(FORMATS)}, got {self.format!r}")
        if not self.text_column or not self.topic_column:
            raise ValueError("text_column and topic_column must name columns")
        for name, labels in (("topic_labels", self.topic_labels), ("tone_labels", self.tone_labels)):
            if len(labels) < 2 or len(set(labels)) != len(labels):
                raise ValueError(f"{name} must list at least two distinct labels, got {list(labels)}")
        for task, mapping, allowed in (
            ("topic", self.topic_map, self.topic_labels),
            ("tone", self.tone_map, self.tone_labels),
        ):
            wrong = sorted(target for target in mapping.values() if target not in allowed)
            if wrong:
                raise ValueError(f"{task}_map maps to {wrong}, which are not in {task}_labels")
        if not 0.0 <= self.exclude_label_issues <= 1.0:
            raise ValueError(
                f"exclude_label_issues must be a label quality in [0, 1] (0 = exclude nothing), "
                f"got {self.exclude_label_issues}"
            )
        if self.exclude_label_issues > 0 and not self.label_issues.strip():
            raise ValueError("exclude_label_issues needs label_issues = the path of an audit's label_issues.jsonl")
        if self.label_issues.strip() and self.exclude_label_issues == 0:
            raise ValueError(
                "label_issues is set but exclude_label_issues is 0, so nothing would be excluded; "
                "set exclude_label_issues to a quality threshold such as 0.1, or remove label_issues"
            )


@dataclass(frozen=True)
class SplitConfig:
    """How articles are divided into train, validation and test.

    ``stratified``: random fractions, stratified by topic. ``temporal``: by the date column,
    train up to ``train_until``, validation up to ``validation_until``, test after it (may be
    empty). ``column``: the data's own ``column`` holds train / validation / test.
    """

    mode: str = "stratified"
    validation: float = 0.15
    test: float = 0.15
    train_until: str = ""
    validation_until: str = ""
    column: str = "split"

    def __post_init__(self):
        if self.mode not in SPLIT_MODES:
            raise ValueError(f"mode must be one of {list(SPLIT_MODES)}, got {self.mode!r}")
        for name in ("validation", "test"):
            value = getattr(self, name)
            if not 0.0 < value < 0.5:
                raise ValueError(f"{name} must be a fraction in (0, 0.5), got {value}")
        if self.mode == "temporal":
            import datetime

            for name in ("train_until", "validation_until"):
                try:
                    datetime.date.fromisoformat(getattr(self, name))
                except ValueError:
                    raise ValueError(
                        f"{name} must be an ISO date (YYYY-MM-DD) for a temporal split, got {getattr(self, name)!r}"
                    ) from None
            if self.validation_until <= self.train_until:
                raise ValueError("validation_until must come after train_until")


@dataclass(frozen=True)
class DedupConfig:
    """Exact and near-duplicate removal before splitting, so no story is in two splits."""

    enabled: bool = True
    # Chosen on the real data: at 4-word shingles and 0.7, the near-duplicates found in BBC and
    # CEP are re-headlined or updated copies of one story; lower values join distinct events.
    near_threshold: float = 0.7
    shingle_size: int = 4

    def __post_init__(self):
        if not 0.0 < self.near_threshold <= 1.0:
            raise ValueError(
                f"near_threshold must be a Jaccard similarity in (0, 1] (1 = exact only), got {self.near_threshold}"
            )
        if self.shingle_size < 1:
            raise ValueError(f"shingle_size must be >= 1, got {self.shingle_size}")


@dataclass(frozen=True)
class ClassifierConfig:
    """A linear classifier with probabilities, one of the kinds registered in :mod:`newsclf.train.classifiers`:
    logistic regression, calibrated LinearSVC, or logistic regression fitted by SGD
    (``sgd_logistic``: regularised by ``alpha``, not ``C``)."""

    kind: str = "logistic_regression"
    C: float = 10.0
    class_weight: str = "balanced"
    max_iter: int = 2000
    alpha: float = 1e-5

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of the registered classifiers {sorted(KINDS)}, got {self.kind!r}")
        if self.C <= 0:
            raise ValueError(f"C must be > 0, got {self.C}")
        if self.class_weight not in ("balanced", "none"):
            raise ValueError(f"class_weight must be 'balanced' or 'none', got {self.class_weight!r}")
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter}")
        if self.alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {self.alpha}")


@dataclass(frozen=True)
class TrackingConfig:
    """MLflow names: the experiment runs go to and the model versions are registered under.

    ``reference_data`` names the labelled articles promotion compares a new version and the
    champion on; empty (the default) means the champion's own validation split, rebuilt from its
    training run. ``recent_data`` names the newest labelled window, which no version trained on:
    when set, a version is promoted only if it is significantly better there and not
    significantly worse on the reference (the gate after ``--add-labels``). The names follow
    MLflow's rules, checked here so that a bad one fails before the data is read, not after the fit.
    """

    experiment: str = "news-classifier"
    registered_model: str = "news-classifier"
    champion_alias: str = "champion"
    reference_data: str = ""
    recent_data: str = ""

    def __post_init__(self):
        for name in ("experiment", "registered_model", "champion_alias"):
            if not getattr(self, name).strip():
                raise ValueError(f"{name} must not be empty")
        name = self.registered_model
        if any(mark in name for mark in "/:") or ".." in name or name != name.strip():
            raise ValueError(
                f"registered_model {name!r} is not a valid MLflow model name: no '/', ':', '..' or outer spaces"
            )
        alias = self.champion_alias
        if not _ALIAS.fullmatch(alias) or alias.lower() == "latest" or _VERSION_ALIAS.fullmatch(alias):
            raise ValueError(
                f"champion_alias {alias!r} is not a valid MLflow alias: letters, digits, '_' and '-' only, "
                "and neither 'latest' nor v<number>"
            )


@dataclass(frozen=True)
class SearchConfig:
    """Hyperparameter search: every combination of ``grid`` values is a candidate, fitted on
    train and scored on validation (mean macro-F1 of the tasks) as a nested MLflow run.

    ``grid`` maps dotted config keys to lists of values, e.g. ``"topic.C" = [3, 10, 30]``.
    With ``refit``, the best candidate is refitted on train + validation before registering.
    """

    grid: dict[str, list] = field(default_factory=dict)
    refit: bool = False
    # Rolling-origin (forward-chaining) folds for dated articles, ISO dates in increasing order: each
    # candidate is fitted on the train + validation articles dated up to an origin and scored on those
    # after it, up to the next origin (the last: to the end of validation). Candidates are ranked by
    # their mean score; the narrowest one level with the best fold by fold wins (train/fit/rolling.py).
    origins: tuple[str, ...] = ()

    def __post_init__(self):
        import datetime

        for origin in self.origins:
            try:
                datetime.date.fromisoformat(origin)
            except ValueError:
                raise ValueError(f"origins must be ISO dates (YYYY-MM-DD), got {origin!r}") from None
        if list(self.origins) != sorted(set(self.origins)):
            raise ValueError(f"origins must be in increasing order without repeats, got {list(self.origins)}")
        if self.origins and not self.grid:
            raise ValueError("origins rank the candidates of search.grid; add a grid or remove origins")
        for key, values in self.grid.items():
            if key.split(".")[0] in ("search", "name", "tracking", "n_jobs"):
                raise ValueError(f"grid key {key!r} cannot be searched")
            if not values:
                raise ValueError(f"grid key {key!r} needs at least one value")


CALIBRATION_METHODS = ("none", "sigmoid", "isotonic", "temperature")


@dataclass(frozen=True)
class CalibrationConfig:
    """Post-hoc calibration of every probability the model outputs (train/fit/calibration.py).

    Each task's map is fitted on the classifier's out-of-fold scores over ``folds`` folds of the
    data the model is fitted on; among ``methods`` the one with the lowest validation log loss is
    kept per task. One method fixes the choice; ``["none"]`` turns calibration off.
    """

    methods: tuple[str, ...] = CALIBRATION_METHODS
    folds: int = 5

    def __post_init__(self):
        if not self.methods:
            raise ValueError(f"methods needs at least one of {list(CALIBRATION_METHODS)} (['none'] = off)")
        unknown = [method for method in self.methods if method not in CALIBRATION_METHODS]
        if unknown:
            raise ValueError(f"methods must be among {list(CALIBRATION_METHODS)}, got {unknown[0]!r}")
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods lists a method twice: {list(self.methods)}")
        if self.folds < 2:
            raise ValueError(f"folds must be >= 2 (out-of-fold scores need two folds), got {self.folds}")


FIT_MODES = ("in_memory", "streaming")


@dataclass(frozen=True)
class FitConfig:
    """How the model is fitted: all articles in memory (the default), or ``streaming`` for corpora
    larger than memory (train/fit/streaming.py): hashed n-grams, SGD updated batch by batch over
    ``epochs`` passes, each article read again from the source on every pass.

    ``n_features`` is the width of each hashed block; ``shuffle_buffer`` articles are shuffled
    together before each update; training stops after ``patience`` epochs without a better
    validation score; ``held_out_limit`` caps the validation and test articles kept in memory for
    scoring (a seeded sample when a split has more); ``skip_bad_rows`` skips and counts a row that
    cannot be read instead of failing the run.
    """

    mode: str = "in_memory"
    batch_size: int = 2000
    epochs: int = 5
    n_features: int = 2**20
    shuffle_buffer: int = 20000
    patience: int = 2
    held_out_limit: int = 10000
    skip_bad_rows: bool = False

    def __post_init__(self):
        if self.mode not in FIT_MODES:
            raise ValueError(f"mode must be one of {list(FIT_MODES)}, got {self.mode!r}")
        for name, low in (("batch_size", 1), ("epochs", 1), ("patience", 1), ("held_out_limit", 100)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)}")
        if self.n_features < 2**10 or self.n_features > 2**26:
            raise ValueError(f"n_features must be between 2**10 and 2**26, got {self.n_features}")
        if self.shuffle_buffer < self.batch_size:
            raise ValueError(
                f"shuffle_buffer ({self.shuffle_buffer}) must hold at least one batch (batch_size {self.batch_size})"
            )


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything one training run needs; library code takes this, never CLI arguments."""

    name: str
    description: str = ""
    seed: int = 13
    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    topic: ClassifierConfig = field(default_factory=ClassifierConfig)
    tone: ClassifierConfig = field(default_factory=ClassifierConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    # Parallel workers for fitting (TF-IDF blocks side by side, one-vs-rest classes, calibration's
    # folds), -1 for every core; results do not depend on it. Starting workers costs more than it
    # saves on a few thousand short articles.
    n_jobs: int = 1

    def __post_init__(self):
        if self.n_jobs < 1 and self.n_jobs != -1:
            raise ValueError(f"n_jobs must be >= 1, or -1 for every core, got {self.n_jobs}")
        if self.fit.mode == "streaming" and (self.search.grid or self.search.refit):
            raise ValueError(
                "fit.mode = 'streaming' fits one model in one pass over the data; remove [search] "
                "(grid and refit) or train in memory"
            )


def _require_read_settings(config: ExperimentConfig) -> None:
    """Refuse a setting the chosen fit mode or classifier kind does not read (a value other than
    its default), naming the key: it would otherwise be logged as if it had shaped the model."""
    streaming = config.fit.mode == "streaming"
    if streaming:
        if config.data.added_labels and not config.tracking.recent_data:
            raise ValueError(
                "a streaming update (data.added_labels) is judged on the newest labelled window, as it reads no "
                "validation split: set tracking.recent_data (--recent FILE)"
            )
        for key in ("corrections", "label_issues"):
            if getattr(config.data, key):
                raise ValueError(
                    f"data.{key} is applied by in-memory loading only; train in memory "
                    "(fit.mode = 'in_memory') or apply it to the data first"
                )
    else:
        unread = [item.name for item in fields(FitConfig) if item.name != "mode" and _changed(config.fit, item)]
        if unread:
            raise ValueError(f"fit.{unread[0]} is read only when fit.mode = 'streaming'; remove it or set that mode")
    for task in ("topic", "tone"):
        settings = getattr(config, task)
        reads = hyperparameters_read(settings.kind, streaming)
        if streaming and not reads:
            streamable = sorted(name for name in KINDS if hyperparameters_read(name, True))
            raise ValueError(
                f"{task}.kind = {settings.kind!r} cannot be fitted batch by batch (fit.mode = 'streaming'); "
                f"set {task}.kind to one of {streamable}"
            )
        for item in fields(ClassifierConfig):
            if item.name != "kind" and item.name not in reads and _changed(settings, item):
                how = "streaming" if streaming else "in-memory"
                raise ValueError(
                    f"{task}.{item.name} is not read by {task}.kind = {settings.kind!r} in {how} training "
                    f"(it reads {', '.join(reads)}); remove it or choose a kind that reads it"
                )


def _changed(settings: Any, item: dataclasses.Field) -> bool:
    """Whether a dataclass field of ``settings`` holds other than its default."""
    default = item.default_factory() if item.default is dataclasses.MISSING else item.default
    return getattr(settings, item.name) != default


def load_config(
    experiment: str | Path, overrides: dict[str, Any] | None = None, overrides_from: str = "--set"
) -> ExperimentConfig:
    """Load an experiment by name (``default``) or TOML path and apply dotted-key overrides.

    Paths in the file (``data.source``, ``data.corrections``, ``data.label_issues``,
    ``data.added_labels``, ``tracking.reference_data``, ``tracking.recent_data``) are resolved
    against the file's folder, so an experiment reads the same data from wherever it runs. Raises
    :class:`ConfigError` naming the file and key for anything unknown or invalid in the file, and
    ``overrides_from`` (the flag or plan that gave them) for the overrides.
    """
    path = resolve_experiment(experiment)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    raw.setdefault("name", path.stem)
    _resolve_paths(raw, path.parent)
    config = config_from_dict(raw, source=str(path))
    return with_overrides(config, overrides, overrides_from) if overrides else config


def with_overrides(config: ExperimentConfig, overrides: dict[str, Any], source: str = "--set") -> ExperimentConfig:
    """``config`` with dotted-key ``overrides`` applied and validated; errors name ``source``."""
    raw = to_dict(config)
    for key, value in overrides.items():
        _set_dotted(raw, key, value, Path(source))
    return config_from_dict(raw, source=source)


# Keys whose values are paths: relative ones in an experiment file are relative to the file.
_PATH_KEYS = (
    ("data", "source"),
    ("data", "corrections"),
    ("data", "label_issues"),
    ("data", "added_labels"),
    ("tracking", "reference_data"),
    ("tracking", "recent_data"),
)


def _resolve_paths(raw: dict[str, Any], folder: Path) -> None:
    for section, key in _PATH_KEYS:
        value = raw.get(section, {}).get(key) if isinstance(raw.get(section), dict) else None
        if isinstance(value, list):
            raw[section][key] = [_resolved(item, folder) for item in value]
        elif isinstance(value, str):
            raw[section][key] = _resolved(value, folder)


def _resolved(value: Any, folder: Path) -> Any:
    if not isinstance(value, str) or not value.strip() or value == "corpus" or value.startswith("hub:"):
        return value
    return value if Path(value).expanduser().is_absolute() else str((folder / value).resolve())


def resolve_experiment(experiment: str | Path) -> Path:
    """Map an experiment name or path to an existing TOML file."""
    text = str(experiment)
    if text.endswith(".toml") or "/" in text:
        path = Path(text)
    else:
        path = experiments_dir() / f"{text}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in experiments_dir().glob("*.toml"))
        raise ConfigError(f"experiment {text!r} not found at {path}; use a TOML path or one of {known}")
    return path


def config_from_dict(raw: dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Validate a plain mapping (as parsed from TOML) into an :class:`ExperimentConfig`."""
    config = _build(ExperimentConfig, raw, source, prefix="")
    _require_effective_grid(search_candidates(config, source), source)  # every candidate must be valid too
    try:  # of the experiment as written; a grid's candidates may change the kind and so what is read
        _require_read_settings(config)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return config


def search_candidates(
    config: ExperimentConfig, source: str = "config"
) -> list[tuple[dict[str, Any], ExperimentConfig]]:
    """Each combination of the search grid as ``(overrides, config)``; just the config when no grid."""
    grid = config.search.grid
    if not grid:
        return [({}, config)]
    base = to_dict(config)
    base.pop("search")
    candidates = []
    for values in itertools.product(*grid.values()):
        overrides = dict(zip(grid, values))
        raw = copy.deepcopy(base)
        for key, value in overrides.items():
            _set_dotted(raw, key, value, Path(source))
        candidates.append((overrides, _build(ExperimentConfig, raw, f"{source} (search.grid)", prefix="")))
    return candidates


def _require_effective_grid(candidates: list[tuple[dict[str, Any], ExperimentConfig]], source: str) -> None:
    """Refuse a grid key for a classifier hyperparameter that no candidate's kind reads: its
    candidates would all be the same model."""
    for key in candidates[0][0]:
        task, _, name = key.partition(".")
        if task not in ("topic", "tone") or name == "kind":
            continue
        kinds = {getattr(config, task).kind for _, config in candidates}
        if not any(name in KINDS[kind].hyperparameters for kind in kinds):
            reads = ", ".join(sorted({param for kind in kinds for param in KINDS[kind].hyperparameters}))
            raise ConfigError(
                f"{source}: search.grid key {key!r} changes nothing: classifier kind {' / '.join(sorted(kinds))} "
                f"reads {reads}; search those instead"
            )


def to_dict(config: Any) -> dict[str, Any]:
    """A config as the plain mapping it was loaded from (lists, not tuples; None left out, as TOML has no null)."""
    plain: dict[str, Any] = {}
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if value is None:
            continue
        if dataclasses.is_dataclass(value):
            value = to_dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, dict):
            value = copy.deepcopy(value)
        plain[item.name] = value
    return plain


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted-key view of a config, for logging as MLflow params."""
    flat: dict[str, Any] = {}
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        key = f"{prefix}{item.name}"
        if isinstance(value, dict):
            flat.update({f"{key}.{name}": item for name, item in value.items()})
        elif dataclasses.is_dataclass(value):
            flat.update(flatten(value, prefix=f"{key}."))
        else:
            flat[key] = list(value) if isinstance(value, tuple) else value
    return flat


def read_settings(config: ExperimentConfig) -> dict[str, Any]:
    """:func:`flatten` of the settings this experiment's training reads: a classifier kind's unread
    hyperparameters (``topic.alpha`` for a logistic regression) and in-memory training's ``fit.*``
    are left out, so the run's params say what shaped the model."""
    streaming = config.fit.mode == "streaming"
    unread = {f"fit.{item.name}" for item in fields(FitConfig) if item.name != "mode" and not streaming}
    for task in ("topic", "tone"):
        reads = hyperparameters_read(getattr(config, task).kind, streaming)
        unread |= {f"{task}.{item.name}" for item in fields(ClassifierConfig) if item.name not in (*reads, "kind")}
    return {key: value for key, value in flatten(config).items() if key not in unread}


def parse_override(assignment: str) -> tuple[str, Any]:
    """Parse ``key.path=value`` where value is TOML (``3``, ``[1, 2]``, ``"x"``) or a bare word."""
    key, sep, value = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {assignment!r} must look like section.key=value")
    value = value.strip()
    if value in ("True", "False"):  # Python's spelling, as MLflow shows logged params
        return key.strip(), value == "True"
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.strip(), parsed


def _set_dotted(raw: dict[str, Any], key: str, value: Any, source: Path) -> None:
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: override {key!r}: {part!r} is a value, not a section")
    node[leaf] = value


def _build(cls: type, raw: Any, source: str, prefix: str):
    where = prefix.rstrip(".") or "top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {where} must be a table, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {item.name for item in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"{source}: unknown key {prefix + unknown[0]!r}; expected one of {sorted(names)}")
    values = {}
    for name, value in raw.items():
        values[name] = _coerce(hints[name], value, source, f"{prefix}{name}")
    try:
        return cls(**values)
    except TypeError as exc:  # a required key is missing
        raise ConfigError(f"{source}: {where}: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{source}: {where}: {exc}") from None


def _coerce(hint: Any, value: Any, source: str, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, source, prefix=f"{key}.")
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        for option in options:
            try:
                return _coerce(option, value, source, key)
            except ConfigError:
                continue
        raise ConfigError(f"{source}: {key} must be {' or '.join(_name(o) for o in options)}, got {value!r}")
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key} must be a table, got {value!r}")
        value_type = typing.get_args(hint)[1]
        return {str(k): _coerce(value_type, v, source, f"{key}.{k}") for k, v in value.items()}
    if hint is list:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key} must be a list, got {value!r}")
        return value
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key} must be a list, got {value!r}")
        if args and args[-1] is Ellipsis:
            return tuple(_coerce(args[0], item, source, key) for item in value)
        if len(value) != len(args):
            raise ConfigError(f"{source}: {key} must be a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(arg, item, source, key) for arg, item in zip(args, value))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is str and type(value) is datetime.date:
        # A TOML date (train_until = 2016-12-31), and a date param read back from a run: the ISO text.
        return value.isoformat()
    if hint is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{source}: {key} must be a finite number, got {value!r}")
    if hint is bool and not isinstance(value, bool) or hint is not bool and isinstance(value, bool):
        raise ConfigError(f"{source}: {key} must be {_name(hint)}, got {value!r}")
    if not isinstance(value, hint):
        raise ConfigError(f"{source}: {key} must be {_name(hint)}, got {value!r}")
    return value


def _name(hint: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(hint, str(hint))
