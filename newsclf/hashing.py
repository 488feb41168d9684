"""Hashed TF-IDF blocks for models trained on corpora larger than memory (``[fit] mode = "streaming"``).

A :class:`HashedTfidfVectorizer` maps n-grams to ``n_features`` columns through scikit-learn's
``HashingVectorizer`` (no vocabulary, so its size does not grow with the corpus) and weights the
counts as ``TfidfVectorizer`` does, with an ``idf_`` computed by training from document frequencies
counted in one streaming pass (features/hashing.py). A saved model pickles it, so it lives here.
Word and char_wb n-grams are hashed in compiled code (``newsclf/_ngrams.c``), which gives the
columns ``HashingVectorizer`` gives, bit for bit, seven times faster; other settings, and a source
tree whose extension was not built, use scikit-learn's own code.

Hashed columns have no names: :func:`article_term_names` names the columns one article uses by
hashing that article's own n-grams, which is what explanations report for hashed blocks.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from scipy import sparse
from sklearn.feature_extraction import FeatureHasher
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import normalize

from newsclf.counting import compiled_analysis_applies, compiled_arrays, flatten_counters, summed_counts
from newsclf.steps import tfidf_of

try:
    from newsclf._ngrams import hashed_columns
except ImportError:  # not built (a bare source tree): scikit-learn's hashing, same columns, slower
    hashed_columns = None

# Texts counted and weighted at a time by HashedTfidfVectorizer.transform.
_TRANSFORM_CHUNK = 2000


class HashedTfidfVectorizer(HashingVectorizer):
    """Hashed n-gram counts weighted as ``TfidfVectorizer(sublinear_tf=..., norm="l2")`` weights them.

    ``idf_`` (one weight per column, 0 for a column left out by document-frequency limits) is set
    by :meth:`set_document_frequencies`; until then every weight is 1.
    """

    def __init__(
        self,
        *,
        analyzer: str = "word",
        ngram_range: tuple[int, int] = (1, 1),
        n_features: int = 2**20,
        lowercase: bool = True,
        sublinear_tf: bool = True,
        dtype=np.float32,
    ):
        super().__init__(
            analyzer=analyzer,
            ngram_range=ngram_range,
            n_features=n_features,
            lowercase=lowercase,
            norm=None,
            alternate_sign=False,
            dtype=dtype,
        )
        self.sublinear_tf = sublinear_tf

    def counts(self, texts) -> sparse.csr_matrix:
        """Raw n-gram counts per hashed column, one row per text (``HashingVectorizer.transform``'s)."""
        if isinstance(texts, str):
            return super().transform(texts)  # scikit-learn's error for a lone string
        texts = list(texts)
        compiled = self._compiled_counts(texts)
        if compiled is not None:
            return compiled
        if self.analyzer != "char_wb":
            return super().transform(texts)
        # char_wb n-grams never cross a word boundary: hash each distinct word of the batch once and
        # add the words' rows up (a third of the time on news text, which repeats its words).
        texts = [text.lower() if self.lowercase else text for text in texts]
        words, rows, repeats = flatten_counters([Counter(text.split()) for text in texts])
        distinct = dict.fromkeys(words)
        index = dict(zip(distinct, range(len(distinct))))
        columns = np.fromiter(map(index.__getitem__, words), dtype=np.int64, count=len(words))
        occurrences = sparse.csr_matrix((repeats.astype(self.dtype), (rows, columns)), shape=(len(texts), len(index)))
        if not index:
            return sparse.csr_matrix((len(texts), self.n_features), dtype=self.dtype)
        matrix = (occurrences @ super().transform(list(index))).tocsr()
        matrix.sort_indices()
        return matrix

    def _compiled_counts(self, texts: list[str]) -> sparse.csr_matrix | None:
        """:meth:`counts` through the compiled hasher, or None where it does not apply."""
        supported = hashed_columns is not None and compiled_analysis_applies(self) and not self.binary
        found = supported and hashed_columns(texts, self.analyzer, *self.ngram_range, self.n_features, self.lowercase)
        if not found:
            return None
        return summed_counts(*compiled_arrays(found), (len(texts), self.n_features), self.dtype)

    def set_document_frequencies(
        self, document_frequency: np.ndarray, n_documents: int, min_df: int = 1, max_df: float = 1.0
    ) -> HashedTfidfVectorizer:
        """Set ``idf_`` from per-column document counts, as ``TfidfTransformer(smooth_idf=True)`` computes it.

        Columns in fewer than ``min_df`` or more than ``max_df * n_documents`` documents get weight 0.
        """
        document_frequency = np.asarray(document_frequency, dtype=np.float64)
        idf = np.log((1.0 + n_documents) / (1.0 + document_frequency)) + 1.0
        idf[(document_frequency < min_df) | (document_frequency > max_df * n_documents)] = 0.0
        self.idf_ = idf.astype(self.dtype)
        return self

    def transform(self, X):
        """TF-IDF rows, l2-normalised, in the hashed columns; computed ``_TRANSFORM_CHUNK`` texts at a
        time, as the counting and weighting of many texts at once would hold three times the result."""
        if isinstance(X, str) or not hasattr(X, "__len__") or len(X) <= _TRANSFORM_CHUNK:
            return self.weighted(self.counts(X))
        chunks = [self.weighted(self.counts(X[i : i + _TRANSFORM_CHUNK])) for i in range(0, len(X), _TRANSFORM_CHUNK)]
        return sparse.vstack(chunks, format="csr")

    def weighted(self, counts: sparse.csr_matrix) -> sparse.csr_matrix:
        """:meth:`transform`'s rows from :meth:`counts`' (streaming training keeps counts between epochs)."""
        matrix = counts.astype(self.dtype)  # a copy: weighted in place below
        if self.sublinear_tf:
            np.log(matrix.data, matrix.data)
            matrix.data += 1.0
        idf = getattr(self, "idf_", None)
        if idf is not None:
            matrix.data *= idf[matrix.indices]  # as matrix @ diags(idf), without a second matrix
            matrix.eliminate_zeros()
        return normalize(matrix, norm="l2", copy=False)

    def fit_transform(self, X, y=None):
        """The transform (fitting a hashed block only checks its settings; ``idf_`` is set apart)."""
        return self.fit(X, y).transform(X)


def is_hashed(pipeline: Pipeline) -> bool:
    """Whether any TF-IDF block of a task pipeline is hashed (its columns have no names)."""
    blocks = getattr(tfidf_of(pipeline), "transformer_list", [])
    return any(isinstance(vectorizer, HashedTfidfVectorizer) for _, vectorizer in blocks)


def article_term_names(pipeline: Pipeline, cleaned: str) -> dict[int, str]:
    """``{column: "block__n-gram"}`` for the columns of one cleaned article, as feature names read.

    Found by hashing the article's own n-grams; when two of its n-grams share a column (rare at
    2**20 columns) the first one, in text order, names it.
    """
    names: dict[int, str] = {}
    offset = 0
    for block, vectorizer in tfidf_of(pipeline).transformer_list:
        grams = list(dict.fromkeys(vectorizer.build_analyzer()(cleaned)))
        if grams:
            # Each n-gram hashed as HashingVectorizer hashes its tokens (not analysed again).
            hasher = FeatureHasher(n_features=vectorizer.n_features, input_type="string", alternate_sign=False)
            columns = hasher.transform([[gram] for gram in grams]).tocsr()
            for gram, row in zip(grams, np.split(columns.indices, columns.indptr[1:-1])):
                for column in row.tolist():
                    names.setdefault(offset + column, f"{block}__{gram}")
        offset += vectorizer.n_features
    return names
