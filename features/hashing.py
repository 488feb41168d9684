"""Hashed TF-IDF features for streaming training: the article cleaner, then word and character
n-grams hashed into a fixed number of columns, weighted by an IDF counted in one streaming pass.

The blocks read the same ``[features]`` settings as the in-memory ones (analyzer, n-gram range,
sublinear tf, ``min_df`` / ``max_df`` applied to the hashed columns' document counts);
``max_features`` has no meaning for hashed columns and is ignored. Two n-grams that hash to one
column share its count and its document frequency: at 2**20 columns a few per cent of a large
corpus's rare n-grams do, which costs little accuracy and keeps memory independent of the corpus.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.pipeline import FeatureUnion

from newsclf.features.tfidf import FeatureConfig, NgramConfig, build_feature_steps
from newsclf.hashing import HashedTfidfVectorizer
from newsclf.steps import TFIDF


def build_hashed_steps(config: FeatureConfig, n_features: int) -> list[tuple[str, object]]:
    """The ``clean`` and ``tfidf`` steps, with a hashed block per enabled ``[features]`` block (idf not yet set)."""
    clean = build_feature_steps(config)[0]  # the in-memory pipeline's cleaner, as configured
    blocks = [
        (name, _hashed(block, n_features))
        for name, block in (("word", config.word), ("char", config.char))
        if block.enabled
    ]
    return [clean, (TFIDF, FeatureUnion(blocks))]


def _hashed(block: NgramConfig, n_features: int) -> HashedTfidfVectorizer:
    return HashedTfidfVectorizer(
        analyzer=block.analyzer,
        ngram_range=tuple(block.ngram_range),
        n_features=n_features,
        sublinear_tf=block.sublinear_tf,
        dtype=np.float32,
    )


class DocumentFrequencies:
    """Per-column document counts of each hashed block, added up batch by batch (memory: one
    int64 per column and block, whatever the number of documents)."""

    def __init__(self, union: FeatureUnion):
        self._blocks = union.transformer_list
        self.counts = [np.zeros(vectorizer.n_features, dtype=np.int64) for _, vectorizer in self._blocks]
        self.documents = 0

    def add(self, blocks: list[sparse.csr_matrix]) -> list[sparse.csr_matrix]:
        """Count the documents each column occurs in, from each block's count matrix of a batch
        (:func:`hashed_counts`, here or on a cluster's workers); ``blocks`` returned."""
        for counts, block in zip(self.counts, blocks):
            counts += np.bincount(block.indices, minlength=len(counts))  # a column once per row it is in
        self.documents += blocks[0].shape[0]
        return blocks

    def apply(self, config: FeatureConfig) -> None:
        """Set each block's ``idf_`` from the counts and its ``min_df`` / ``max_df``."""
        settings = {"word": config.word, "char": config.char}
        for counts, (name, vectorizer) in zip(self.counts, self._blocks):
            block = settings[name]
            min_df = block.min_df if isinstance(block.min_df, int) else block.min_df * self.documents
            vectorizer.set_document_frequencies(counts, self.documents, min_df=min_df, max_df=block.max_df)


def hashed_counts(cleaned_texts: list[str], blocks: list[tuple[str, Any]]) -> list[sparse.csr_matrix]:
    """Each hashed block's n-gram count matrix of ``cleaned_texts`` (``blocks``: a FeatureUnion's
    transformer_list of HashedTfidfVectorizers)."""
    return [vectorizer.counts(cleaned_texts) for _, vectorizer in blocks]


# The largest count a CountCache keeps (counts are stored as uint16).
_MAX_COUNT = np.iinfo(np.uint16).max


class CountCache:
    """The hashed n-gram counts of a stream of articles, every block's, in a file at ``path``:
    written once by the counting pass, read back by each epoch instead of reading, cleaning and
    hashing the texts again (two thirds of an epoch's time).

    6 bytes per stored count (an int32 column and a uint16 count: ~8 KB per article of 75 words
    with word 1-3 and char 3-5 grams), counts above 65,535 clipped; in memory only the chunk read.
    """

    def __init__(self, path: Path, widths: list[int]):
        self.path, self.rows = Path(path), 0
        self._widths = widths
        self._file = open(self.path, "wb")

    def append(self, blocks: list[sparse.csr_matrix]) -> None:
        """Store the next articles' count matrices, one per block, in order."""
        np.array([blocks[0].shape[0]], dtype=np.int64).tofile(self._file)
        for block in blocks:
            np.diff(block.indptr).astype(np.int32).tofile(self._file)
            block.indices.astype(np.int32, copy=False).tofile(self._file)
            np.minimum(block.data, _MAX_COUNT).astype(np.uint16).tofile(self._file)
        self.rows += blocks[0].shape[0]

    def close(self) -> None:
        """Finish writing (reading closes it too)."""
        self._file.close()

    def chunks(self, rows: int) -> Iterator[list[list[sparse.csr_matrix]]]:
        """The stored count matrices in order, at least ``rows`` articles at a time (the last chunk may
        hold fewer): each chunk the pieces as appended, each piece one matrix per block, with uint16
        counts (:func:`take_rows` gathers rows across pieces without stacking whole chunks)."""
        self.close()
        pending: list[list[sparse.csr_matrix]] = []
        held = 0
        with open(self.path, "rb") as handle:
            while len(header := np.fromfile(handle, dtype=np.int64, count=1)):
                pending.append([self._read_block(handle, int(header[0]), width) for width in self._widths])
                held += int(header[0])
                if held >= rows:
                    yield pending
                    pending, held = [], 0
        if pending:
            yield pending

    @staticmethod
    def _read_block(handle, n: int, width: int) -> sparse.csr_matrix:
        lengths = np.fromfile(handle, dtype=np.int32, count=n)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        indices = np.fromfile(handle, dtype=np.int32, count=int(indptr[-1]))
        data = np.fromfile(handle, dtype=np.uint16, count=int(indptr[-1]))
        return sparse.csr_matrix((data, indices, indptr), shape=(n, width))


def take_rows(pieces: list[list[sparse.csr_matrix]], rows: np.ndarray) -> list[sparse.csr_matrix]:
    """Rows ``rows`` (sorted, counted across the pieces of a :meth:`CountCache.chunks` chunk) of every block."""
    offsets = np.cumsum([0] + [piece[0].shape[0] for piece in pieces])
    owner = np.searchsorted(offsets, rows, side="right") - 1
    chosen = [(piece, rows[owner == k] - offsets[k]) for k, piece in enumerate(pieces)]
    chosen = [(piece, local) for piece, local in chosen if len(local)]
    return [
        sparse.vstack([piece[block][local] for piece, local in chosen], format="csr")
        for block in range(len(pieces[0]))
    ]
