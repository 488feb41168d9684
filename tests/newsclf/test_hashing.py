"""Hashed TF-IDF blocks in a served model: the shared fast path steps aside, explanations name the n-grams."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import FeatureUnion, Pipeline

from newsclf._shared_tfidf import SharedFeatures, is_supported
from newsclf.cleaning import ArticleCleaner
from newsclf.hashing import HashedTfidfVectorizer, article_term_names, is_hashed
from newsclf.model import NewsClassifier
from tests.helpers import corpus_slice


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
