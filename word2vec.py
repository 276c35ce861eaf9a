"""Stage 6: the word2vec model (skip-gram or CBOW, negative sampling or hierarchical softmax) and its neighbours.

Run as a script it loads trained vectors and prints the nearest neighbours of words:
    python word2vec.py --words москва король

`SkipGram` holds the tables: the input vectors and either one output vector per word (negative sampling) or one
vector per inner node of a Huffman tree over the vocabulary counts (hierarchical softmax, w2v/huffman.py,
word2vec.c's syn1). Its forward methods are the losses written for autograd:
- `forward`: skip-gram with negative sampling, for a pair (t, c) with negatives n_1..n_K and u = in[t]:
  L = -log sigma(u.v_c) - sum_k log sigma(-u.v_nk);
- `forward_hs`: skip-gram with hierarchical softmax, L = -sum over the nodes n of c's path with bit b of
  log sigma((1-2b) u.v_n);
- `forward_cbow`, `forward_cbow_hs`: CBOW, the mean h of a window's context input vectors in place of u,
  predicting the window's target.

Training never calls them: the gradient of these losses is known in closed form (g = sigma(score) - label;
dL/du = sum_j g_j v_j, dL/dv_j = g_j u), so the steps apply it directly, which is what word2vec.c does and
costs no graph. The steps live by backend, w2v/kernels/cpu.py (numba) and w2v/kernels/torch_steps.py (torch),
and train.py picks one from the table in w2v/kernels/steps.py; the forward methods stay here as the references the tests
check every step against.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from w2v import common
from w2v.common import at_least, check_flags, load_vocab, parse_config, require, run
from w2v.huffman import HuffmanTree
from w2v.model_card import vocab_figures
from w2v.morphology import resolve_queries


DATA_DIR = common.DATA_DIR  # where stage outputs live (every stage's, set in w2v/common.py)
WORDS = ["москва", "король", "хороший", "говорить"]  # words whose neighbours to print; on a lemma_UPOS vocabulary a plain word answers for its keys (москвы: москва_PROPN, москва_NOUN)
K = 10  # neighbours per word



class SkipGram(nn.Module):
    """Input and output embedding tables, initialised as word2vec.c does (input uniform +-0.5/dim, output 0).

    init_range r draws the input rows uniform in +-r/dim instead: train.py gives CBOW 1.0, gensim 4's range
    (its prep_vectors), as CBOW's mean of several small rows starts slow (bench/LOG.md, "CBOW").

    With loss="hs" the output table is replaced by the V-1 inner-node vectors of the Huffman tree (`inner`,
    word2vec.c's syn1, also zeros).
    """

    def __init__(self, vocab_size: int, dim: int, seed: int = 1, words: list[str] | None = None,
                 loss: str = "ns", init_range: float = 0.5):
        super().__init__()
        if loss not in ("ns", "hs"):
            raise ValueError(f"loss must be 'ns' or 'hs', not {loss!r}")
        self.loss = loss
        generator = torch.Generator().manual_seed(seed)
        # Tables passed in as _weight: nn.Embedding would otherwise fill them with normal draws first (a second
        # wasted at 132K x 300).
        initial = torch.rand(vocab_size, dim, generator=generator).sub_(0.5)
        if init_range != 0.5:  # the default leaves the draws untouched: the same bits as before init_range
            initial.mul_(2.0 * init_range)
        initial.div_(dim)
        self.input = nn.Embedding(vocab_size, dim, sparse=True, _weight=initial)
        # ns: an output vector per word; hs: one per inner node of the Huffman tree (V - 1).
        rows = vocab_size if loss == "ns" else max(0, vocab_size - 1)
        table = nn.Embedding(rows, dim, sparse=True, _weight=torch.zeros(rows, dim))
        if loss == "ns":
            self.output = table
        else:
            self.inner = table
        self.words = list(words) if words is not None else None

    def forward(self, target: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        """Summed negative-sampling loss of the batch (autograd reference; training uses the closed-form steps)."""
        u = self.input(target.long())
        v_pos = self.output(context.long())
        v_neg = self.output(negatives.long())
        pos_score = (u * v_pos).sum(-1)
        neg_score = torch.bmm(v_neg, u.unsqueeze(2)).squeeze(2)
        return -(nn.functional.logsigmoid(pos_score).sum() + nn.functional.logsigmoid(-neg_score).sum())

    def forward_hs(self, target: torch.Tensor, context: torch.Tensor, tree: "HuffmanTree") -> torch.Tensor:
        """Summed hierarchical-softmax loss of the batch (autograd reference for the HS steps).

        -log p(c | t) = -sum over the nodes n of path(c) with bit b of log sigma((1 - 2b) u_t.v_n): word2vec.c's
        label for a node is 1 - b.
        """
        paths, codes, lengths = tree.tensors(self.input.weight.device)
        context = context.long()
        u = self.input(target.long())
        v = self.inner(paths[context].long())
        sign = 1.0 - 2.0 * codes[context].to(u.dtype)
        on_path = torch.arange(tree.max_len, device=u.device) < lengths[context, None]
        scores = torch.bmm(v, u.unsqueeze(2)).squeeze(2)
        return -torch.where(on_path, nn.functional.logsigmoid(sign * scores), 0.0).sum()

    def _window_mean_inputs(self, context: torch.Tensor, window_starts: torch.Tensor) -> torch.Tensor:
        """h [W, dim]: the mean input vector of each window's contexts, differentiable."""
        sizes = (window_starts[1:] - window_starts[:-1]).long()
        window_of_pair = torch.repeat_interleave(torch.arange(sizes.shape[0], device=context.device), sizes)
        rows = self.input(context.long())
        summed = torch.zeros(sizes.shape[0], rows.shape[1], dtype=rows.dtype, device=rows.device)
        return summed.index_add(0, window_of_pair, rows) / sizes.clamp_min(1).to(rows.dtype)[:, None]

    def forward_cbow(self, target: torch.Tensor, context: torch.Tensor, window_starts: torch.Tensor,
                     negatives: torch.Tensor) -> torch.Tensor:
        """Summed CBOW negative-sampling loss over the windows (autograd reference for the CBOW ns steps).

        Window w (pairs window_starts[w]:window_starts[w + 1], one target) scores h_w, the mean of its context
        input vectors, against its target's output vector (label 1) and its negatives[w] (label 0; a negative
        equal to the target left out, as the steps skip it). The steps add dL/dh undivided to every context row
        (word2vec.c): autograd's gradient of an input row through the mean is that divided by the window's size,
        so the tests compare against this gradient times the size.
        """
        h = self._window_mean_inputs(context, window_starts)
        t = target[window_starts[:-1].long()].long()
        v_pos = self.output(t)
        v_neg = self.output(negatives.long())
        pos_score = (h * v_pos).sum(-1)
        neg_score = torch.bmm(v_neg, h.unsqueeze(2)).squeeze(2)
        used = negatives.long() != t[:, None]
        return -(nn.functional.logsigmoid(pos_score).sum()
                 + torch.where(used, nn.functional.logsigmoid(-neg_score), 0.0).sum())

    def forward_cbow_hs(self, target: torch.Tensor, context: torch.Tensor, window_starts: torch.Tensor,
                        tree: "HuffmanTree") -> torch.Tensor:
        """Summed CBOW hierarchical-softmax loss over the windows: h_w against its target's Huffman path."""
        paths, codes, lengths = tree.tensors(self.input.weight.device)
        h = self._window_mean_inputs(context, window_starts)
        t = target[window_starts[:-1].long()].long()
        v = self.inner(paths[t].long())
        sign = 1.0 - 2.0 * codes[t].to(h.dtype)
        on_path = torch.arange(tree.max_len, device=h.device) < lengths[t, None]
        scores = torch.bmm(v, h.unsqueeze(2)).squeeze(2)
        return -torch.where(on_path, nn.functional.logsigmoid(sign * scores), 0.0).sum()

    def nearest(self, words: list[str], k: int = 10) -> dict[str, list[tuple[str, float]]]:
        """Cosine k-nearest neighbours (by input vectors) of each known word; unknown words raise KeyError."""
        if self.words is None:
            raise ValueError("the model was built without its word list")
        return nearest_neighbours(self.words, self.input.weight.detach(), words, k)


def nearest_neighbours(words: Sequence[str], vectors: torch.Tensor | np.ndarray, queries: Sequence[str],
                       k: int = 10, lowercase: bool = False) -> dict[str, list[tuple[str, float]]]:
    """Cosine k-nearest neighbours of each query word among `words` (the query itself left out), by query.

    An exact spelling wins; with lowercase, a query not in `words` stands for the first (the most frequent) row
    whose case-folded spelling is the query's. Unknown queries raise KeyError, naming them all.
    """
    vectors = torch.as_tensor(vectors, dtype=torch.float32)
    words = list(words)
    index: dict[str, int] = {}
    folded: dict[str, int] = {}
    for i, word in enumerate(words):
        index.setdefault(word, i)
        if lowercase:
            folded.setdefault(word.upper(), i)
    found = {word: index.get(word, folded.get(word.upper(), -1) if lowercase else -1) for word in queries}
    unknown = [word for word, row in found.items() if row < 0]
    if unknown:
        raise KeyError(f"unknown word{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
    unit = vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)
    rows = torch.tensor([found[word] for word in queries], dtype=torch.long)
    cosine = unit[rows] @ unit.T
    cosine[torch.arange(len(rows)), rows] = -math.inf
    scores, ids = cosine.topk(min(k, len(words) - 1), dim=1)
    return {word: [(words[j], float(s)) for j, s in zip(ids[i].tolist(), scores[i].tolist())]
            for i, word in enumerate(queries)}



# ----------------------------------------------------------------------------------------------------------------



def load_trained(data_dir: Path) -> tuple[list[str], np.ndarray]:
    """Words and input vectors of the trained model in DATA_DIR/model."""
    data_dir = Path(data_dir)
    embeddings = require(data_dir / "model" / "embeddings.npy", "train.py")
    words, _ = load_vocab(data_dir)
    return words, np.load(embeddings)


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(__file__, globals(), argv)
    check_flags(cfg, k=at_least(1))
    words, vectors = load_trained(Path(cfg.data_dir))
    mode = vocab_figures(Path(cfg.data_dir) / "vocab.json").get("lemmatize", "none")
    keys = resolve_queries(cfg.words, words, mode)
    for word, found in keys.items():
        if not found:
            print(f"unknown word: {word}")
        elif found != [word]:
            print(f"{word}: the keys {', '.join(found)}")
    known = list(dict.fromkeys(key for found in keys.values() for key in found))
    neighbours = nearest_neighbours(words, vectors, known, cfg.k) if known else {}
    for word, found in neighbours.items():
        print(f"{word}: " + ", ".join(f"{w} {s:.3f}" for w, s in found))
    return neighbours


if __name__ == "__main__":
    run(main)
