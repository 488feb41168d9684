"""BulkTfidfVectorizer gives exactly what TfidfVectorizer gives: vocabulary, idf and matrices, also once
pickled with its vocabulary as one string and looked up in compiled code."""

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from newsclf import counting
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


_PICKLED_OPTIONS = [
    dict(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True),
    dict(analyzer="char_wb", ngram_range=(3, 5), min_df=2),
    dict(analyzer="word", ngram_range=(1, 3), max_df=0.6),
    dict(analyzer="word", ngram_range=(1, 2), lowercase=False),
]


@settings(max_examples=150, deadline=None)
@given(
    texts=st.lists(st.one_of(TRICKY, st.text(max_size=60)), min_size=1, max_size=6),
    probe=st.lists(st.one_of(TRICKY, st.text(max_size=40)), max_size=4),
    options=st.sampled_from(_PICKLED_OPTIONS),
)
def test_a_pickled_vocabulary_transforms_and_names_columns_as_the_fitted_one(texts, probe, options):
    try:
        ours, _, theirs, _ = _fitted_pair(texts, options)
    except ValueError:
        return
    restored = pickle.loads(pickle.dumps(ours))
    holds_nul = any("\0" in term for term in theirs.vocabulary_)
    assert ("_vocabulary" in vars(restored)) == holds_nul  # a NUL in a term: the dict is pickled as it is
    _assert_identical(restored.transform(probe + texts), theirs.transform(probe + texts))
    assert list(restored.get_feature_names_out()) == list(theirs.get_feature_names_out())
    assert ("_vocabulary" in vars(restored)) == holds_nul  # neither needed the dict
    assert restored.vocabulary_ == theirs.vocabulary_


def test_transform_gives_the_same_matrix_without_the_compiled_lookup(monkeypatch):
    texts = CORPUS + ["troops troops advanced", "Envoys ENVOYS envoys"]
    for options in _PICKLED_OPTIONS:
        ours, _, theirs, _ = _fitted_pair(texts, options)
        restored = pickle.loads(pickle.dumps(ours))
        with monkeypatch.context() as patched:
            patched.setattr(counting, "vocabulary_columns", None)
            _assert_identical(restored.transform(texts), theirs.transform(texts))


def test_a_vectorizer_pickled_with_its_dict_still_loads():
    texts = CORPUS + ["troops advanced"]
    ours, _, theirs, _ = _fitted_pair(texts, dict(analyzer="word", ngram_range=(1, 2)))
    state = dict(vars(ours))  # what model format 3 pickled: vocabulary_ as a plain attribute
    state["vocabulary_"] = state.pop("_vocabulary")
    state.pop("_table", None)
    old = BulkTfidfVectorizer.__new__(BulkTfidfVectorizer)
    old.__setstate__(state)
    _assert_identical(old.transform(texts), theirs.transform(texts))
    assert old.vocabulary_ == theirs.vocabulary_


def test_the_compiled_table_finds_every_term_and_nothing_else():
    vocabulary = {term: column for column, term in enumerate(["a", "ab", "ab ab", "é中", "x" * 300, " tr", ""])}
    terms = "".join(term + "\0" for term in vocabulary).encode()
    offsets, slots = counting.vocabulary_table(terms)
    assert len(slots) // 8 >= 2 * len(vocabulary) and np.frombuffer(offsets, np.int64)[-1] == len(terms)
    texts = ["ab ab b a", "É中 x" + "x" * 299, "abc ba"]
    indptr, indices = counting.vocabulary_columns(texts, "word", 1, 2, True, terms, offsets, slots)
    found = np.split(np.frombuffer(indices, np.int32), np.frombuffer(indptr, np.int64)[1:-1])
    assert [sorted(row.tolist()) for row in found] == [[1, 1, 2], [3, 4], []]
