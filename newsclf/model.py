"""A loaded model: one scikit-learn Pipeline per task, raw article text in, labels and probabilities out.

Saving and loading go through :mod:`newsclf.folder`, which also documents what a model folder holds.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from newsclf._shared_tfidf import SharedFeatures
from newsclf.folder import TONE_APPLIES, load_folder, save_folder
from newsclf.hashing import article_term_names, is_hashed
from newsclf.steps import classifier_of, cleaner_of, features_of

# The two labels of the tone-applies model.
APPLIES, NOT_APPLICABLE = "applies", "not_applicable"
# tone_score is the probability of this tone label when the model has it (see NewsClassifier.tone_poles).
MILITARY = "military"
# Texts scored per step: bounds the memory a call with very many texts needs.
_CHUNK = 2000
# Metadata key of the short-text tone temperature training fits (newsclf.train.evaluation.short_texts):
# {"temperature": T, "full_up_to_words": a, "none_from_words": b}. A cleaned text of up to a words has
# its tone probabilities tempered by T, one of b words or more keeps them as they are (an article's
# scores are unchanged), and in between the log-temperature fades linearly.
SHORT_TEXT_TONE = "short_text_tone"
_SURROGATES = re.compile("[\ud800-\udfff]")


class NewsClassifier:
    """Topic and tone pipelines with their labels; predicts on raw article text.

    ``tone_applies`` is an optional classifier over the topic pipeline's features that estimates
    whether the military/diplomatic axis applies to an article at all (labels ``applies`` and
    ``not_applicable``); see :meth:`predict`.
    """

    def __init__(
        self,
        topic: Pipeline,
        tone: Pipeline | None = None,
        metadata: dict[str, Any] | None = None,
        tone_applies: Any = None,
    ):
        self.pipelines = {"topic": topic} | ({"tone": tone} if tone is not None else {})
        self.tone_applies = tone_applies if tone is not None else None
        self.metadata = dict(metadata or {})
        self._shared_features: SharedFeatures | None = None
        self._feature_names: dict[str, np.ndarray] = {}

    def labels(self, task: str) -> list[str]:
        """The class labels of ``task``, in probability-column order."""
        return [str(label) for label in self.pipelines[task].classes_]

    @property
    def tone_poles(self) -> tuple[str, str] | None:
        """The tone label ``tone_score`` is the probability of (the score's 1 end), then the other (its 0
        end); None without a two-label tone task. ``military`` when it is a label; otherwise the first of
        the experiment's ``data.tone_labels`` (kept in the metadata), else the first label."""
        if "tone" not in self.pipelines or len(labels := self.labels("tone")) != 2:
            return None
        ordered = [label for label in self.metadata.get("tone_labels", ()) if label in labels]
        high = MILITARY if MILITARY in labels else (ordered or labels)[0]
        return high, next(label for label in labels if label != high)

    @property
    def tasks(self) -> list[str]:
        """The tasks this model predicts, ``topic`` first."""
        return list(self.pipelines)

    def predict_proba(self, texts: Any) -> dict[str, np.ndarray]:
        """Class probabilities per task, one row per text, columns in :meth:`labels` order.

        With a tone-applies model, ``"tone_applies"`` holds P(the tone axis applies) per text.
        Texts with nothing left after cleaning get uniform probabilities and P(applies) = 0.
        """
        return self._score(_as_texts(texts)[0]).probabilities

    def predict(self, texts: Any) -> dict[str, Any] | list[dict[str, Any]]:
        """Predict one article (a string: returns a dict) or many (any other iterable: a list of dicts).

        Each dict holds ``topic``, ``topic_probability`` and ``topic_probabilities`` (every label);
        ``tone``, ``tone_probability``, ``tone_probabilities`` and ``tone_score`` (the probability
        of the first of :attr:`tone_poles`: 1 = military, 0 = diplomatic with the default labels);
        ``tone_applies`` and ``tone_applies_probability`` (whether
        the military/diplomatic axis applies to the article at all); and ``empty``. An article
        with no text left after cleaning gets ``empty: True``, labels ``None``, uniform
        probabilities, ``tone_score`` 0.5 and ``tone_applies`` False. None is read as an empty
        text, bytes as UTF-8 (undecodable bytes become U+FFFD), other values as ``str(value)``.
        """
        items, single = _as_texts(texts)
        rows = _rows(self, self._score(items))
        return rows[0] if single else rows

    def predict_frame(self, texts: Any, explain: int = 0, paragraphs: bool = False):
        """Predictions as a flat DataFrame: the scalar fields of :meth:`predict` and ``p_<task>_<label>`` columns.

        ``explain`` = k > 0 adds ``<task>_terms`` (:meth:`explain`'s k terms per text) and
        ``paragraphs`` adds ``paragraph_tones`` (:meth:`paragraph_tones`), both as JSON strings
        so the frame stays flat for MLflow serving.
        """
        import json

        import pandas as pd

        if isinstance(explain, bool) or not isinstance(explain, numbers.Integral) or explain < 0:
            raise ValueError(f"explain must be a whole number of terms >= 0, got {explain!r}")
        items = _as_texts(texts)[0]
        scores = self._score(items)
        columns = _scalar_columns(self, scores)
        for task, proba in scores.labelled():
            for j, label in enumerate(self.labels(task)):
                columns[f"p_{task}_{label}"] = proba[:, j]
        if explain:
            explained = [self.explain(item, int(explain)) for item in items]
            for task in self.pipelines:
                columns[f"{task}_terms"] = [json.dumps(item[task]["terms"]) for item in explained]
        if paragraphs:
            columns["paragraph_tones"] = [json.dumps(self.paragraph_tones(item)) for item in items]
        return pd.DataFrame(columns)

    def explain(self, text: Any, top_k: int = 10) -> dict[str, dict[str, Any]]:
        """The terms that pushed one article towards its predicted topic and tone.

        Per task: ``label`` (as :meth:`predict` gives it), ``terms``, at most ``top_k`` dicts
        ``{"term", "kind", "weight"}`` with positive weight, largest first, and ``against``, the
        ``top_k`` terms that pulled away from ``label`` (negative weight, most negative first). A weight is the
        term's TF-IDF value in this article times the classifier's coefficient for ``label``.
        ``kind`` is ``word`` for word and word-pair features, ``char`` for a word of the article
        whose character n-grams are summed.
        """
        from newsclf.explain import contributions

        items, _ = _as_texts([text])
        scores = self._score_chunk(items)
        explained = {}
        for task, proba in scores.labelled():
            label = None if scores.empty[0] else self.labels(task)[int(proba[0].argmax())]
            sides = {"terms": [], "against": []}
            if label is not None:
                for side in sides:
                    sides[side] = contributions(
                        self.pipelines[task],
                        scores.features[task],
                        self.labels(task).index(label),
                        self._names(task, scores.cleaned[0]),
                        scores.cleaned[0],
                        top_k,
                        against=side == "against",
                    )
            explained[task] = {"label": label} | sides
        return explained

    def paragraph_tones(self, text: Any) -> list[dict[str, Any]]:
        """The tone of each paragraph of one article after cleaning, in order.

        Each dict: ``paragraph`` (1-based), ``text``, ``tone``, ``tone_score`` (P(military)) and,
        with a tone-applies model, ``tone_applies_probability``. Empty when the article has no
        text after cleaning or the model has no tone task.
        """
        if "tone" not in self.pipelines:
            return []
        items, _ = _as_texts([text])
        cleaner = cleaner_of(self.pipelines["tone"])
        paragraphs = (
            cleaner.paragraphs(items[0])
            if hasattr(cleaner, "paragraphs")
            else [p for p in items[0].splitlines() if p.strip()]
        )
        keep = ("tone", "tone_score", "tone_applies_probability")
        return [
            {"paragraph": number, "text": paragraph} | {key: row[key] for key in keep if key in row}
            for number, (paragraph, row) in enumerate(zip(paragraphs, self.predict(paragraphs)), start=1)
        ]

    def _score(self, texts: list[str]) -> _Scores:
        # At least one chunk, so that no texts still give arrays of the right width.
        parts = [self._score_chunk(texts[start : start + _CHUNK]) for start in range(0, max(len(texts), 1), _CHUNK)]
        return _Scores.concat(parts) if len(parts) > 1 else parts[0]

    def features(self, texts: Any) -> dict[str, Any]:
        """Each task's classifier input for ``texts``: the sparse TF-IDF matrix predict computes."""
        return self._features(_as_texts(texts)[0])[1]

    def _features(self, texts: list[str]) -> tuple[list[str], dict[str, Any]]:
        if self._shared_features is None:
            self._shared_features = SharedFeatures([features_of(pipeline) for pipeline in self.pipelines.values()])
        cleaned, matrices = self._shared_features.transform(texts)
        return cleaned, dict(zip(self.pipelines, matrices))

    def _score_chunk(self, texts: list[str]) -> _Scores:
        cleaned, features = self._features(texts)
        empty = np.array([not text for text in cleaned], dtype=bool)
        probabilities = {}
        for task, pipeline in self.pipelines.items():
            proba = (
                _probabilities(classifier_of(pipeline), features[task])
                if texts
                else np.empty((0, len(pipeline.classes_)))
            )
            proba[empty] = 1.0 / proba.shape[1]
            probabilities[task] = proba
        if "tone" in probabilities and (short := self.metadata.get(SHORT_TEXT_TONE)):
            temperatures = _short_text_temperatures(cleaned, short)
            tempered = temperatures != 1.0  # the others keep their scores bit for bit
            if tempered.any():
                probabilities["tone"][tempered] = temper(probabilities["tone"][tempered], temperatures[tempered])
        if self.tone_applies is not None:
            applies = (
                _probabilities(self.tone_applies, features["topic"])[
                    :, list(self.tone_applies.classes_).index(APPLIES)
                ]
                if texts
                else np.empty(0)
            )
            applies[empty] = 0.0
            probabilities[TONE_APPLIES] = applies
        return _Scores(probabilities, empty, features, cleaned)

    def _names(self, task: str, cleaned: str) -> Any:
        # Hashed columns have no names of their own: name those of this article by its own n-grams.
        if is_hashed(self.pipelines[task]):
            return article_term_names(self.pipelines[task], cleaned)
        if task not in self._feature_names:
            self._feature_names[task] = features_of(self.pipelines[task]).get_feature_names_out()
        return self._feature_names[task]

    def save(self, folder: str | Path) -> Path:
        """Write the model folder (created if missing; existing model files are replaced)."""
        return save_folder(self.pipelines, self.tone_applies, self.metadata, Path(folder))

    @classmethod
    def load(cls, folder: str | Path) -> NewsClassifier:
        """Load a model folder, refusing unknown formats, other scikit-learn versions and changed files."""
        pipelines, applies, metadata = load_folder(Path(folder))
        return cls(pipelines["topic"], pipelines.get("tone"), metadata, applies)


@dataclass(frozen=True)
class _Scores:
    """What scoring produced: probabilities per task (and P(applies)) and which texts were empty.

    ``features`` and ``cleaned`` are kept for a single chunk only (what :meth:`NewsClassifier.explain` reads).
    """

    probabilities: dict[str, np.ndarray]
    empty: np.ndarray
    features: dict[str, Any] | None = None
    cleaned: list[str] | None = None

    @property
    def applies(self) -> np.ndarray | None:
        return self.probabilities.get(TONE_APPLIES)

    def labelled(self) -> list[tuple[str, np.ndarray]]:
        """The (task, probability matrix) pairs, without the tone-applies vector."""
        return [(task, proba) for task, proba in self.probabilities.items() if task != TONE_APPLIES]

    @staticmethod
    def concat(parts: list[_Scores]) -> _Scores:
        return _Scores(
            {key: np.concatenate([part.probabilities[key] for part in parts]) for key in parts[0].probabilities},
            np.concatenate([part.empty for part in parts]),
        )


def temper(proba: np.ndarray, temperature: float | np.ndarray) -> np.ndarray:
    """Probabilities raised to ``1 / temperature`` (one value, or one per row) and renormalised:
    temperature scaling of log-probabilities. Above 1 less confident; the labels' order never changes."""
    logged = np.log(np.clip(proba, 1e-12, 1.0)) / np.reshape(temperature, (-1, 1))
    logged -= logged.max(axis=1, keepdims=True)
    scaled = np.exp(logged)
    return scaled / scaled.sum(axis=1, keepdims=True)


def _short_text_temperatures(cleaned: list[str], short: Mapping[str, float]) -> np.ndarray:
    """Each text's temperature under :data:`SHORT_TEXT_TONE`: full up to the short length, none from the long."""
    words = np.array([len(text.split()) for text in cleaned], dtype=float)
    full, none = float(short["full_up_to_words"]), float(short["none_from_words"])
    share = np.clip((none - words) / (none - full), 0.0, 1.0)
    return float(short["temperature"]) ** share


def _scalar_columns(model: NewsClassifier, scores: _Scores) -> dict[str, Any]:
    """The one-value-per-text fields of a prediction, column by column, in output order."""
    columns: dict[str, Any] = {}
    for task, proba in scores.labelled():
        labels = model.labels(task)
        columns[task] = [
            None if empty else labels[i] for i, empty in zip(proba.argmax(axis=1).tolist(), scores.empty.tolist())
        ]
        columns[f"{task}_probability"] = proba.max(axis=1)
        if task == "tone" and (poles := model.tone_poles) is not None:
            columns["tone_score"] = proba[:, labels.index(poles[0])]
    if scores.applies is not None:
        columns["tone_applies"] = scores.applies >= 0.5
        columns["tone_applies_probability"] = scores.applies
    columns["empty"] = scores.empty
    return columns


def _rows(model: NewsClassifier, scores: _Scores) -> list[dict[str, Any]]:
    """The dicts :meth:`NewsClassifier.predict` returns: the scalar fields plus ``<task>_probabilities``."""
    columns = {
        name: values if isinstance(values, list) else values.tolist()
        for name, values in _scalar_columns(model, scores).items()
    }
    per_label = {
        f"{task}_probability": (f"{task}_probabilities", model.labels(task), proba.tolist())
        for task, proba in scores.labelled()
    }
    rows = []
    for i in range(len(scores.empty)):
        row = {}
        for name, values in columns.items():
            row[name] = values[i]
            if name in per_label:
                key, labels, proba = per_label[name]
                row[key] = dict(zip(labels, proba[i]))
        rows.append(row)
    return rows


def _probabilities(classifier, features) -> np.ndarray:
    """``classifier.predict_proba(features)``, computed as scikit-learn does for the linear models
    training builds but without its input checks, which cost more than the arithmetic for one article.

    A ``CalibratedClassifierCV`` as training's calibration saves it (``ensemble=False`` around one of
    those linear models) is computed as its predict_proba does too; any other classifier takes its
    own predict_proba. Bit for bit what scikit-learn gives: tests/train/test_calibration.py."""
    from scipy.special import expit
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.utils.extmath import softmax

    if type(classifier) is CalibratedClassifierCV and len(classifier.calibrated_classifiers_) == 1:
        inner = classifier.calibrated_classifiers_[0]
        if _is_fast_linear(inner.estimator):
            return _calibrated(inner, _linear_scores(features, inner.estimator))
    kind = type(classifier)
    if not _is_fast_linear(classifier):
        return classifier.predict_proba(features)
    scores = _linear_scores(features, classifier)
    if kind is LogisticRegression and len(classifier.classes_) > 2:
        return softmax(scores, copy=False)
    if scores.shape[1] == 1:
        positive = expit(scores.ravel())
        return np.stack([1 - positive, positive], axis=1)
    # One-vs-rest logistic scores normalised over the classes (SGD), as scikit-learn's _predict_proba_lr.
    proba = expit(scores, out=scores)
    total = proba.sum(axis=1)
    proba[total == 0, :] = 1
    total[total == 0] = proba.shape[1]
    proba /= total.reshape(proba.shape[0], -1)
    return proba


def _linear_scores(features, classifier) -> np.ndarray:
    """``features @ coef_.T + intercept_``, bit for bit, without the copy scipy makes.

    scipy multiplies a CSR matrix by a C-ordered copy of ``coef_.T``: for a cep model a 40 MB copy
    (14 ms) for one article, for a streamed one 335 MB per evaluation. A batch using few of the
    columns is multiplied by those columns of ``coef_`` alone; one using many, by one row of
    ``coef_`` at a time. Either way every score sums the same terms in the same order."""
    from scipy import sparse

    features = sparse.csr_matrix(features)
    coef = classifier.coef_
    width = features.shape[1]
    if features.shape[0] == 1 and features.has_sorted_indices and features.has_canonical_format:
        used = features.indices  # one row as the shared features give it: each column once, in order
    elif features.nnz * 64 < width:
        used = np.unique(features.indices)
    else:
        used = None  # a large batch: gathering its columns would cost about what copying coef_ does
    if used is not None and len(used) * 4 <= width:
        narrow = sparse.csr_matrix(
            (features.data, np.searchsorted(used, features.indices), features.indptr),
            shape=(features.shape[0], len(used)),
        )
        return narrow @ np.ascontiguousarray(coef[:, used].T) + classifier.intercept_
    scores = np.empty((features.shape[0], coef.shape[0]), dtype=np.result_type(features.dtype, coef.dtype))
    for column, weights in enumerate(coef):
        scores[:, column] = features @ weights
    return scores + classifier.intercept_


def _is_fast_linear(classifier) -> bool:
    """Whether :func:`_probabilities` computes this classifier's probabilities itself."""
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    kind = type(classifier)
    return kind is LogisticRegression or (kind is SGDClassifier and classifier.loss == "log_loss")


def _calibrated(inner, scores: np.ndarray) -> np.ndarray:
    """scikit-learn 1.9's ``_CalibratedClassifier.predict_proba`` from the decision scores (``(n, k)``,
    ``(n, 1)`` when binary), less its input checks. Its classes are sorted and are the estimator's, so
    the class of each score column is its position (scikit-learn refits a LabelEncoder to find that)."""
    n_classes = len(inner.classes)
    if inner.method == "temperature":
        proba = inner.calibrators[0].predict(scores)
    else:
        proba = np.zeros((scores.shape[0], n_classes))
        for column, (this_score, calibrator) in enumerate(zip(scores.T, inner.calibrators)):
            proba[:, column + (n_classes == 2)] = _calibrator_predict(calibrator, this_score)
        if n_classes == 2:
            proba[:, 0] = 1.0 - proba[:, 1]
        else:
            denominator = np.sum(proba, axis=1)[:, np.newaxis]
            uniform = np.full_like(proba, 1 / n_classes)
            proba = np.divide(proba, denominator, out=uniform, where=denominator != 0)
    proba[(1.0 < proba) & (proba <= 1.0 + 1e-5)] = 1.0
    return proba


def _calibrator_predict(calibrator, scores: np.ndarray) -> np.ndarray:
    """``calibrator.predict(scores)``; a sigmoid map computed as scikit-learn 1.9's _SigmoidCalibration does,
    without its input checks (a tenth of a millisecond per class, more than the arithmetic for one article)."""
    from scipy.special import expit
    from sklearn.calibration import _SigmoidCalibration

    if type(calibrator) is _SigmoidCalibration:
        return expit(-(calibrator.a_ * scores + calibrator.b_))
    return calibrator.predict(scores)


def _as_texts(texts: Any) -> tuple[list[str], bool]:
    """The texts to score, and whether the caller passed a single text rather than a collection."""
    if isinstance(texts, (str, bytes, bytearray)) or texts is None or _is_missing(texts):
        return [as_text(texts)], True
    if isinstance(texts, Mapping):
        raise TypeError("predict takes a text or an iterable of texts, not a mapping; pass mapping['text']")
    if hasattr(texts, "columns"):  # a DataFrame: its text column, else its first column
        if len(texts.columns) == 0:
            raise ValueError("the DataFrame has no columns; pass one with a 'text' column holding the articles")
        texts = texts["text"] if "text" in texts.columns else texts.iloc[:, 0]
    try:
        items = iter(texts)
    except TypeError:  # a number or another scalar: one text
        return [as_text(texts)], True
    return [as_text(item) for item in items], False


def as_text(item: Any) -> str:
    """One input as text: missing values are empty, bytes are decoded leniently, anything else is str()."""
    if item is None or _is_missing(item):
        return ""
    if isinstance(item, (bytes, bytearray)):
        return bytes(item).decode("utf-8", errors="replace")
    text = item if type(item) is str else str(item)
    # Lone surrogates (from JSON "\\ud800", say) would make the answer unencodable as UTF-8.
    return text if text.isascii() else _SURROGATES.sub("\ufffd", text)


def _is_missing(item: Any) -> bool:
    """None-like values pandas and numpy use for a missing text."""
    if isinstance(item, (float, np.floating)):
        return bool(item != item)
    return type(item).__name__ in ("NAType", "NaTType")
