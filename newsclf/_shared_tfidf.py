"""Fast prediction-time transform for several fitted TF-IDF FeatureUnions over the same texts.

A model runs a topic and a tone pipeline whose vectorizers share their analyzer settings but
not their vocabularies, so ``FeatureUnion.transform`` analyses every text once per pipeline.
:class:`SharedTfidf` analyses each text once per distinct analyzer, and for ``char_wb`` n-grams
(which never cross a word boundary) each distinct word once, remembering recent words. The
matrices are the ones ``FeatureUnion.transform`` returns (tests compare them on arbitrary text).
"""

from __future__ import annotations

import contextlib
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from itertools import islice

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline

from newsclf.cleaning import ArticleCleaner
from newsclf.counting import (
    BulkTfidfVectorizer,
    columns_by_word,
    flatten_counters,
    has_vocabulary,
    known_columns,
    vocabulary_size,
    word_cells,
)
from newsclf.hashing import HashedTfidfVectorizer
from newsclf.steps import CLEAN, TFIDF, cleaner_of, tfidf_of

# Words remembered per analyzer: a few hundred bytes each (about 2.5 KB for the longest), so tens of MB at most.
_WORD_CACHE_SIZE = 1 << 15
# Longer "words" (URLs, runs of symbols) are rare and would only crowd the cache.
_LONGEST_CACHED_WORD = 40


def is_supported(union: object) -> bool:
    """Whether :class:`SharedTfidf` reproduces ``union.transform`` exactly."""
    if not isinstance(union, FeatureUnion) or union.transformer_weights is not None or not union.transformer_list:
        return False
    vectorizers = [vectorizer for _, vectorizer in union.transformer_list]
    return all(map(_supported_vectorizer, vectorizers)) and len({np.dtype(v.dtype) for v in vectorizers}) == 1


def _supported_vectorizer(vectorizer: object) -> bool:
    return (
        type(vectorizer) in (TfidfVectorizer, BulkTfidfVectorizer)
        and has_vocabulary(vectorizer)
        and vectorizer.input == "content"
        and vectorizer.analyzer in ("word", "char", "char_wb")
        and vectorizer.preprocessor is None
        and vectorizer.tokenizer is None
        and vectorizer.strip_accents is None
        and vectorizer.norm in ("l2", None)
    )


def _analysis_key(vectorizer: TfidfVectorizer) -> tuple:
    """The settings that decide what a vectorizer's analyzer returns for a text."""
    stop_words = vectorizer.stop_words
    if stop_words is not None and not isinstance(stop_words, str):
        stop_words = tuple(sorted(stop_words))
    return (
        vectorizer.analyzer,
        tuple(vectorizer.ngram_range),
        vectorizer.lowercase,
        vectorizer.token_pattern,
        stop_words,
    )


class _Analysis:
    """One analyzer and the vocabularies of every vectorizer that uses it."""

    def __init__(self, vectorizer: TfidfVectorizer):
        self.analyze = vectorizer.build_analyzer()
        self.per_word = vectorizer.analyzer == "char_wb"
        self.vectorizers: list[TfidfVectorizer] = []
        self._words: dict[str, list[np.ndarray]] = {}

    @property
    def vocabularies(self) -> list[dict[str, int]]:
        return [vectorizer.vocabulary_ for vectorizer in self.vectorizers]

    def add(self, vectorizer: TfidfVectorizer) -> int:
        self.vectorizers.append(vectorizer)
        return len(self.vectorizers) - 1

    def counts(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per vocabulary: (row, column, count) of every known n-gram of every text.

        A (row, column) cell may appear more than once; its counts add up.
        """
        compiled = self._compiled_counts(texts)
        if compiled is not None:
            return compiled
        if self.per_word:
            return self._counts_by_word(texts)
        grams, rows, counts = flatten_counters([Counter(self.analyze(text)) for text in texts])
        result = []
        for vocabulary in self.vocabularies:
            columns = known_columns(vocabulary, grams)
            known = columns >= 0
            result.append((rows[known], columns[known], counts[known]))
        return result

    def _compiled_counts(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None:
        """:meth:`counts` through each vocabulary's compiled lookup, or None where one does not apply."""
        if not all(isinstance(vectorizer, BulkTfidfVectorizer) for vectorizer in self.vectorizers):
            return None
        texts = list(texts)
        result = []
        for vectorizer in self.vectorizers:
            found = vectorizer.compiled_columns(texts)
            if found is None:
                return None
            indptr, columns = found
            rows = np.repeat(np.arange(len(texts), dtype=np.int64), np.diff(indptr))
            result.append((rows, columns.astype(np.int64), np.ones(len(columns), dtype=np.int64)))
        return result

    def _counts_by_word(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        # char_wb n-grams of a text are the n-grams of each of its whitespace-separated words.
        words, word_rows, word_repeats = flatten_counters([Counter(text.split()) for text in texts])
        entries = list(map(self._words.get, words))
        unseen = list(dict.fromkeys(word for word, entry in zip(words, entries) if entry is None))
        if unseen:
            learnt = self._remember(unseen)
            entries = [learnt[word] if entry is None else entry for word, entry in zip(words, entries)]
        return [
            word_cells([entry[index] for entry in entries], word_rows, word_repeats)
            for index in range(len(self.vectorizers))
        ]

    def _remember(self, words: list[str]) -> dict[str, list[np.ndarray]]:
        """Each word's columns per vocabulary (-1 for n-grams outside it); short words are kept for later texts."""
        lookups = [partial(known_columns, vocabulary) for vocabulary in self.vocabularies]
        learnt: dict[str, list[np.ndarray]] = {}
        # Looked up apart, so that the arrays the cached entries are views of hold no long word's n-grams.
        short = [word for word in words if len(word) <= _LONGEST_CACHED_WORD]
        long = [word for word in words if len(word) > _LONGEST_CACHED_WORD]
        for group, cached in ((short, True), (long, False)):
            if not group:
                continue
            per_vocabulary = columns_by_word(group, self.analyze, *lookups)
            entries = {word: [columns[i] for columns in per_vocabulary] for i, word in enumerate(group)}
            learnt |= entries
            if cached:
                if len(self._words) + len(entries) > _WORD_CACHE_SIZE:
                    self._words.clear()
                self._words.update(islice(entries.items(), _WORD_CACHE_SIZE))
        return learnt


class SharedTfidf:
    """Transform texts with several fitted FeatureUnions of TfidfVectorizers at once.

    Every union must pass :func:`is_supported`. :meth:`transform` returns one CSR matrix per
    union, equal to ``union.transform(texts)``.
    """

    def __init__(self, unions: Sequence[FeatureUnion]):
        if not all(map(is_supported, unions)):
            raise ValueError("every union must be a FeatureUnion of fitted TfidfVectorizers (see is_supported)")
        analyses: dict[tuple, _Analysis] = {}
        self._unions = []
        for union in unions:
            vectorizers = [vectorizer for _, vectorizer in union.transformer_list]
            sources = []
            for vectorizer in vectorizers:
                analysis = analyses.setdefault(_analysis_key(vectorizer), _Analysis(vectorizer))
                sources.append((analysis, analysis.add(vectorizer)))
            self._unions.append(_UnionWeights(vectorizers, sources))
        self._analyses = list(analyses.values())

    def transform(self, texts: Sequence[str]) -> list[sparse.csr_matrix]:
        """One TF-IDF matrix per union, rows in ``texts`` order."""
        counted = {id(analysis): analysis.counts(texts) for analysis in self._analyses}
        return [
            union.matrix([counted[id(analysis)][index] for analysis, index in union.sources], len(texts))
            for union in self._unions
        ]


class _UnionWeights:
    """The TF-IDF arithmetic of one union's blocks, applied to all its columns at once.

    Same operations in the same order and precision as CountVectorizer, TfidfTransformer and
    ``normalize`` (squares summed in float64, row by row in column order), so the result is
    bit-for-bit the union's own.
    """

    def __init__(self, vectorizers: list[TfidfVectorizer], sources: list[tuple[_Analysis, int]]):
        self.sources = sources
        widths = [vocabulary_size(vectorizer) for vectorizer in vectorizers]
        self.offsets = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.int64)
        self.width = int(sum(widths))
        self.dtype = vectorizers[0].dtype
        self.n_blocks = len(vectorizers)

        def per_column(values):
            return np.repeat(np.asarray(values), widths)

        self.block = per_column(range(len(vectorizers)))
        self.binary = per_column([vectorizer.binary for vectorizer in vectorizers])
        self.sublinear = per_column([vectorizer.sublinear_tf for vectorizer in vectorizers])
        self.l2 = per_column([vectorizer.norm == "l2" for vectorizer in vectorizers])
        idf = [
            vectorizer.idf_ if vectorizer.use_idf else np.ones(width) for vectorizer, width in zip(vectorizers, widths)
        ]
        self.idf = np.concatenate(idf).astype(self.dtype)

    def matrix(self, per_block: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n_rows: int) -> sparse.csr_matrix:
        keys = [rows * self.width + offset + columns for offset, (rows, columns, _) in zip(self.offsets, per_block)]
        weights = [counts for _, _, counts in per_block]
        # One sort for the batch: cells ordered by row, then column, as the union orders them.
        cells, position = np.unique(np.concatenate(keys), return_inverse=True)
        data = np.bincount(position, weights=np.concatenate(weights), minlength=len(cells)).astype(self.dtype)
        rows, columns = np.divmod(cells, self.width)
        data[self.binary[columns]] = 1
        sublinear = self.sublinear[columns]
        data[sublinear] = np.log(data[sublinear]) + 1.0
        data *= self.idf[columns]
        normed = self.l2[columns]
        if normed.any():
            group = rows * self.n_blocks + self.block[columns]
            squares = (data * data).astype(np.float64)
            norms = np.sqrt(np.bincount(group[normed], weights=squares[normed], minlength=n_rows * self.n_blocks))
            data[normed] = (data[normed].astype(np.float64) / norms[group[normed]]).astype(self.dtype)
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
        matrix = sparse.csr_matrix((data, columns, indptr), shape=(n_rows, self.width))
        matrix.has_sorted_indices = True
        return matrix


class _Remembered:
    """Features kept for chosen texts: per set of feature steps, each text's cleaned form and each pipeline's row.

    The steps are referred to by id and watched, not held: once one is garbage (a search candidate
    left behind), its rows go too, and no later object with the same id can meet them."""

    def __init__(self):
        self.texts: set[str] = set()
        self.rows: dict[tuple[int, ...], dict[str, tuple[str, list[tuple[np.ndarray, np.ndarray]]]]] = {}
        self.columns: dict[tuple[int, ...], list[tuple[int, np.dtype]]] = {}  # each pipeline's width and dtype

    def rows_of(self, steps: list[object]) -> tuple[tuple[int, ...], dict]:
        owner = tuple(map(id, steps))
        if owner not in self.rows:
            self.rows[owner] = {}
            for step in steps:
                weakref.finalize(step, self._forget, owner)
        return owner, self.rows[owner]

    def _forget(self, owner: tuple[int, ...]) -> None:
        self.rows.pop(owner, None)
        self.columns.pop(owner, None)


_REMEMBERED: _Remembered | None = None


@contextlib.contextmanager
def remembering_features() -> Iterator[None]:
    """Within: the features of texts named by :func:`remember_features` are computed once per set of feature
    pipelines and reused (a training run scores its held-out articles in every epoch, in calibration,
    evaluation, promotion and the explanation pages); the same matrices, bit for bit."""
    global _REMEMBERED
    outer, _REMEMBERED = _REMEMBERED, _Remembered()
    try:
        yield
    finally:
        _REMEMBERED = outer


def remember_features(texts: Iterable[str]) -> None:
    """Keep the features of ``texts`` once computed, inside :func:`remembering_features` (outside: nothing)."""
    if _REMEMBERED is not None:
        _REMEMBERED.texts.update(texts)


class SharedFeatures:
    """The features of several fitted ``clean -> tfidf`` pipelines, computed together.

    When every pipeline is an :class:`ArticleCleaner` with the same settings followed by a
    supported FeatureUnion, each text is cleaned once and analysed through :class:`SharedTfidf`;
    when they are followed by FeatureUnions of hashed blocks, each text is cleaned once and its
    n-grams counted once per distinct hashing, each union weighting the counts with its own idf;
    otherwise each pipeline transforms the texts itself.
    """

    def __init__(self, feature_pipelines: Sequence[Pipeline]):
        self._pipelines = list(feature_pipelines)
        first = cleaner_of(self._pipelines[0])
        self._cleaner = first if isinstance(first, ArticleCleaner) else None
        self._shared = self._hashed = None
        if self._same_cleaning():
            unions = [tfidf_of(pipeline) for pipeline in self._pipelines]
            if all(map(is_supported, unions)):
                self._shared = SharedTfidf(unions)
            elif all(map(_is_hashed_union, unions)):
                self._hashed = unions

    def _same_cleaning(self) -> bool:
        if self._cleaner is None:
            return False
        for pipeline in self._pipelines:
            if [name for name, _ in pipeline.steps] != [CLEAN, TFIDF]:
                return False
            cleaner = cleaner_of(pipeline)
            if type(cleaner) is not ArticleCleaner or cleaner.get_params() != self._cleaner.get_params():
                return False
        return True

    def transform(self, texts: Sequence[str]) -> tuple[list[str], list[sparse.csr_matrix]]:
        """The cleaned texts (as the first pipeline's cleaner sees them) and one matrix per pipeline."""
        memo = _REMEMBERED
        if memo is None or not memo.texts or not any(text in memo.texts for text in texts):
            return self._transform(texts)
        # Keyed by the steps themselves: each model (each epoch's, the calibrated one) slices new feature
        # pipelines out of the same cleaner and TF-IDF steps.
        owner, known = memo.rows_of([step for pipeline in self._pipelines for _, step in pipeline.steps])
        rows = [known.get(text) for text in texts]
        missing = [i for i, row in enumerate(rows) if row is None]
        if missing:
            cleaned, matrices = self._transform([texts[i] for i in missing])
            memo.columns[owner] = [(matrix.shape[1], matrix.dtype) for matrix in matrices]
            for position, i in enumerate(missing):
                rows[i] = (cleaned[position], [_row(matrix, position) for matrix in matrices])
                if texts[i] in memo.texts:
                    known[texts[i]] = rows[i]
        stacked = [
            _stacked([row[1][k] for row in rows], width, dtype) for k, (width, dtype) in enumerate(memo.columns[owner])
        ]
        return [row[0] for row in rows], stacked

    def _transform(self, texts: Sequence[str]) -> tuple[list[str], list[sparse.csr_matrix]]:
        cleaned = list(self._cleaner.transform(texts)) if self._cleaner is not None else list(texts)
        if self._shared is not None:
            return cleaned, self._shared.transform(cleaned)
        if self._hashed is not None and cleaned:
            return cleaned, _hashed_transform(self._hashed, cleaned)
        if not cleaned:  # scikit-learn refuses to transform no samples
            return cleaned, [
                sparse.csr_matrix((0, len(pipeline.get_feature_names_out()))) for pipeline in self._pipelines
            ]
        return cleaned, [sparse.csr_matrix(pipeline.transform(texts)) for pipeline in self._pipelines]


def _is_hashed_union(union: object) -> bool:
    return (
        isinstance(union, FeatureUnion)
        and union.transformer_weights is None
        and bool(union.transformer_list)
        and all(type(vectorizer) is HashedTfidfVectorizer for _, vectorizer in union.transformer_list)
    )


def _hashed_transform(unions: list[FeatureUnion], cleaned: list[str]) -> list[sparse.csr_matrix]:
    """``union.transform(cleaned)`` for every union of hashed blocks, each distinct hashing counted once
    (a streamed model's topic and tone pipelines hash the same n-grams into the same columns)."""
    counted: dict[str, sparse.csr_matrix] = {}
    matrices = []
    for union in unions:
        blocks = []
        for _, vectorizer in union.transformer_list:
            key = repr(sorted(vectorizer.get_params().items()))
            if key not in counted:
                counted[key] = vectorizer.counts(cleaned)
            blocks.append(vectorizer.weighted(counted[key]))
        matrices.append(sparse.hstack(blocks).tocsr())  # as FeatureUnion stacks its blocks
    return matrices


def _row(matrix: sparse.csr_matrix, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Row ``i`` of a CSR matrix as its column indices and values (views)."""
    start, end = matrix.indptr[i], matrix.indptr[i + 1]
    return matrix.indices[start:end], matrix.data[start:end]


def _stacked(rows: list[tuple[np.ndarray, np.ndarray]], width: int, dtype) -> sparse.csr_matrix:
    """The CSR matrix of these rows, in order."""
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(indices) for indices, _ in rows], out=indptr[1:])
    indices = np.concatenate([indices for indices, _ in rows]) if rows else np.empty(0, np.int32)
    data = np.concatenate([data for _, data in rows]) if rows else np.empty(0, dtype)
    return sparse.csr_matrix((data.astype(dtype, copy=False), indices, indptr), shape=(len(rows), width))
