"""Bounded-memory de-duplication: exact copies by content hash, near copies by MinHash LSH."""

from __future__ import annotations

import numpy as np

from newsclf.train.data.dedup import find_duplicates
from newsclf.train.data.streaming_dedup import StreamingDeduplicator
from tests.helpers import corpus_slice

STORY = (
    "Government troops shelled rebel positions outside the northern city on Tuesday as envoys from "
    "three neighbouring states arrived in the capital for talks on a ceasefire that both sides say they "
    "want but neither has yet signed, according to officials who spoke on condition of anonymity"
)


def _keep(texts, threshold=0.7, batch=3):
    dedup = StreamingDeduplicator(threshold=threshold)
    for start in range(0, len(texts), batch):
        dedup.add(texts[start : start + batch])
    return dedup.keep()


def test_exact_copies_keep_the_first_in_data_order():
    texts = ["Other news entirely.", STORY, STORY.upper() + "!!", "More news, here.", STORY]
    keep, counts = _keep(texts, threshold=1.0)
    assert keep.tolist() == [True, True, False, True, False]
    assert counts["exact_copies_removed"] == 2 and counts["near_copies_removed"] == 0


def test_near_copies_join_and_distinct_stories_do_not():
    edited = STORY.replace("Tuesday", "Wednesday")
    texts = [STORY, "Markets rallied on strong earnings from technology firms.", edited, edited + " More soon."]
    keep, counts = _keep(texts)
    assert keep.tolist() == [True, True, False, False]
    assert counts["near_copies_removed"] == 2
    assert _keep(texts, threshold=1.0)[0].tolist() == [True, True, True, True]


def test_agrees_with_in_memory_deduplication_on_the_corpus():
    texts = [item["text"] for item in corpus_slice(20)]
    texts += [texts[3], texts[7].replace(".", "!"), texts[11] + " Read more."]
    keep, _ = _keep(texts, batch=50)
    assert np.flatnonzero(keep).tolist() == find_duplicates(texts).keep


def test_memory_per_article_is_a_fixed_number_of_bytes():
    assert StreamingDeduplicator(threshold=0.7).bytes_per_article == 112
    assert StreamingDeduplicator(threshold=1.0).bytes_per_article == 16


def test_group_roots_follow_chains_of_links():
    from newsclf.train.data.streaming_dedup import _roots

    assert _roots(np.array([0, 0, 1, 2, 4, 4, 3])).tolist() == [0, 0, 0, 0, 4, 4, 0]
