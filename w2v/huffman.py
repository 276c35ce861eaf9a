"""The Huffman tree of hierarchical softmax (word2vec.c's -hs 1): p(c | t) is a product of binary decisions along
c's path of inner nodes. Built from the vocabulary's counts, kept as DATA_DIR/huffman.npz beside vocab.json; the
model (word2vec.py) sizes its inner-node table by it and every hs kernel reads its paths, codes and lengths.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
import torch

from w2v.common import atomic_output


@dataclass
class HuffmanTree:
    """Each word's path of inner nodes (root first; ids 0..V-2, root V-2) and its branch bits, padded to max_len.

    paths [V, max_len] int32 and codes [V, max_len] int8 are padded with 0 past lengths[w], so a whole batch of
    context words is one gather; the padding is masked by `lengths`.
    """

    paths: np.ndarray
    codes: np.ndarray
    lengths: np.ndarray
    _on_device: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def vocab_size(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def max_len(self) -> int:
        return int(self.paths.shape[1])

    def save(self, path: Path) -> None:
        with atomic_output(Path(path)) as temp:
            with open(temp, "wb") as handle:  # a handle, so numpy does not append .npz to the temporary name
                np.savez(handle, paths=self.paths, codes=self.codes, lengths=self.lengths)

    @classmethod
    def load(cls, path: Path) -> "HuffmanTree":
        with np.load(path) as stored:
            return cls(stored["paths"], stored["codes"], stored["lengths"])

    def tensors(self, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(paths int32, codes int8, lengths int64) on `device`, copied there once."""
        key = str(torch.device(device))
        if key not in self._on_device:
            self._on_device[key] = (torch.from_numpy(self.paths).to(device), torch.from_numpy(self.codes).to(device),
                                    torch.from_numpy(self.lengths.astype(np.int64)).to(device))
        return self._on_device[key]


@numba.njit(cache=True)
def _huffman_merge(sorted_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """word2vec.c's CreateBinaryTree: two pointers over the descending counts and the (ascending) merged nodes.

    Nodes 0..V-1 are the leaves in `sorted_counts` order, V..2V-2 the merges in creation order (root last).
    On equal weights the leaf is taken first (word2vec.c takes the merged node): same expected code length, a
    shallower tree, so less padding.
    """
    n_words = sorted_counts.shape[0]
    weight = np.empty(2 * n_words - 1, dtype=np.int64)
    weight[:n_words] = sorted_counts
    parent = np.zeros(2 * n_words - 1, dtype=np.int64)
    bit = np.zeros(2 * n_words - 1, dtype=np.int8)
    leaf, merged = n_words - 1, n_words
    for a in range(n_words - 1):
        new = n_words + a
        if leaf >= 0 and (merged >= new or weight[leaf] <= weight[merged]):
            first, leaf = leaf, leaf - 1
        else:
            first, merged = merged, merged + 1
        if leaf >= 0 and (merged >= new or weight[leaf] <= weight[merged]):
            second, leaf = leaf, leaf - 1
        else:
            second, merged = merged, merged + 1
        weight[new] = weight[first] + weight[second]
        parent[first], parent[second] = new, new
        bit[second] = 1
    return parent, bit


@numba.njit(parallel=True, cache=True)
def _huffman_paths(parent: np.ndarray, bit: np.ndarray, order: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_words = order.shape[0]
    depth = np.zeros(2 * n_words - 1, dtype=np.int32)
    for child in range(2 * n_words - 3, -1, -1):  # a parent's id is above its children's: parents come first
        depth[child] = depth[parent[child]] + 1
    max_len = 0
    for w in range(n_words):
        max_len = max(max_len, depth[w])
    paths = np.zeros((n_words, max_len), dtype=np.int32)
    codes = np.zeros((n_words, max_len), dtype=np.int8)
    lengths = np.empty(n_words, dtype=np.int32)
    for w in numba.prange(n_words):
        row = order[w]
        lengths[row] = depth[w]
        node = np.int64(w)  # typed: prange's unsigned index unified with int64 parents would make it a float
        for j in range(depth[w] - 1, -1, -1):  # walk up from the leaf, writing the path back to front
            paths[row, j] = parent[node] - n_words
            codes[row, j] = bit[node]
            node = parent[node]
    return paths, codes, lengths


def build_huffman(counts: np.ndarray) -> HuffmanTree:
    """Huffman tree over word counts (any order): frequent words get short codes; O(V) after an O(V log V) sort."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 1 or counts.shape[0] == 0:
        raise ValueError("build_huffman needs a non-empty 1-d array of counts")
    if np.all(counts[:-1] >= counts[1:]):  # vocab.json is sorted already: skip the sort
        order = np.arange(counts.shape[0], dtype=np.int64)
    else:
        order = np.argsort(-counts, kind="stable")
    parent, bit = _huffman_merge(np.ascontiguousarray(counts[order]))
    return HuffmanTree(*_huffman_paths(parent, bit, order))


def huffman_for(data_dir: Path, counts: np.ndarray) -> HuffmanTree:
    """DATA_DIR/huffman.npz; (re)built from the counts when missing, older than vocab.json, or of another size."""
    path, vocab_path = Path(data_dir) / "huffman.npz", Path(data_dir) / "vocab.json"
    if path.exists() and path.stat().st_mtime >= vocab_path.stat().st_mtime:
        try:
            tree = HuffmanTree.load(path)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # unreadable: make it again
            tree = None
        if tree is not None and tree.vocab_size == len(counts):
            return tree
    tree = build_huffman(counts)
    tree.save(path)
    return tree
