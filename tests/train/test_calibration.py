"""Post-hoc calibration: cross-fitted maps, chosen on validation, that every prediction route applies."""

import dataclasses

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import StratifiedKFold

from newsclf.model import NewsClassifier
from newsclf.steps import classifier_of
from newsclf.train.classifiers import uncalibrated
from newsclf.train.config import CalibrationConfig, ConfigError, config_from_dict
from newsclf.train.fit.calibration import _fit_methods, before_after, calibrate
from newsclf.train.fit.in_memory import fit_model
from tests.helpers import as_articles, corpus_slice

METHODS = ("sigmoid", "isotonic", "temperature")


@pytest.fixture(scope="module")
def small_model():
    # Word features only: the cheapest real model with topic, tone and tone-applies.
    config = config_from_dict({"name": "unit", "seed": 0, "features": {"char": {"enabled": False}}})
    return fit_model(config, as_articles(corpus_slice(6)), has_tone=True, metadata={"experiment": "unit"})


@pytest.fixture(scope="module")
def calibrated(small_model):
    # Other articles of the same topics than the model's 6 per topic: a real validation set.
    validation = as_articles(corpus_slice(9)).subset(_later_per_topic(9, 6))
    fit = as_articles(corpus_slice(6))
    return calibrate(small_model, CalibrationConfig(folds=3), fit, validation, seed=0), fit, validation


def _later_per_topic(per_topic: int, skip: int) -> list[int]:
    return [i for i in range(per_topic * 10) if i % per_topic >= skip]


@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("kind", [LogisticRegression, SGDClassifier])
def test_each_method_is_what_calibrated_classifier_cv_fits_bit_for_bit(n_classes, kind):
    x, codes = make_classification(120, 12, n_informative=6, n_classes=n_classes, random_state=0)
    y = [f"class-{code}" for code in codes]
    classifier = (kind(C=3.0) if kind is LogisticRegression else kind(loss="log_loss", random_state=1)).fit(x, y)
    fitted = _fit_methods(classifier, x, y, ("none", *METHODS), folds=4, seed=7)
    assert fitted["none"] is classifier
    for method in METHODS:
        reference = CalibratedClassifierCV(
            kind(**classifier.get_params()),
            method=method,
            cv=StratifiedKFold(4, shuffle=True, random_state=7),
            ensemble=False,
        ).fit(x, y)
        assert np.array_equal(fitted[method].predict_proba(x), reference.predict_proba(x)), method
        assert uncalibrated(fitted[method]) is classifier


def test_the_method_with_the_lowest_validation_log_loss_is_kept_per_output(calibrated):
    calibration, _, _ = calibrated
    assert set(calibration.methods) == {"topic", "tone", "tone_applies"}
    for task, losses in calibration.validation_log_loss.items():
        # Few articles: isotonic, which overfits a small fit set to exact 0 and 1, is not tried.
        assert set(losses) == {"none", *METHODS} - {"isotonic"}
        assert calibration.notes[task].startswith("isotonic not tried:")
        assert losses[calibration.methods[task]] == min(losses.values())
    assert calibration.model.metadata["calibration"] == calibration.methods
    assert calibration.model.metadata["experiment"] == "unit"
    assert calibration.params()["calibration.chosen.topic"] == calibration.methods["topic"]


def test_the_served_model_gives_scikit_learns_calibrated_probabilities_and_still_explains(calibrated, tmp_path):
    calibration, _, validation = calibrated
    model = calibration.model
    texts = validation.texts[:7] + [""]
    scored = model.predict_proba(texts)
    # Articles of 60 words or more, whose tone no short-text temperature touches.
    long = [i for i, text in enumerate(texts[:7]) if len(text.split()) >= 80]
    assert long
    for task in model.tasks:
        # Bit for bit the same as the pipeline's own predict_proba (the fast path leaves calibrated models alone).
        expected = model.pipelines[task].predict_proba(texts[:7])
        assert np.array_equal(scored[task][long], expected[long])
        if task == "topic":
            assert np.array_equal(scored[task][:7], expected)
    if model.tone_applies is not None:
        topic_features = model.pipelines["topic"][:-1].transform(texts[:7])
        applies = model.tone_applies.predict_proba(topic_features)[
            :, list(model.tone_applies.classes_).index("applies")
        ]
        assert np.array_equal(scored["tone_applies"][:7], applies)
    explained = model.explain(validation.texts[0])
    assert explained["topic"]["terms"] and all(term["weight"] > 0 for term in explained["topic"]["terms"])
    reloaded = NewsClassifier.load(model.save(tmp_path / "model"))
    assert reloaded.predict(texts) == model.predict(texts)
    assert reloaded.metadata["calibration"] == calibration.methods


def test_calibrated_topic_weights_are_the_inner_classifiers(calibrated, small_model):
    from newsclf.explain import class_weights

    model = calibrated[0].model
    if calibrated[0].methods["topic"] == "none":
        pytest.skip("topic kept uncalibrated on this data")
    inner = uncalibrated(classifier_of(model.pipelines["topic"]))
    assert np.array_equal(class_weights(model.pipelines["topic"]), inner.coef_)
    # Cross-fitting refits on every article the model was fitted on: the same classifier as before.
    assert np.array_equal(inner.coef_, classifier_of(small_model.pipelines["topic"]).coef_)


def test_a_refit_keeps_the_earlier_choice_without_validation(small_model):
    fit = as_articles(corpus_slice(6))
    chosen = {"topic": "sigmoid", "tone": "none", "tone_applies": "isotonic"}
    refit = calibrate(small_model, CalibrationConfig(folds=2), fit, None, seed=0, methods=chosen)
    assert refit.methods == chosen and refit.validation_log_loss == {}
    assert classifier_of(refit.model.pipelines["tone"]) is classifier_of(small_model.pipelines["tone"])


def test_a_class_with_one_article_leaves_its_output_uncalibrated_and_says_why():
    x, codes = make_classification(40, 6, n_informative=4, n_classes=2, random_state=0)
    y = ["a"] * 39 + ["b"]
    classifier = LogisticRegression().fit(x, y)
    found = _fit_methods(classifier, x, y, ("none", "sigmoid"), folds=5, seed=0)
    assert isinstance(found, str) and "'b' has 1 training article" in found
    # With a rare class of 3 the folds shrink to 3 rather than failing.
    y = ["a"] * 37 + ["b"] * 3
    fitted = _fit_methods(LogisticRegression().fit(x, y), x, y, ("sigmoid",), folds=5, seed=0)
    assert fitted["sigmoid"].cv.n_splits == 3


def test_before_after_scores_both_states_on_every_split(calibrated, small_model):
    calibration, fit, validation = calibrated
    metrics, bins = before_after(small_model, calibration.model, {"validation": validation})
    for task in ("topic", "tone", "tone_applies"):
        for key in (f"validation/{task}/ece", f"validation/{task}/ece_uncalibrated"):
            assert 0 <= metrics[key] <= 1
        for state in ("calibrated", "uncalibrated"):
            found = bins[f"{task}/validation_{state}"]
            expected = len(validation) if task != "tone" else len(validation.with_tone())
            assert sum(b["count"] for b in found) == expected
    if calibration.methods["topic"] != "none":
        assert (
            metrics["validation/topic/log_loss"]
            == calibration.validation_log_loss["topic"][calibration.methods["topic"]]
        )
        assert metrics["validation/topic/log_loss_uncalibrated"] == calibration.validation_log_loss["topic"]["none"]


@pytest.mark.parametrize(
    "calibration, message",
    [
        ({"methods": []}, "methods needs at least one of"),
        ({"methods": ["platt"]}, "methods must be among .* got 'platt'"),
        ({"methods": ["none", "none"]}, "lists a method twice"),
        ({"folds": 1}, "folds must be >= 2"),
        ({"folds": "five"}, "calibration.folds must be an integer"),
    ],
)
def test_bad_calibration_settings_are_one_line_errors(calibration, message):
    with pytest.raises(ConfigError, match=f"calibration: {message}|{message}"):
        config_from_dict({"name": "x", "calibration": calibration})


def test_the_default_calibration_tries_every_method_on_five_folds():
    config = config_from_dict({"name": "x"})
    assert config.calibration == CalibrationConfig(methods=("none", *METHODS), folds=5)
    assert dataclasses.asdict(config.calibration)["methods"] == ("none", *METHODS)


def test_the_evaluation_report_shows_reliability_before_and_after_calibration(calibrated, tmp_path):
    from newsclf.train.evaluation.evaluate import ReportSettings, evaluate
    from newsclf.train.evaluation.report import write_report

    calibration, _, validation = calibrated
    evaluation = evaluate(calibration.model, validation, ReportSettings(resamples=100))
    written = {path.name for path in write_report(evaluation, tmp_path)}
    report = (tmp_path / "report.md").read_text()
    for task, method in calibration.methods.items():
        if task not in evaluation.tasks:
            continue
        result = evaluation.tasks[task]
        assert f"{task}_reliability.png" in written
        if method == "none":
            assert result.uncalibrated is None and "ece_uncalibrated" not in result.metrics
        else:
            before = result.metrics["ece_uncalibrated"]
            assert f"the dotted curve) it was **{before:.3f}**" in report
            assert sum(b["count"] for b in result.uncalibrated) == len(result.y_true)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_held_out_maps_are_fitted_on_the_fitted_classifiers_own_scores(n_classes):
    from sklearn.calibration import _fit_calibrator
    from sklearn.utils._array_api import get_namespace_and_device

    x, codes = make_classification(240, 12, n_informative=6, n_classes=n_classes, random_state=0)
    y = [f"class-{code}" for code in codes]
    classifier = SGDClassifier(loss="log_loss", random_state=1).fit(x[:120], y[:120])
    fitted = _fit_methods(classifier, x[120:], y[120:], ("sigmoid",), folds=4, seed=7, held_out=True)["sigmoid"]
    assert uncalibrated(fitted) is classifier  # not refitted: streaming training cannot refit
    scores = classifier.decision_function(x[120:]).reshape(120, -1)
    xp = get_namespace_and_device(x)[0]
    reference = _fit_calibrator(classifier, scores, np.asarray(y[120:]), classifier.classes_, "sigmoid", xp=xp)
    assert np.array_equal(fitted.predict_proba(x[:120]), reference.predict_proba(x[:120]))


def test_a_class_the_held_out_articles_lack_gets_no_map_that_would_silence_it():
    x, codes = make_classification(400, 12, n_informative=6, n_classes=3, random_state=0)
    y = np.array([f"class-{code}" for code in codes])
    classifier = SGDClassifier(loss="log_loss", random_state=1).fit(x[:200], y[:200])
    held_out = np.flatnonzero(y[200:] != "class-2") + 200  # no class-2 article held out
    fitted = _fit_methods(
        classifier, x[held_out], list(y[held_out]), ("none", "sigmoid", "temperature"), 4, 7, held_out=True
    )
    assert set(fitted) == {"none", "temperature"}  # a sigmoid map for class-2 would be fitted on no positives
    predicted = fitted["temperature"].predict(x[200:][y[200:] == "class-2"])
    assert (predicted == "class-2").mean() == (classifier.predict(x[200:][y[200:] == "class-2"]) == "class-2").mean()
