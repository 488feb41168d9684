"""Find exact and near-duplicate articles (syndicated copies) so that each story counts once."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer

from newsclf.cleaning import ArticleCleaner

WORD = re.compile(r"\w+")
# Shingles shared by more documents than this are stock phrases, not evidence of copying.
_COMMON_SHINGLE_SHARE = 0.01
_CHUNK = 2048


@dataclass(frozen=True)
class DuplicateGroup:
    """Indices of articles that are copies of one story; ``indices[0]`` is the one kept."""

    indices: tuple[int, ...]
    exact: bool


@dataclass
class DuplicateReport:
    """What de-duplication found; ``keep`` lists the indices of the articles that remain."""

    keep: list[int]
    groups: list[DuplicateGroup] = field(default_factory=list)

    @property
    def removed(self) -> int:
        """Number of articles dropped as copies."""
        return sum(len(group.indices) - 1 for group in self.groups)


def find_duplicates(texts: list[str], threshold: float = 0.7, shingle_size: int = 4) -> DuplicateReport:
    """Group copies: identical after cleaning, case and punctuation, or near-identical.

    Near-duplicates are pairs whose word ``shingle_size``-gram sets have a Jaccard similarity of at
    least ``threshold``. Groups are transitive (copies of copies join one group); the first
    article of each group, in input order, is kept.
    """
    tokens = [WORD.findall(text.casefold()) for text in ArticleCleaner().transform(texts)]
    parent = list(range(len(texts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(i: int, j: int) -> None:
        a, b = root(i), root(j)
        if a != b:
            parent[max(a, b)] = min(a, b)

    first_seen: dict[tuple[str, ...], int] = {}
    exact_copies: set[int] = set()
    for i, words in enumerate(tokens):
        key = tuple(words)
        if key in first_seen:
            join(first_seen[key], i)
            exact_copies.add(i)
        else:
            first_seen[key] = i

    if threshold < 1.0:
        unique = sorted(first_seen.values())
        for i, j in _similar_pairs([tokens[k] for k in unique], threshold, shingle_size):
            join(unique[i], unique[j])

    members: dict[int, list[int]] = defaultdict(list)
    for i in range(len(texts)):
        members[root(i)].append(i)
    groups = [
        DuplicateGroup(tuple(indices), exact=all(k in exact_copies for k in indices[1:]))
        for indices in members.values()
        if len(indices) > 1
    ]
    return DuplicateReport(keep=sorted(members), groups=sorted(groups, key=lambda g: g.indices[0]))


def _similar_pairs(tokens: list[list[str]], threshold: float, size: int):
    """Pairs ``(i, j)``, i < j, of token lists whose shingle sets have Jaccard >= threshold."""
    if len(tokens) < 2:
        return
    shingle_lists = [shingles(words, size) for words in tokens]
    vectorizer = CountVectorizer(analyzer=lambda items: items, binary=True, dtype=np.float32)
    matrix = vectorizer.fit_transform(shingle_lists).tocsr()
    sizes = np.asarray(matrix.sum(axis=1)).ravel()
    document_frequency = np.asarray(matrix.sum(axis=0)).ravel()
    rare = document_frequency <= max(100, _COMMON_SHINGLE_SHARE * len(tokens))
    # Intersections over rare shingles only underestimate Jaccard, so no false pair is added.
    rare_matrix = matrix[:, np.flatnonzero(rare)].tocsr()
    transposed = rare_matrix.T.tocsc()
    for start in range(0, rare_matrix.shape[0], _CHUNK):
        overlap = sparse.triu(rare_matrix[start : start + _CHUNK] @ transposed, k=start + 1).tocoo()
        rows = overlap.row + start
        union = sizes[rows] + sizes[overlap.col] - overlap.data
        hits = overlap.data >= threshold * union
        yield from zip(rows[hits].tolist(), overlap.col[hits].tolist())


def shingles(words: list[str], size: int) -> list[str]:
    """The word ``size``-grams of ``words``, or all of them as one when there are too few."""
    if len(words) <= size:
        return [" ".join(words)]
    return [" ".join(words[k : k + size]) for k in range(len(words) - size + 1)]
