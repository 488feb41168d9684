"""Hashed TF-IDF blocks: the compiled hasher matches scikit-learn bit for bit, topic and tone pipelines
count each text once, explanations name the n-grams."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import FeatureUnion, Pipeline

from newsclf._shared_tfidf import SharedFeatures, is_supported
from newsclf.cleaning import ArticleCleaner
from newsclf.hashing import HashedTfidfVectorizer, article_term_names, hashed_columns, is_hashed
from newsclf.model import NewsClassifier
from tests.helpers import corpus_slice
from tests.newsclf.test_shared_tfidf import CORPUS


def _hashed_model():
    items = corpus_slice(4)
    union = FeatureUnion(
        [
            ("word", HashedTfidfVectorizer(analyzer="word", ngram_range=(1, 2), n_features=2**14)),
            ("char", HashedTfidfVectorizer(analyzer="char_wb", ngram_range=(3, 4), n_features=2**14)),
        ]
    )
    pipeline = Pipeline(
        [("clean", ArticleCleaner()), ("tfidf", union), ("classifier", SGDClassifier(loss="log_loss", random_state=0))]
    )
    pipeline.fit([item["text"] for item in items], [item["topic"] for item in items])
    return NewsClassifier(pipeline), items


def test_hashed_blocks_take_the_ordinary_transform_path():
    model, items = _hashed_model()
    union = model.pipelines["topic"].named_steps["tfidf"]
    assert is_hashed(model.pipelines["topic"]) and not is_supported(union)
    texts = [item["text"] for item in items[:5]]
    _, [matrix] = SharedFeatures([model.pipelines["topic"][:-1]]).transform(texts)
    assert (matrix != model.pipelines["topic"][:-1].transform(texts)).nnz == 0
    np.testing.assert_allclose(
        model.predict_proba(texts)["topic"], model.pipelines["topic"].predict_proba(texts), rtol=1e-6
    )


def test_columns_are_named_by_the_articles_own_ngrams():
    model, _ = _hashed_model()
    names = article_term_names(model.pipelines["topic"], "troops shelled the port")
    assert "word__troops shelled" in names.values() and "char__ por" in names.values()
    assert len(set(names.values())) == len(names)  # one column per n-gram (no collision in so few)
    union = model.pipelines["topic"].named_steps["tfidf"]
    [column] = union.transformer_list[0][1].counts(["troops"]).indices
    assert names[int(column)] == "word__troops"
    # Every column the article's features use is named.
    row = union.transform(["troops shelled the port"])
    assert set(row.indices.tolist()) <= set(names)


def test_explain_reports_words_of_the_article():
    model, items = _hashed_model()
    article = items[0]["text"]
    terms = model.explain(article, top_k=5)["topic"]["terms"]
    assert terms and {term["kind"] for term in terms} <= {"word", "char"}
    assert all(term["term"] in article.lower() for term in terms)


# The compiled hasher against scikit-learn's HashingVectorizer: columns, counts and index types.
_HASHED_SETTINGS = [("word", (1, 3)), ("word", (2, 2)), ("char_wb", (3, 5)), ("char_wb", (1, 4))]
# Every kind of character the analysis treats apart: case that changes length or depends on context,
# combining marks (not word characters), digits and numerals of other scripts, wide characters,
# underscores, and every whitespace Python splits on.
_UNICODE = st.text(
    alphabet=st.sampled_from(list("aZ_1.-'ßİΣσςıǅﬁé\u0301中٣Ⅻ²\U0001f600 \n\t\x1c\u2028\u00a0\u3000")), max_size=40
)


def _scikit_learn_counts(texts, analyzer, ngram_range, n_features=2**20):
    return HashingVectorizer(
        analyzer=analyzer,
        ngram_range=ngram_range,
        n_features=n_features,
        norm=None,
        alternate_sign=False,
        dtype=np.float32,
    ).transform(texts)


def _assert_same_matrix(ours, theirs):
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    for part in ("indptr", "indices", "data"):
        assert getattr(ours, part).dtype == getattr(theirs, part).dtype, part
        np.testing.assert_array_equal(getattr(ours, part), getattr(theirs, part), err_msg=part)


@pytest.mark.skipif(hashed_columns is None, reason="newsclf/_ngrams.c is not built")
@pytest.mark.parametrize(("analyzer", "ngram_range"), _HASHED_SETTINGS)
def test_compiled_hashing_gives_scikit_learns_counts_on_news(analyzer, ngram_range):
    texts = [item["text"] for item in corpus_slice(10)] + CORPUS + [""]
    ours = HashedTfidfVectorizer(analyzer=analyzer, ngram_range=ngram_range, n_features=2**20).counts(texts)
    _assert_same_matrix(ours, _scikit_learn_counts(texts, analyzer, ngram_range))


@pytest.mark.skipif(hashed_columns is None, reason="newsclf/_ngrams.c is not built")
@settings(max_examples=150, deadline=None)
@given(texts=st.lists(_UNICODE, min_size=1, max_size=6), setting=st.sampled_from(_HASHED_SETTINGS))
def test_compiled_hashing_gives_scikit_learns_counts_on_arbitrary_text(texts, setting):
    analyzer, ngram_range = setting
    # Few columns, so that distinct n-grams collide and counts add up across them as well.
    ours = HashedTfidfVectorizer(analyzer=analyzer, ngram_range=ngram_range, n_features=64).counts(texts)
    _assert_same_matrix(ours, _scikit_learn_counts(texts, analyzer, ngram_range, n_features=64))


def test_texts_the_compiled_hasher_cannot_take_fall_back_to_scikit_learn():
    vectorizer = HashedTfidfVectorizer(analyzer="word", ngram_range=(1, 2), n_features=2**10)
    # A lone surrogate has no UTF-8 form; outside any token scikit-learn never encodes it.
    texts = ["troops \ud800 advance", "envoys meet"]
    _assert_same_matrix(vectorizer.counts(texts), _scikit_learn_counts(texts, "word", (1, 2), n_features=2**10))
    # Settings it does not implement take scikit-learn's path.
    custom = HashedTfidfVectorizer(analyzer="word", n_features=2**10)
    custom.token_pattern = r"\S+"  # not a parameter of its own: inherited from HashingVectorizer
    assert custom._compiled_counts(["a b"]) is None and custom.counts(["a b"]).nnz == 2
    with pytest.raises(UnicodeEncodeError):  # inside a char n-gram it fails as scikit-learn fails
        HashedTfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3)).counts(["x\ud800y"])


def test_topic_and_tone_pipelines_of_hashed_blocks_count_each_text_once(monkeypatch):
    model, items = _hashed_model()
    topic = model.pipelines["topic"]
    tone = Pipeline(topic.steps[:-1] + [("classifier", topic.steps[-1][1])])
    tone = pickle.loads(pickle.dumps(tone))  # its own union, as a saved model's tone pipeline has
    words = tone.named_steps["tfidf"].transformer_list[0][1]
    words.idf_ = np.linspace(0.5, 3, words.n_features, dtype=np.float32)  # its own weights too
    texts = [item["text"] for item in items[:6]] + [""]
    counted = []
    original = HashedTfidfVectorizer.counts
    monkeypatch.setattr(HashedTfidfVectorizer, "counts", lambda self, t: counted.append(1) or original(self, t))
    _, matrices = SharedFeatures([topic[:-1], tone[:-1]]).transform(texts)
    assert len(counted) == 2  # word and char blocks, once each for both pipelines
    for pipeline, matrix in zip((topic, tone), matrices):
        expected = pipeline[:-1].transform(texts)
        assert (matrix != expected).nnz == 0 and np.array_equal(matrix.indices, expected.indices)
