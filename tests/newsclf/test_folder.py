"""The model folder format: round trips, refusals, and the folders earlier releases wrote."""

import contextlib
import json
import re
import sys
import types

import joblib
import pytest

import newsclf.cleaning
import newsclf.counting
from newsclf._files import sha256_file
from newsclf.errors import ModelFormatError
from newsclf.folder import CODE, FORMAT_VERSION, MANIFEST, TONE_APPLIES, read_manifest, save_folder
from newsclf.loading import load_model
from newsclf.model import NewsClassifier

TEXTS = [
    "Artillery shelled the port overnight and troops advanced on the airfield.\nEnvoys met in Geneva.",
    "Talks resume in Geneva.",
]


def _rehash(folder, **changes):
    """Re-sign the manifest after its files were rewritten, as the release that wrote them would have."""
    manifest = json.loads((folder / MANIFEST).read_text())
    for entry in [*manifest["tasks"].values(), manifest.get(TONE_APPLIES)]:
        if entry:
            entry["sha256"] = sha256_file(folder / entry["file"])
    (folder / MANIFEST).write_text(json.dumps(manifest | changes))


@contextlib.contextmanager
def _pickled_under_the_old_module_names():
    """Make pickles name features.cleaning and features.counting, as format versions 1 and 2 did."""
    classes = [newsclf.cleaning.ArticleCleaner, newsclf.counting.BulkTfidfVectorizer]
    for cls, module in zip(classes, ("features.cleaning", "features.counting")):
        sys.modules[module] = sys.modules[cls.__module__]
        cls.__module__ = module
    try:
        yield
    finally:
        for cls, module in zip(classes, ("newsclf.cleaning", "newsclf.counting")):
            sys.modules.pop(cls.__module__)
            cls.__module__ = module


def test_version_2_folders_load_without_touching_a_users_own_features_module(small_model, tmp_path, monkeypatch):
    saved = small_model.save(tmp_path / "m")
    assert json.loads((saved / MANIFEST).read_text())["format_version"] == FORMAT_VERSION == 4
    with _pickled_under_the_old_module_names():
        for name in ("topic", "tone"):
            joblib.dump(joblib.load(saved / f"{name}.joblib"), saved / f"{name}.joblib")
    assert b"features.cleaning" in (saved / "topic.joblib").read_bytes()
    _rehash(saved, format_version=2)
    users_own = types.ModuleType("features")
    monkeypatch.setitem(sys.modules, "features", users_own)
    before = {name for name in sys.modules if name.startswith("features.")}
    assert NewsClassifier.load(saved).predict(TEXTS) == small_model.predict(TEXTS)
    assert sys.modules["features"] is users_own
    assert {name for name in sys.modules if name.startswith("features.")} == before
    # The same files under the current version number name modules that do not exist: refused, not guessed.
    _rehash(saved, format_version=FORMAT_VERSION)
    with pytest.raises(ModelFormatError, match="needs code this newsclf does not have"):
        NewsClassifier.load(saved)


def test_round_trip_keeps_predictions_labels_and_metadata(small_model, tmp_path):
    small_model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    texts = ["Envoys agreed a prisoner exchange.", "The striker scored twice."]
    assert loaded.predict(texts) == small_model.predict(texts)
    assert loaded.metadata == {"experiment": "unit"} and loaded.tasks == ["topic", "tone"]
    # Each pipeline is a plain joblib file too.
    assert list(joblib.load(tmp_path / "m" / "topic.joblib").predict(texts)) == [
        r["topic"] for r in small_model.predict(texts)
    ]


def _forge_manifest(folder, forge):
    """Replace the manifest with ``forge(manifest)``, as someone rewriting it by hand would."""
    (folder / MANIFEST).write_text(json.dumps(forge(json.loads((folder / MANIFEST).read_text()))))


def _edit_manifest(folder, **changes):
    _forge_manifest(folder, lambda manifest: manifest | changes)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"format": "other"}, "format 'other' is not 'newsclf-model'"),
        ({"format_version": 99}, "format version 99 is not supported"),
        ({"scikit_learn_version": "0.24.2"}, "saved with scikit-learn 0.24.2"),
        ({"tasks": {}}, "no topic task"),
    ],
)
def test_unknown_formats_and_versions_are_refused(small_model, tmp_path, changes, message):
    small_model.save(tmp_path / "m")
    _edit_manifest(tmp_path / "m", **changes)
    with pytest.raises(ModelFormatError, match=message):
        NewsClassifier.load(tmp_path / "m")


def test_version_1_folders_with_scikit_learns_own_vectorizers_still_load(small_model, tmp_path):
    from sklearn.feature_extraction.text import TfidfVectorizer

    saved = small_model.save(tmp_path / "m")
    for name in ("topic", "tone"):  # what version 1 wrote: plain TfidfVectorizers, same state
        pipeline = joblib.load(saved / f"{name}.joblib")
        for _, vectorizer in pipeline.named_steps["tfidf"].transformer_list:
            vocabulary = vectorizer.vocabulary_
            for compact in ("_vocabulary", "_vocabulary_terms", "_table"):
                vars(vectorizer).pop(compact, None)
            vectorizer.__class__ = TfidfVectorizer
            vectorizer.vocabulary_ = vocabulary  # version 1 pickled the dict itself
        joblib.dump(pipeline, saved / f"{name}.joblib")
    _rehash(saved, format_version=1)
    assert NewsClassifier.load(saved).predict(TEXTS) == small_model.predict(TEXTS)


@pytest.mark.parametrize("filename", ["tone.joblib", "tone_applies.joblib"])
def test_a_changed_file_is_refused_before_unpickling(small_model, tmp_path, filename):
    small_model.save(tmp_path / "m")
    with open(tmp_path / "m" / filename, "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ModelFormatError, match="SHA-256 does not match"):
        NewsClassifier.load(tmp_path / "m")


def test_a_tone_applies_model_for_other_features_is_refused(small_model, tmp_path):
    small_model.save(tmp_path / "m")
    other = NewsClassifier(
        small_model.pipelines["tone"], small_model.pipelines["tone"], tone_applies=small_model.tone_applies
    )
    other.save(tmp_path / "other")
    _edit_manifest(
        tmp_path / "other", **{TONE_APPLIES: json.loads((tmp_path / "m" / MANIFEST).read_text())[TONE_APPLIES]}
    )
    (tmp_path / "other" / "tone_applies.joblib").write_bytes((tmp_path / "m" / "tone_applies.joblib").read_bytes())
    with pytest.raises(ModelFormatError, match="does not fit the topic features"):
        NewsClassifier.load(tmp_path / "other")


def test_folders_that_are_not_models_are_refused(tmp_path):
    with pytest.raises(ModelFormatError, match="not a newsclf model folder"):
        NewsClassifier.load(tmp_path)
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(ModelFormatError, match="unreadable manifest"):
        NewsClassifier.load(tmp_path)


@pytest.mark.parametrize("name", ["{outside}", "../outside.joblib", "sub/topic.joblib", "sub\\topic.joblib", ".."])
def test_manifest_file_names_cannot_leave_the_model_folder(small_model, tmp_path, name):
    saved = small_model.save(tmp_path / "m")
    outside = tmp_path / "outside.joblib"  # a loadable file outside the folder, with a matching checksum
    outside.write_bytes((saved / "topic.joblib").read_bytes())
    (saved / "sub").mkdir()
    (saved / "sub" / "topic.joblib").write_bytes(outside.read_bytes())
    topic = {"file": name.format(outside=outside)}
    _forge_manifest(saved, lambda manifest: manifest | {"tasks": {"topic": manifest["tasks"]["topic"] | topic}})
    with pytest.raises(
        ModelFormatError, match=rf"^{re.escape(str(saved / MANIFEST))}: tasks\.topic\.file .* is not a plain"
    ):
        NewsClassifier.load(saved)


def test_a_symlinked_model_file_is_refused(small_model, tmp_path):
    saved = small_model.save(tmp_path / "m")
    outside = tmp_path / "topic.joblib"
    (saved / "topic.joblib").rename(outside)
    (saved / "topic.joblib").symlink_to(outside)
    with pytest.raises(ModelFormatError, match="topic.joblib is a symlink"):
        NewsClassifier.load(saved)


def _without(entry: dict, key: str) -> dict:
    return {name: value for name, value in entry.items() if name != key}


@pytest.mark.parametrize(
    "forge, message",
    [
        (lambda manifest: [manifest], "the manifest is a JSON list, not an object"),
        (lambda manifest: manifest | {"format_version": True}, "format version True is not supported"),
        (
            lambda manifest: manifest | {"scikit_learn_version": 1.9},
            "scikit_learn_version 1.9 is not a version string",
        ),
        (lambda manifest: manifest | {"tasks": ["topic"]}, "the manifest lists no topic task"),
        (lambda manifest: manifest | {"tasks": {"topic": "topic.joblib"}}, "tasks.topic is not an object"),
        (
            lambda manifest: manifest | {"tasks": {"topic": _without(manifest["tasks"]["topic"], "sha256")}},
            "tasks.topic has no sha256",
        ),
        (
            lambda manifest: manifest | {TONE_APPLIES: manifest[TONE_APPLIES] | {"sha256": "ab" * 31 + "zz"}},
            "tone_applies.sha256 is not 64 lowercase hex characters",
        ),
        (
            lambda manifest: manifest | {"tasks": {"topic": manifest["tasks"]["topic"] | {"file": 7}}},
            "tasks.topic.file 7 is not a plain file name",
        ),
        (
            lambda manifest: manifest | {"tasks": {"topic": manifest["tasks"]["topic"] | {"labels": "abc"}}},
            "tasks.topic.labels is not a list of strings",
        ),
        (lambda manifest: manifest | {"metadata": ["unit"]}, "metadata is not an object"),
        (lambda manifest: manifest | {"code": ["newsclf/model.py"]}, "code is not an object"),
        (
            lambda manifest: manifest | {"code": {"../train/cli.py": "0" * 64}},
            "code entry '../train/cli.py' is not a path",
        ),
        (lambda manifest: manifest | {"code": {"/etc/x.py": "0" * 64}}, "code entry '/etc/x.py' is not a path"),
        (
            lambda manifest: manifest | {"code": {"newsclf/model.py": "0" * 63}},
            "code entry 'newsclf/model.py' has no SHA",
        ),
    ],
)
def test_a_malformed_manifest_is_a_clear_error_naming_the_folder(small_model, tmp_path, forge, message):
    saved = small_model.save(tmp_path / "m")
    _forge_manifest(saved, forge)
    with pytest.raises(ModelFormatError, match=f"^{re.escape(str(saved / MANIFEST))}: .*{re.escape(message)}"):
        NewsClassifier.load(saved)


def test_a_file_that_matches_a_forged_checksum_but_is_no_pickle_is_refused(small_model, tmp_path):
    saved = small_model.save(tmp_path / "m")
    (saved / "topic.joblib").write_bytes(b"not a pickle")
    _rehash(saved)
    with pytest.raises(ModelFormatError, match="topic.joblib: not a readable joblib file"):
        NewsClassifier.load(saved)


def test_save_folder_keeps_the_bundled_code_digests(small_model, tmp_path):
    code = {"newsclf/model.py": "0" * 64}
    saved = save_folder(small_model.pipelines, small_model.tone_applies, small_model.metadata, tmp_path / "m", code)
    assert read_manifest(saved)[CODE] == code
    assert NewsClassifier.load(saved).predict(TEXTS) == small_model.predict(TEXTS)
