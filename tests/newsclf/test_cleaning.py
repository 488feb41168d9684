import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone

from newsclf.cleaning import ArticleCleaner

HEADLINE = "Navy Blockade Tightens as Envoys Meet in Muscat"
BODY_1 = (
    "Warships closed the strait on Monday, the defence ministry said, while negotiators gathered for a third round."
)
BODY_2 = "Diplomats described the talks as \u201cconstructive\u201d but said no date was set for a ceasefire."
SCRAPED = "\n".join(
    [
        "A naval blockade tightens while envoys meet for talks.",
        HEADLINE,
        "",
        HEADLINE,
        "By Staff Reporter",
        "MUSCAT (Reuters) - " + BODY_1,
        BODY_2,
        "Read more: Five things to know about the strait",
        BODY_1,
        "  " + BODY_2 + "  ",
        "\u00a9 2025 Example News. All rights reserved.",
    ]
)


def test_scraped_article_keeps_each_paragraph_once_without_boilerplate():
    paragraphs = ArticleCleaner().paragraphs(SCRAPED)
    assert paragraphs == [
        "A naval blockade tightens while envoys meet for talks.",
        HEADLINE,
        BODY_1,
        BODY_2.replace("\u201c", '"').replace("\u201d", '"'),
    ]


def test_sentences_that_start_like_bylines_are_kept():
    text = "By noon, troops had reached the bridge.\nBy John Smith and Ana Ruiz"
    assert ArticleCleaner().paragraphs(text) == ["By noon, troops had reached the bridge."]


def test_switches_turn_each_step_off():
    raw = ArticleCleaner(drop_repeated=False, drop_boilerplate=False, normalize_unicode=False).paragraphs(SCRAPED)
    assert raw.count(HEADLINE) == 2
    assert "By Staff Reporter" in raw
    assert any("\u201c" in paragraph for paragraph in raw)


def test_unicode_is_normalised_and_whitespace_collapsed():
    text = "Ｆｕｌｌ\u2011width  text\u00a0with\ttabs \u2014 and a soft\u00adhyphen"
    assert ArticleCleaner().paragraphs(text) == ["Full-width text with tabs - and a softhyphen"]


def test_transform_returns_one_string_per_input_and_handles_non_strings():
    out = ArticleCleaner().fit_transform([SCRAPED, "", None, 42])
    assert isinstance(out, np.ndarray) and out.shape == (4,)
    assert out[0].count(HEADLINE) == 1 and "\n\n" in out[0]
    assert list(out[1:]) == ["", "", "42"]


def test_is_a_well_behaved_estimator():
    cleaner = ArticleCleaner(drop_repeated=False)
    copy = clone(cleaner)
    assert copy.get_params() == {"drop_boilerplate": True, "drop_repeated": False, "normalize_unicode": True}
    assert list(cleaner.get_feature_names_out()) == ["text"]


def test_real_seed_article_loses_its_repeats(shared_path):
    seed = next((shared_path / "seeds").glob("000_*.txt")).read_text(encoding="utf-8")
    lines = [line for line in seed.splitlines() if line.strip()]
    paragraphs = ArticleCleaner().paragraphs(seed)
    assert len(set(lines)) == len(paragraphs) < len(lines)
    assert paragraphs[1].startswith("Russia Escalates Offensive in Kursk")
    assert sum(p.startswith("Russia Escalates Offensive") for p in paragraphs) == 1


@pytest.mark.slow  # a process of its own, given 30 s
def test_a_long_capitalised_line_after_by_is_cleaned_in_linear_time():
    # A byline pattern that backtracks would take hours here; run it apart so a regression fails, not hangs.
    script = (
        "from newsclf.cleaning import ArticleCleaner; "
        "print(len(ArticleCleaner().paragraphs('By ' + 'A' * 200_000 + '!')))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout.strip() == "1"
