"""De-duplication that never holds the texts: exact copies by content hash, near-copies by MinHash LSH.

Fed cleaned texts batch by batch in data order, it keeps per article only fixed-size numbers:
an 8-byte content hash, one 4-byte hash per LSH band, a 1-byte-per-permutation MinHash sketch
(to check candidate pairs) and an 8-byte group link: ``bytes_per_article`` (112 bytes with
the defaults: ~110 MB per million articles). The rule is the in-memory one (train/data/dedup.py):
copies after cleaning, case and punctuation, or word-shingle Jaccard >= ``threshold``; groups are
transitive and only the first article of a group, in data order, is kept, so no group straddles
splits. Near-copies are found through datasketch's MinHash with its LSH banding for the threshold;
a candidate pair joins only when its sketches agree on at least ``threshold`` of the permutations
(corrected for 1-byte chance agreement), so LSH misses a few pairs near the threshold and the
sketch check lets very few false ones in.
"""

from __future__ import annotations

import hashlib
import zlib

import numpy as np

from newsclf.train.data.dedup import WORD, shingles

_PERMUTATIONS = 64
_BYTE_CHANCE = 1.0 / 256  # two different minima agree on their low byte this often


def _crc32(data: bytes) -> int:
    # A fast deterministic shingle hash (datasketch's default, SHA-1 per shingle, is five times slower).
    return zlib.crc32(data)


class StreamingDeduplicator:
    """Collects fixed-size fingerprints of cleaned articles; :meth:`keep` decides which remain."""

    def __init__(self, threshold: float = 0.7, shingle_size: int = 4, seed: int = 1):
        from datasketch import MinHash, MinHashLSH

        self.threshold, self.shingle_size = threshold, shingle_size
        self._near = threshold < 1.0
        lsh = MinHashLSH(threshold=threshold, num_perm=_PERMUTATIONS) if self._near else None
        self._bands, self._rows = (lsh.b, lsh.r) if lsh else (0, 0)
        self._template = MinHash(num_perm=_PERMUTATIONS, seed=seed, hashfunc=_crc32)
        self._exact: list[np.ndarray] = []
        self._band_hashes: list[np.ndarray] = []
        self._sketches: list[np.ndarray] = []
        self._mixers = np.random.default_rng(seed).integers(1, 2**63, size=self._rows, dtype=np.uint64) | np.uint64(1)

    @property
    def bytes_per_article(self) -> int:
        """Memory the fingerprints of one article take (plus 8 bytes for its group link when deciding)."""
        return 8 + 4 * self._bands + (_PERMUTATIONS if self._near else 0) + 8

    def add(self, cleaned_texts: list[str]) -> None:
        """Fingerprint the next articles, in data order."""

        tokens = [WORD.findall(text.casefold()) for text in cleaned_texts]
        self._exact.append(
            np.array(
                [
                    int.from_bytes(hashlib.blake2b(" ".join(words).encode(), digest_size=8).digest())
                    for words in tokens
                ],
                dtype=np.uint64,
            )
        )
        if not self._near or not tokens:
            return
        signatures = np.empty((len(tokens), _PERMUTATIONS), dtype=np.uint64)
        for i, words in enumerate(tokens):
            sketch = self._template.copy()
            sketch.update_batch([shingle.encode() for shingle in shingles(words, self.shingle_size)])
            signatures[i] = sketch.hashvalues
        bands = signatures[:, : self._bands * self._rows].reshape(len(tokens), self._bands, self._rows)
        with np.errstate(over="ignore"):  # multiplication modulo 2**64 is the point
            mixed = (bands * self._mixers).sum(axis=2, dtype=np.uint64)
        # 4 bytes a band: chance collisions between different bands are rejected by the sketch check.
        self._band_hashes.append((mixed >> np.uint64(32)).astype(np.uint32))
        self._sketches.append((signatures & np.uint64(0xFF)).astype(np.uint8))

    def keep(self) -> tuple[np.ndarray, dict[str, int]]:
        """A boolean mask of the articles to keep (first of each group), and counts of what was removed."""
        exact = np.concatenate(self._exact) if self._exact else np.empty(0, np.uint64)
        self._exact = [exact]
        n = len(exact)
        parent = np.arange(n, dtype=np.int64)
        _, first, inverse = np.unique(exact, return_index=True, return_inverse=True)
        parent[:] = first[inverse]  # every exact copy points at the first of its content
        exact_removed = int(n - len(first))
        near_removed = 0
        if self._near and n:
            bands, sketches = np.concatenate(self._band_hashes), np.concatenate(self._sketches)
            self._band_hashes, self._sketches = [bands], [sketches]  # the batches' arrays are freed
            unique = first  # near-copies are looked for among distinct contents only
            for band in range(self._bands):
                values = bands[unique, band]
                order = np.argsort(values, kind="stable")
                sorted_values = values[order]
                same = np.flatnonzero(sorted_values[1:] == sorted_values[:-1])
                for position in same.tolist():
                    i, j = int(unique[order[position]]), int(unique[order[position + 1]])
                    if self._similar(sketches[i], sketches[j]):
                        near_removed += _join(parent, i, j)
        keep = _roots(parent) == np.arange(n)
        return keep, {
            "articles": n,
            "kept": int(keep.sum()),
            "exact_copies_removed": exact_removed,
            "near_copies_removed": int(n - keep.sum()) - exact_removed,
        }

    def _similar(self, left: np.ndarray, right: np.ndarray) -> bool:
        agreement = float(np.mean(left == right))
        return (agreement - _BYTE_CHANCE) / (1 - _BYTE_CHANCE) >= self.threshold


def _root(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = int(parent[i])
    return i


def _roots(parent: np.ndarray) -> np.ndarray:
    """Every article's group root: ``parent`` followed to its fixed point, all articles at once."""
    roots = parent.copy()
    while True:
        jumped = roots[roots]
        if np.array_equal(jumped, roots):
            return roots
        roots = jumped


def _join(parent: np.ndarray, i: int, j: int) -> int:
    """Join the groups of ``i`` and ``j`` under the earlier root; 1 if they were apart."""
    a, b = _root(parent, i), _root(parent, j)
    if a == b:
        return 0
    parent[max(a, b)] = min(a, b)
    return 1
