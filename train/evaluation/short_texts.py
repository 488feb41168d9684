"""Tone on short texts (a sentence, a headline, a paragraph): the sentences it is measured and tempered on.

The tone classifier and its calibration learn from whole articles. On a single sentence they were
overconfident: on CAMEO's hand-coded news sentences (``../shared/data``) the default model put 65%
of its tone scores below 0.02 or above 0.98 while right 83% of the time, an expected calibration
error (ECE) of 0.12. Sentences with a reader's tone label are rare, so they are made here by
distant supervision: each sentence of a labelled article takes its article's tone. Inherited
labels are noisier than a reader's (a sentence about talks inside a report of fighting), so a
temperature fitted on them errs towards modest scores, not towards confident ones.
"""

from __future__ import annotations

import re

from newsclf.model import NewsClassifier
from newsclf.train.data.articles import Articles
from newsclf.train.evaluation.metrics import expected_calibration_error, reliability

# A sentence ends at . ! or ? followed by space; shorter ones (datelines, bylines) are not sentences.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
SENTENCE_MIN_WORDS = 6
# Fewer sentences than this and neither a temperature nor an ECE is worth reporting.
MIN_SENTENCES = 30
# Texts the temperature applies to in full (a news sentence is 23 words at the median, 34 at the 90th
# percentile, on CAMEO), and from which length on not at all: newsclf.model.SHORT_TEXT_TONE. Chosen
# on the default corpus's validation split: from 60 words on, the one-sentence items the corpus also
# holds kept their article-level tone log loss within 0.001 (0.0032 with 80, 0.0072 with 150), while
# the sentences' ECE was 0.040 to 0.042 for all three.
FULL_UP_TO_WORDS, NONE_FROM_WORDS = 30, 60


def tone_sentences(articles: Articles) -> tuple[list[str], list[str]]:
    """The sentences (of :data:`SENTENCE_MIN_WORDS` to :data:`FULL_UP_TO_WORDS` words) of every article
    that has a tone, each with its article's tone; each distinct sentence once, so a paragraph repeated
    verbatim does not count twice."""
    seen: set[str] = set()
    sentences, tones = [], []
    for text, tone in zip(articles.texts, articles.tones):
        if tone is None:
            continue
        for paragraph in text.splitlines():
            for sentence in _SENTENCE_END.split(paragraph.strip()):
                if SENTENCE_MIN_WORDS <= len(sentence.split()) <= FULL_UP_TO_WORDS and sentence not in seen:
                    seen.add(sentence)
                    sentences.append(sentence)
                    tones.append(tone)
    return sentences, tones


def short_text_ece(model: NewsClassifier, articles: Articles) -> tuple[float | None, int]:
    """The tone ECE of ``model`` on the sentences of ``articles`` (None below :data:`MIN_SENTENCES`),
    and how many sentences it is measured on."""
    sentences, tones = tone_sentences(articles)
    if "tone" not in model.pipelines or len(sentences) < MIN_SENTENCES:
        return None, len(sentences)
    proba = model.predict_proba(sentences)["tone"]
    return expected_calibration_error(reliability(proba, tones, model.labels("tone"))), len(sentences)
