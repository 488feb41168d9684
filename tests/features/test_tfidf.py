import pytest
from scipy import sparse

from newsclf.features.tfidf import FeatureConfig, NgramConfig, build_features

TEXTS = [
    "Artillery shelled the city overnight.\nArtillery shelled the city overnight.",
    "Envoys signed a ceasefire accord in Geneva.",
    "The central bank raised interest rates again.",
]


def test_features_are_sparse_and_named_by_block():
    features = build_features(FeatureConfig(char=NgramConfig(analyzer="char_wb", ngram_range=(3, 3))))
    matrix = features.fit_transform(TEXTS)
    names = features.named_steps["tfidf"].get_feature_names_out()
    assert sparse.issparse(matrix) and matrix.shape == (3, len(names))
    assert "word__ceasefire accord" in names and "char__ ce" in names


def test_repeated_paragraphs_do_not_count_twice():
    features = build_features(FeatureConfig(char=NgramConfig(enabled=False), word=NgramConfig(sublinear_tf=False)))
    features.fit(TEXTS)
    once = features.transform(["Artillery shelled the city overnight."])
    twice = features.transform([TEXTS[0]])
    assert (once != twice).nnz == 0


def test_a_block_can_be_disabled():
    features = build_features(FeatureConfig(char=NgramConfig(enabled=False)))
    features.fit(TEXTS)
    assert all(name.startswith("word__") for name in features.named_steps["tfidf"].get_feature_names_out())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"ngram_range": (3, 2)}, "ngram_range"),
        ({"analyzer": "chars"}, "analyzer"),
        ({"min_df": 0}, "min_df"),
        ({"max_df": 1.5}, "max_df"),
        ({"max_features": 0}, "max_features"),
    ],
)
def test_invalid_blocks_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NgramConfig(**kwargs)


def test_both_blocks_disabled_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        FeatureConfig(word=NgramConfig(enabled=False), char=NgramConfig(enabled=False))
