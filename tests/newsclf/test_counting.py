"""BulkTfidfVectorizer gives exactly what TfidfVectorizer gives: vocabulary, idf and matrices."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from newsclf.counting import BulkTfidfVectorizer
from tests.newsclf.test_shared_tfidf import CORPUS, TRICKY

SETTINGS = [
    dict(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True, dtype=np.float32),
    dict(analyzer="char_wb", ngram_range=(3, 5), min_df=2, max_df=0.9),
    dict(analyzer="char_wb", ngram_range=(2, 3), binary=True, lowercase=False, norm=None, use_idf=False),
    dict(analyzer="char_wb", ngram_range=(2, 2), max_features=7, strip_accents="unicode"),
    dict(analyzer="word", ngram_range=(1, 2), min_df=2),
    dict(analyzer="word", ngram_range=(1, 1), max_df=3),
    dict(analyzer="char_wb", ngram_range=(2, 3), vocabulary=["ar", "rt", " tr", "zz"]),
    dict(analyzer="char_wb", ngram_range=(2, 3), vocabulary={" en": 2, "vo": np.int64(0), "qq": 1}),
]


def _fitted_pair(texts, options):
    ours, theirs = BulkTfidfVectorizer(**options), TfidfVectorizer(**options)
    return ours, ours.fit_transform(texts), theirs, theirs.fit_transform(texts)


def _assert_identical(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype and a.indices.dtype == b.indices.dtype
    assert (
        np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data)
    )


@pytest.mark.parametrize("options", SETTINGS)
def test_fit_and_transform_match_scikit_learn_bit_for_bit(options):
    texts = CORPUS + ["troops troops troops advanced", "Envoys ENVOYS envoys"]
    ours, ours_matrix, theirs, theirs_matrix = _fitted_pair(texts, options)
    assert list(ours.vocabulary_.items()) == list(theirs.vocabulary_.items())  # same order too
    if options.get("use_idf", True):
        assert np.array_equal(ours.idf_, theirs.idf_)
    _assert_identical(ours_matrix, theirs_matrix)
    unseen = ["Artillery and envoys, unseen words: zyx", "", "   "]
    _assert_identical(ours.transform(unseen), theirs.transform(unseen))


@settings(max_examples=200, deadline=None)
@given(
    texts=st.lists(st.one_of(TRICKY, st.text(max_size=60)), min_size=1, max_size=6),
    probe=st.lists(st.one_of(TRICKY, st.text(max_size=40)), max_size=3),
    options=st.sampled_from(
        [
            dict(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True),
            dict(analyzer="char_wb", ngram_range=(2, 4), min_df=2, max_df=0.8),
            dict(analyzer="word", ngram_range=(1, 2), max_df=0.6),
        ]
    ),
)
def test_arbitrary_text_gives_the_same_vocabulary_and_matrices(texts, probe, options):
    try:
        ours, ours_matrix, theirs, theirs_matrix = _fitted_pair(texts, options)
    except ValueError as exc:  # no n-grams at all: both must refuse alike
        with pytest.raises(ValueError, match=str(exc)):
            TfidfVectorizer(**options).fit(texts)
        return
    assert ours.vocabulary_ == theirs.vocabulary_
    _assert_identical(ours_matrix, theirs_matrix)
    if probe:
        _assert_identical(ours.transform(probe), theirs.transform(probe))


def test_texts_without_ngrams_are_refused_with_scikit_learns_message():
    with pytest.raises(ValueError, match="empty vocabulary"):
        BulkTfidfVectorizer(analyzer="char_wb").fit(["", "   "])
    with pytest.raises(ValueError, match="no terms remain"):
        BulkTfidfVectorizer(analyzer="char_wb", ngram_range=(2, 2), min_df=2).fit(["ab", "cd"])
