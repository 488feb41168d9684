"""The logged model's code bundle and the registry."""

import json
import subprocess
import sys

from train.registry import bundle_served_code

# Imports everything a logged model runs, from the bundle alone, with the training-only libraries blocked.
_BUNDLE_CHECK = """
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("datasets", "matplotlib", "train", "features", "bench"):
            raise ImportError("blocked " + name)
sys.meta_path.insert(0, Block())
code, folder = sys.argv[1:]
sys.path.insert(0, code)
import newsclf.pyfunc
from newsclf.model import NewsClassifier
assert newsclf.pyfunc.__file__.startswith(code), newsclf.pyfunc.__file__
model = NewsClassifier.load(folder)
article = "Troops advanced."
print(json.dumps([model.predict(article), model.explain(article), model.paragraph_tones("Troops.\\nEnvoys.")]))
"""


def test_the_bundled_code_runs_the_model_without_the_rest_of_the_project(tmp_path, small_model, small_model_folder):
    bundle_served_code(tmp_path / "code")
    result = subprocess.run(
        [sys.executable, "-c", _BUNDLE_CHECK, str(tmp_path / "code"), str(small_model_folder)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    prediction, explanation, paragraphs = json.loads(result.stdout)
    assert prediction == small_model.predict("Troops advanced.")
    assert explanation == small_model.explain("Troops advanced.") and len(paragraphs) == 2
