"""One scikit-learn Pipeline per task: article cleaner, TF-IDF features, linear classifier."""

from __future__ import annotations

from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from features.tfidf import FeatureConfig, build_feature_steps
from train.config import ClassifierConfig


def build_pipeline(features: FeatureConfig, classifier: ClassifierConfig, seed: int) -> Pipeline:
    """An unfitted Pipeline from raw text to class probabilities."""
    return Pipeline(build_feature_steps(features) + [("classifier", build_classifier(classifier, seed))])


def build_classifier(config: ClassifierConfig, seed: int):
    """The unfitted final step of a pipeline: a linear classifier with ``predict_proba``."""
    class_weight = None if config.class_weight == "none" else config.class_weight
    if config.kind == "linear_svc":
        # LinearSVC has no probabilities; sigmoid calibration on 3 folds adds them.
        svc = LinearSVC(C=config.C, class_weight=class_weight, max_iter=config.max_iter, random_state=seed)
        return CalibratedClassifierCV(svc, method="sigmoid", cv=3)
    if config.kind == "sgd_logistic":
        # Log loss by SGD: the same model family as logistic regression at a fraction of lbfgs's fit time.
        return SGDClassifier(loss="log_loss", alpha=config.alpha, class_weight=class_weight, max_iter=config.max_iter, random_state=seed)
    return LogisticRegression(C=config.C, class_weight=class_weight, max_iter=config.max_iter, random_state=seed)
