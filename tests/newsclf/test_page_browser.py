"""The seed article's explanation page, written by `newsclf explain` and rendered in a real headless Chromium."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from newsclf.cleaning import ArticleCleaner
from tests.helpers import RenderedPage, as_articles, read_corpus

pytestmark = pytest.mark.slow

# Flags that keep Chromium to the one local page: no sandbox (containers), no GPU, no network of its own.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def chromium() -> str:
    """Debian's chromium; .ci/run installs it, elsewhere the test is skipped without it."""
    found = shutil.which("chromium")
    if found is None:
        message = "chromium is not installed (apt-get install -y --no-install-recommends chromium)"
        if os.environ.get("NEWSCLF_REQUIRE_SHARED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


def _browse(chromium: str, profile, *arguments: str) -> str:
    done = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_seed_articles_page_renders_in_chromium_with_its_paragraphs_and_scores(shared_path, chromium, tmp_path):
    import matplotlib.image

    from newsclf.train.config import load_config
    from newsclf.train.fit.in_memory import fit_model

    # The default experiment's model on the whole shipped corpus, saved as a folder the CLI loads.
    model = fit_model(load_config("default", {}), as_articles(read_corpus()), has_tone=True, metadata={"run_id": "r1"})
    folder = model.save(tmp_path / "model")
    seed = next((shared_path / "seeds").glob("000_*.txt"))
    page = tmp_path / "seed.html"
    done = subprocess.run(
        [sys.executable, "-m", "newsclf", "explain", "--model", str(folder), str(seed), "--html", str(page)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr

    screenshot = tmp_path / "seed.png"
    _browse(chromium, tmp_path / "profile-1", f"--screenshot={screenshot}", "--window-size=1200,3000", page.as_uri())
    pixels = matplotlib.image.imread(screenshot)
    assert pixels.shape[:2] == (3000, 1200)
    assert len(np.unique(pixels[..., :3].reshape(-1, 3), axis=0)) > 50  # text and shading, not a blank page

    rendered = RenderedPage(_browse(chromium, tmp_path / "profile-2", "--dump-dom", page.as_uri()))
    text = seed.read_text(encoding="utf-8")
    prediction = model.predict(text)
    assert f"Predicted topic: {prediction['topic']}" in rendered.visible
    assert "models:/" not in rendered.visible and "r1" in rendered.visible
    lines = rendered.line_texts()
    kept = [line for kind, line in lines if kind == "kept"]
    tones = model.paragraph_tones(text)
    assert len(kept) == len(tones) == 7 == len(ArticleCleaner().paragraphs(text))
    for shown, row in zip(kept, tones):
        assert shown.startswith(f"¶{row['paragraph']} · tone {row['tone_score']:.2f} {row['tone']}")
        assert shown.endswith(row["text"])
    removed = [line for kind, line in lines if kind == "removed"]
    assert [line.split(":")[1].split("paragraph")[1][:2].strip() for line in removed] == ["2", "5", "6", "7"]
    assert all(line.startswith("removed: repeats paragraph") for line in removed)
