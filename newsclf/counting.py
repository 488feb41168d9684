"""N-gram counting in bulk: the counts scikit-learn's vectorizers compute, without a Python step per n-gram.

:class:`BulkTfidfVectorizer` is a ``TfidfVectorizer`` whose vocabulary, idf and matrices are
the ones ``TfidfVectorizer`` computes (tests compare them on arbitrary text). ``char_wb``
n-grams never cross a word boundary, so it computes them once per distinct word of a batch and
maps them to columns with dictionary lookups driven from C: news text repeats its words, and
fitting and transforming take a third less time. Fitting also sorts and prunes the vocabulary
without a Python step per n-gram, which is a quarter of the fit for word 1-3 grams on 30k news
summaries (900k n-grams). The other analyzers count n-grams as scikit-learn does.

A fitted vocabulary is pickled as its terms in one string, not as a dict: unpickling a million-term
dict took a second, the string takes milliseconds. Transforming looks the n-grams up in compiled code
(``newsclf/_ngrams.c``) through a table built from that string, and ``vocabulary_`` is built as a
dict only when something asks for it. Without the compiled module, scikit-learn's lookups are used.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from itertools import chain, repeat

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

try:
    from newsclf._ngrams import vocabulary_columns, vocabulary_table
except ImportError:  # not built (a bare source tree): Python dict lookups, same columns
    vocabulary_columns = vocabulary_table = None

# The whitespace runs scikit-learn's char_wb analyzer collapses before splitting a text into words.
_WHITE_SPACES = re.compile(r"\s\s+")
# scikit-learn's default word tokens, the only ones the compiled lookup finds.
DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
# Where a pickled BulkTfidfVectorizer keeps its terms, in column order, each followed by a NUL.
_TERMS = "_vocabulary_terms"


def compiled_analysis_applies(vectorizer) -> bool:
    """Whether newsclf/_ngrams.c finds the n-grams this vectorizer's analyzer finds (word with the
    default tokens, or char_wb; no custom preprocessing, tokenizing, stop words or accent stripping)."""
    return (
        vectorizer.input == "content"
        and vectorizer.analyzer in ("word", "char_wb")
        and (vectorizer.analyzer == "char_wb" or vectorizer.token_pattern == DEFAULT_TOKEN_PATTERN)
        and vectorizer.preprocessor is None
        and vectorizer.tokenizer is None
        and vectorizer.stop_words is None
        and vectorizer.strip_accents is None
    )


def flatten_counters(counters: list[Counter]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The keys of all counters in one list, with the row (counter position) and count of each."""
    keys: list[str] = []
    counts: list[int] = []
    for counter in counters:
        keys.extend(counter)
        counts.extend(counter.values())
    rows = np.repeat(np.arange(len(counters), dtype=np.int64), [len(counter) for counter in counters])
    return keys, rows, np.array(counts, dtype=np.int64)


def columns_by_word(
    words: list[str], ngrams: Callable[[str], list[str]], *lookups: Callable[[list[str]], np.ndarray]
) -> list[list[np.ndarray]]:
    """Per lookup (one per vocabulary), the columns of each word's n-grams.

    Each word is analysed once and each vocabulary is searched once for all the words: one NumPy
    call per word would cost more than the lookups themselves.
    """
    grams = list(map(ngrams, words))
    lengths = np.fromiter(map(len, grams), dtype=np.int64, count=len(grams))
    flat, bounds = list(chain.from_iterable(grams)), np.cumsum(lengths)[:-1]
    return [np.split(lookup(flat), bounds) if words else [] for lookup in lookups]


def word_cells(
    parts: list[np.ndarray], word_rows: np.ndarray, word_repeats: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, count) of every known n-gram, from each word occurrence's columns (``parts``, -1 for
    unknown n-grams) with the row of the word and how often it occurs there; a cell may repeat."""
    lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    columns = np.concatenate(parts) if parts else np.empty(0, np.int64)
    known = columns >= 0
    return np.repeat(word_rows, lengths)[known], columns[known], np.repeat(word_repeats, lengths)[known]


def known_columns(vocabulary: dict[str, int], grams) -> np.ndarray:
    """The column of each gram, -1 for grams outside the vocabulary (looked up in C, not a Python loop)."""
    return np.fromiter(map(vocabulary.get, grams, repeat(-1)), dtype=np.int64, count=len(grams))


class BulkTfidfVectorizer(TfidfVectorizer):
    """``TfidfVectorizer`` with the same results, counting ``char_wb`` n-grams once per distinct word,
    sorting and pruning the vocabulary with C-driven dictionary operations, and transforming through
    compiled lookups in a vocabulary pickled as one string."""

    @property
    def vocabulary_(self) -> dict[str, int]:
        """The fitted ``{term: column}``, built from the pickled terms the first time it is asked for."""
        state = self.__dict__
        if "_vocabulary" not in state:
            if _TERMS not in state:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute 'vocabulary_'")
            terms = _terms_of(state[_TERMS])
            state["_vocabulary"] = dict(zip(terms, range(len(terms))))
        return state["_vocabulary"]

    @vocabulary_.setter
    def vocabulary_(self, vocabulary: dict[str, int]) -> None:
        self.__dict__["_vocabulary"] = vocabulary
        for derived in (_TERMS, "_table"):
            self.__dict__.pop(derived, None)

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: the instance's own dict otherwise
        state.pop("_table", None)
        vocabulary = state.get("_vocabulary")
        if vocabulary is not None and _TERMS not in state:
            terms = _terms_string(vocabulary)
            if terms is not None:
                state[_TERMS] = terms
                del state["_vocabulary"]
        return state

    def __setstate__(self, state):
        state = dict(state)
        if "vocabulary_" in state:  # pickled before the vocabulary became a property (format 3)
            state["_vocabulary"] = state.pop("vocabulary_")
        super().__setstate__(state)

    def _check_vocabulary(self):
        if "_vocabulary" not in self.__dict__ and _TERMS in self.__dict__:  # fitted; no dict needed to check
            if not self.__dict__[_TERMS]:
                raise ValueError("Vocabulary is empty")
            return
        super()._check_vocabulary()

    def get_feature_names_out(self, input_features=None):
        """The terms in column order (scikit-learn's), read from the pickled terms when the dict is not built."""
        if "_vocabulary" not in self.__dict__ and _TERMS in self.__dict__:
            return np.asarray(_terms_of(self.__dict__[_TERMS]), dtype=object)
        return super().get_feature_names_out(input_features)

    def vocabulary_size(self) -> int:
        """How many terms (columns) the fitted vocabulary has, without building the dict."""
        state = self.__dict__
        if "_vocabulary" in state:
            return len(state["_vocabulary"])
        if "_table" in state:
            return len(state["_table"][1]) // 8 - 1  # term offsets: one per term, plus the end
        return state[_TERMS].count("\0")

    def compiled_columns(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """``(indptr, indices)``: the column of every n-gram of each text that the vocabulary holds, repeats
        included, found in compiled code; None where that does not apply (see :func:`compiled_analysis_applies`)."""
        if vocabulary_columns is None or not compiled_analysis_applies(self):
            return None
        table = self.__dict__.get("_table")
        if table is None:
            terms = self.__dict__.get(_TERMS)
            if terms is None:
                terms = _terms_string(self.vocabulary_)
                if terms is None:
                    return None
            encoded = terms.encode("utf-8", "surrogatepass")
            table = self.__dict__["_table"] = (encoded, *vocabulary_table(encoded))
        return compiled_arrays(vocabulary_columns(texts, self.analyzer, *self.ngram_range, self.lowercase, *table))

    def _sort_features(self, X, vocabulary: dict[str, int]):
        terms = sorted(vocabulary)  # comparing strings, not (term, column) pairs
        old_columns = np.fromiter(map(vocabulary.__getitem__, terms), dtype=np.int64, count=len(terms))
        new_column = np.empty(len(terms), dtype=X.indices.dtype)
        new_column[old_columns] = np.arange(len(terms), dtype=X.indices.dtype)
        # In place, as scikit-learn's caller expects; updating existing keys keeps their order, as its loop does.
        vocabulary.update(zip(terms, range(len(terms))))
        X.indices = new_column.take(X.indices, mode="clip")
        return X

    def _limit_features(self, X, vocabulary: dict[str, int], high=None, low=None, limit=None):
        if limit is not None:  # the top-``limit`` selection is rare here: scikit-learn's own
            return super()._limit_features(X, vocabulary, high, low, limit)
        document_frequency = np.bincount(X.indices, minlength=X.shape[1])
        keep = np.ones(X.shape[1], dtype=bool)
        if high is not None:
            keep &= document_frequency <= high
        if low is not None:
            keep &= document_frequency >= low
        if keep.all():
            return X
        kept_columns = np.flatnonzero(keep)
        if not len(kept_columns):
            raise ValueError("After pruning, no terms remain. Try a lower min_df or a higher max_df.")
        keep_list, new_column = keep.tolist(), (np.cumsum(keep) - 1).tolist()
        kept = {term: new_column[column] for term, column in vocabulary.items() if keep_list[column]}
        vocabulary.clear()
        vocabulary.update(kept)
        return X[:, kept_columns]

    def _count_vocab(self, raw_documents: Iterable, fixed_vocab: bool):
        if fixed_vocab and self.input == "content":
            documents = list(raw_documents)
            found = self.compiled_columns(documents)
            if found is not None:
                shape = (len(documents), self.vocabulary_size())
                return self.__dict__.get("_vocabulary"), _as_scikit_learns(summed_counts(*found, shape, self.dtype))
            raw_documents = documents
        if self.analyzer != "char_wb" or self.input != "content":
            return super()._count_vocab(raw_documents, fixed_vocab)
        documents = list(raw_documents)
        if fixed_vocab:
            vocabulary = self.vocabulary_

            def columns_of(grams):
                return known_columns(vocabulary, grams)
        else:
            vocabulary = defaultdict()
            vocabulary.default_factory = vocabulary.__len__  # every unseen n-gram gets the next column

            def columns_of(grams):
                return np.fromiter(map(vocabulary.__getitem__, grams), dtype=np.int64, count=len(grams))

        preprocess, decode = self.build_preprocessor(), self.decode
        words, word_rows, word_repeats = flatten_counters(
            [Counter(_WHITE_SPACES.sub(" ", preprocess(decode(document))).split()) for document in documents]
        )
        distinct = list(dict.fromkeys(words))
        per_word = dict(zip(distinct, columns_by_word(distinct, self._char_wb_ngrams, columns_of)[0]))
        rows, columns, counts = word_cells([per_word[word] for word in words], word_rows, word_repeats)
        if not fixed_vocab:
            vocabulary = dict(vocabulary)
            if not vocabulary:
                raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
        matrix = sparse.csr_matrix(
            (counts.astype(self.dtype), (rows, columns)), shape=(len(documents), len(vocabulary)), dtype=self.dtype
        )
        return vocabulary, _as_scikit_learns(matrix)


def compiled_arrays(found: tuple[bytes, bytes] | None) -> tuple[np.ndarray, np.ndarray] | None:
    """``(indptr, indices)`` arrays of a newsclf/_ngrams.c call's bytes (None stays None: not handled there)."""
    if found is None:
        return None
    return np.frombuffer(found[0], dtype=np.int64), np.frombuffer(found[1], dtype=np.int32)


def summed_counts(indptr: np.ndarray, indices: np.ndarray, shape: tuple[int, int], dtype) -> sparse.csr_matrix:
    """The count matrix of :func:`compiled_arrays`' columns: a 1 per n-gram, a row's repeated columns summed
    and sorted as scikit-learn sums them (FeatureHasher, CountVectorizer), int32 indices where they fit."""
    index_dtype = np.int32 if indptr[-1] <= np.iinfo(np.int32).max else np.int64
    matrix = sparse.csr_matrix(
        (np.ones(len(indices), dtype=dtype), indices.astype(index_dtype), indptr.astype(index_dtype)), shape=shape
    )
    matrix.sum_duplicates()  # in place: astype gave writable copies of the compiled call's read-only bytes
    return matrix


def _as_scikit_learns(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    """Repeated cells summed and columns sorted within each row, with the index types scikit-learn's has."""
    matrix.sum_duplicates()
    index_dtype = np.int32 if matrix.nnz <= np.iinfo(np.int32).max else np.int64
    matrix.indices = matrix.indices.astype(index_dtype, copy=False)
    matrix.indptr = matrix.indptr.astype(index_dtype, copy=False)
    return matrix


def _terms_string(vocabulary: dict[str, int]) -> str | None:
    """The terms in column order, each followed by a NUL; None when the columns are not 0..n-1 or a term
    holds a NUL (the dict is pickled as it is then)."""
    columns = np.fromiter(vocabulary.values(), dtype=np.int64, count=len(vocabulary))
    if len(columns) and (columns.min() < 0 or columns.max() >= len(columns) or len(np.unique(columns)) < len(columns)):
        return None
    terms = np.empty(len(columns), dtype=object)
    terms[columns] = list(vocabulary)
    joined = "\0".join(terms.tolist()) + "\0" if len(terms) else ""
    return joined if joined.count("\0") == len(terms) else None


def _terms_of(terms: str) -> list[str]:
    return terms.split("\0")[:-1]


def has_vocabulary(vectorizer) -> bool:
    """Whether a TfidfVectorizer is fitted (has a vocabulary), without building a pickled one's dict."""
    state = vars(vectorizer)
    return "_vocabulary" in state or _TERMS in state or "vocabulary_" in state


def vocabulary_size(vectorizer) -> int:
    """The number of columns of a fitted TfidfVectorizer's vocabulary, without building a pickled one's dict."""
    if isinstance(vectorizer, BulkTfidfVectorizer):
        return vectorizer.vocabulary_size()
    return len(vectorizer.vocabulary_)
