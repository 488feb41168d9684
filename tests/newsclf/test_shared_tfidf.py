import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline

from newsclf import _shared_tfidf as shared_tfidf
from newsclf._shared_tfidf import SharedFeatures, SharedTfidf, is_supported, remember_features, remembering_features
from newsclf.cleaning import ArticleCleaner
from newsclf.model import NewsClassifier
from tests.helpers import corpus_slice

CORPUS = [
    "Artillery shelled the city overnight; troops advanced.",
    "Envoys signed a ceasefire accord in Geneva.",
    "ΟΔΟΣ ΑΣ σς: İstanbul talks, ǅ ß ﬁ",
    "The central bank raised interest rates again.",
    "x\x1cy z\u2028w \u00a0 tab\tend",
]
# Letters whose lower case depends on context or changes length, and every kind of whitespace.
TRICKY = st.text(alphabet=st.sampled_from(list("aΣσςİIıßǅﬁ \n\t\x1c\u2028\u00a0\u3000.,'-")), max_size=40)


def _union(**word):
    return FeatureUnion(
        [
            ("word", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32, **word)),
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True, dtype=np.float32)),
        ]
    )


# Two unions share both analyzers but not their vocabularies; a third counts plain char n-grams.
UNIONS = [
    _union().fit(CORPUS),
    _union(max_df=0.9).fit(CORPUS[::-1] + ["another text"]),
    FeatureUnion(
        [("c", TfidfVectorizer(analyzer="char", ngram_range=(2, 3), binary=True, norm=None, use_idf=False))]
    ).fit(CORPUS),
]


def _assert_same(texts):
    for union, matrix in zip(UNIONS, SharedTfidf(UNIONS).transform(texts)):
        expected = union.transform(texts)
        assert matrix.shape == expected.shape and (matrix != expected).nnz == 0


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(st.one_of(TRICKY, st.text(max_size=60)), min_size=1, max_size=5))
def test_matrices_are_bit_for_bit_the_unions_own(texts):
    _assert_same(texts)


def test_no_texts_give_matrices_without_rows():
    assert [matrix.shape for matrix in SharedTfidf(UNIONS).transform([])] == [
        (0, len(union.get_feature_names_out())) for union in UNIONS
    ]


def test_repeated_words_and_texts_use_the_word_cache_without_changing_results():
    shared = SharedTfidf(UNIONS)
    texts = ["troops troops troops", "troops envoys", "troops troops troops"]
    first = shared.transform(texts)
    second = shared.transform(texts)
    for a, b in zip(first, second):
        assert (a != b).nnz == 0
    _assert_same(texts)


def test_the_word_cache_stays_bounded_and_long_words_are_not_kept(monkeypatch):
    monkeypatch.setattr(shared_tfidf, "_WORD_CACHE_SIZE", 50)
    shared = SharedTfidf(UNIONS)
    texts = [" ".join(f"word{i}x{j}" for j in range(20)) for i in range(10)] + ["a" * 500]
    shared.transform(texts)
    cache = next(analysis for analysis in shared._analyses if analysis.per_word)._words
    assert 0 < len(cache) <= 50 and "a" * 500 not in cache
    _assert_same(texts)


def test_cached_words_do_not_keep_a_long_words_ngrams_alive():
    shared = SharedTfidf(UNIONS)
    shared.transform(["troops " + "x" * 100_000])
    cache = next(analysis for analysis in shared._analyses if analysis.per_word)._words
    for columns in cache["troops"]:
        assert (columns.base if columns.base is not None else columns).size < 1_000


@pytest.mark.parametrize(
    "vectorizer",
    [
        TfidfVectorizer(preprocessor=str.upper),
        TfidfVectorizer(strip_accents="unicode"),
        TfidfVectorizer(norm="l1"),
        TfidfVectorizer(analyzer=str.split),
    ],
)
def test_settings_it_cannot_reproduce_are_not_supported_and_fall_back(vectorizer):
    union = FeatureUnion([("word", vectorizer)]).fit(CORPUS)
    assert not is_supported(union)
    with pytest.raises(ValueError, match="every union must be"):
        SharedTfidf([union])
    pipeline = Pipeline([("clean", ArticleCleaner()), ("tfidf", union)])
    cleaned, (matrix,) = SharedFeatures([pipeline]).transform(["Envoys met.", ""])
    assert cleaned == ["Envoys met.", ""]
    assert (matrix != pipeline.transform(["Envoys met.", ""])).nnz == 0
    assert SharedFeatures([pipeline]).transform([])[1][0].shape == (0, len(pipeline.get_feature_names_out()))


def test_shared_features_clean_once_and_match_each_pipeline():
    pipelines = [Pipeline([("clean", ArticleCleaner()), ("tfidf", union)]) for union in UNIONS[:2]]
    texts = ["Heading\nHeading\nBy Staff Reporter\nTroops advanced.", "Read more: x", "Envoys met in Geneva."]
    cleaned, matrices = SharedFeatures(pipelines).transform(texts)
    assert cleaned == ["Heading\n\nTroops advanced.", "", "Envoys met in Geneva."]
    for pipeline, matrix in zip(pipelines, matrices):
        assert (matrix != pipeline.transform(texts)).nnz == 0


def test_remembered_features_are_computed_once_and_equal_the_fresh_ones(small_model, monkeypatch):
    held_out = [item["text"] for item in corpus_slice(2)]
    other = ["Troops crossed the border.", "Envoys met in Geneva."]
    fresh = small_model.predict_proba(held_out + other)
    computed: list[str] = []
    original = SharedFeatures._transform
    monkeypatch.setattr(
        SharedFeatures, "_transform", lambda self, texts: computed.extend(texts) or original(self, texts)
    )
    with remembering_features():
        remember_features(held_out)
        for _ in range(3):  # a new model over the same steps each time, as each epoch makes
            model = NewsClassifier(
                small_model.pipelines["topic"], small_model.pipelines["tone"], tone_applies=small_model.tone_applies
            )
            found = model.predict_proba(other[:1] + held_out + other)
            for task, proba in fresh.items():
                assert np.array_equal(found[task][1:], proba)
            features = model.features(held_out)
    assert sorted(computed) == sorted(held_out + other[:1] + other + other[:1] + other + other[:1] + other)
    for task, matrix in features.items():
        expected = small_model.pipelines[task][:-1].transform(held_out)
        assert (matrix != expected).nnz == 0 and np.array_equal(matrix.indices, expected.indices)
    computed.clear()
    small_model.predict_proba(held_out)  # outside: nothing remembered
    assert computed == held_out


def test_remembered_features_go_with_their_steps(small_model):
    import gc

    held_out = [item["text"] for item in corpus_slice(1)]
    with remembering_features():
        remember_features(held_out)
        candidate = copy.deepcopy(small_model)  # a search candidate: steps of its own
        candidate.predict_proba(held_out)
        assert len(shared_tfidf._REMEMBERED.rows) == 1
        del candidate
        gc.collect()
        assert shared_tfidf._REMEMBERED.rows == {}
