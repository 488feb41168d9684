"""Hashed TF-IDF blocks: the same counts and weights as scikit-learn computes in memory."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

from newsclf.features.hashing import CountCache, DocumentFrequencies, build_hashed_steps, hashed_counts, take_rows
from newsclf.features.tfidf import FeatureConfig, NgramConfig
from newsclf.hashing import HashedTfidfVectorizer
from tests.helpers import corpus_slice

TEXTS = [item["text"] for item in corpus_slice(3)] + [
    "",
    "  Ünïcode\tΣΟΦΟΣ  words\n\nand   tabs\t\tHERE",
    "a",
    "the the the the",
]


def _counts(analyzer: str, ngram_range: tuple[int, int], texts=TEXTS):
    return HashingVectorizer(
        analyzer=analyzer, ngram_range=ngram_range, n_features=2**12, norm=None, alternate_sign=False, dtype=np.float32
    ).transform(texts)


@pytest.mark.parametrize(("analyzer", "ngram_range"), [("word", (1, 3)), ("char_wb", (2, 5)), ("char", (3, 4))])
def test_counts_are_hashing_vectorizers(analyzer, ngram_range):
    hashed = HashedTfidfVectorizer(analyzer=analyzer, ngram_range=ngram_range, n_features=2**12)
    expected = _counts(analyzer, ngram_range)
    found = hashed.counts(TEXTS)
    assert found.dtype == expected.dtype
    assert (found != expected).nnz == 0
    assert np.array_equal(found.indptr, expected.indptr) and np.array_equal(found.indices, expected.indices)


@pytest.mark.parametrize("sublinear_tf", [True, False])
def test_streamed_idf_equals_tfidf_transformer_fitted_in_memory(sublinear_tf):
    hashed = HashedTfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), n_features=2**12, sublinear_tf=sublinear_tf)
    union = build_hashed_steps(FeatureConfig(), 2**12)[1][1]
    union.transformer_list = [("char", hashed)]
    frequencies = DocumentFrequencies(union)
    for start in range(0, len(TEXTS), 4):  # in batches, as the count pass streams them
        frequencies.add(hashed_counts(TEXTS[start : start + 4], union.transformer_list))
    frequencies.apply(FeatureConfig(char=NgramConfig(analyzer="char_wb", min_df=1)))
    counts = _counts("char_wb", (2, 4))
    reference = TfidfTransformer(sublinear_tf=sublinear_tf).fit(counts)
    assert frequencies.documents == len(TEXTS)
    used = np.flatnonzero(np.diff(counts.tocsc().indptr))
    np.testing.assert_allclose(hashed.idf_[used], reference.idf_[used], rtol=1e-6)
    np.testing.assert_allclose(hashed.transform(TEXTS).toarray(), reference.transform(counts).toarray(), atol=1e-6)


def test_document_frequency_limits_zero_the_weight_of_pruned_columns():
    hashed = HashedTfidfVectorizer(analyzer="word", n_features=2**12)
    texts = ["common rare", "common other", "common third"]
    document_frequency = np.bincount(hashed.counts(texts).indices, minlength=2**12)
    hashed.set_document_frequencies(document_frequency, len(texts), min_df=2, max_df=0.5)
    # "common" is in every text (> max_df), the others in one (< min_df): nothing keeps a weight.
    assert hashed.transform(texts).nnz == 0
    hashed.set_document_frequencies(document_frequency, len(texts))
    assert hashed.transform(["common"]).nnz == 1


def test_hashed_steps_follow_the_feature_config():
    config = FeatureConfig(char=NgramConfig(enabled=False), word=NgramConfig(ngram_range=(1, 3), sublinear_tf=False))
    (clean_name, _), (tfidf_name, union) = build_hashed_steps(config, 2**14)
    assert (clean_name, tfidf_name) == ("clean", "tfidf")
    [(name, block)] = union.transformer_list
    assert name == "word" and block.ngram_range == (1, 3) and not block.sublinear_tf and block.n_features == 2**14


def test_cached_counts_weigh_to_the_transform_of_the_texts(tmp_path):
    union = build_hashed_steps(FeatureConfig(char=NgramConfig(analyzer="char_wb", ngram_range=(2, 4))), 2**12)[1][1]
    frequencies = DocumentFrequencies(union)
    cache = CountCache(tmp_path / "counts", [2**12, 2**12])
    for start in range(0, len(TEXTS), 4):
        cache.append(frequencies.add(hashed_counts(TEXTS[start : start + 4], union.transformer_list)))
    frequencies.apply(FeatureConfig())
    assert cache.rows == len(TEXTS)
    for _ in range(2):  # every epoch reads the same counts
        chunks = list(cache.chunks(10))
        assert [sum(piece[0].shape[0] for piece in pieces) for pieces in chunks] == [12, 12, len(TEXTS) - 24]
        stacked = [sparse.vstack([piece[b] for pieces in chunks for piece in pieces], format="csr") for b in range(2)]
        for (_, vectorizer), counts in zip(union.transformer_list, stacked):
            expected = vectorizer.transform(TEXTS)
            np.testing.assert_array_equal(counts.toarray(), vectorizer.counts(TEXTS).toarray())
            np.testing.assert_allclose(vectorizer.weighted(counts).toarray(), expected.toarray(), rtol=1e-6)
    rows = np.array([0, 3, 4, 7, 11])  # across the pieces (4 articles each) of the first chunk
    taken = take_rows(chunks[0], rows)
    for (_, vectorizer), block in zip(union.transformer_list, taken):
        np.testing.assert_array_equal(block.toarray(), vectorizer.counts([TEXTS[i] for i in rows]).toarray())


def test_many_texts_are_transformed_in_chunks_to_the_same_rows(monkeypatch):
    import newsclf.hashing

    hashed = HashedTfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), n_features=2**12)
    whole = hashed.transform(TEXTS)
    monkeypatch.setattr(newsclf.hashing, "_TRANSFORM_CHUNK", 4)
    chunked = hashed.transform(TEXTS)
    assert chunked.shape == whole.shape and (chunked != whole).nnz == 0
    assert np.array_equal(chunked.indices, whole.indices)
