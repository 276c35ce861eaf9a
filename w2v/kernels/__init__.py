"""The training steps by backend: cpu (numba window kernels), torch_steps (batched torch, the CUDA fallback),
triton_steps (fused Triton kernels), and steps, the one table that picks a step for (model, loss, kernel).

A step gets the tables (any module with `input`, and `output` or `inner`, embeddings: word2vec.SkipGram), a
batch of windows (batch.WindowBatch) and the learning rate's range, and applies word2vec.c's closed-form update in
place. MAX_SCORE is the one saturation bound every backend shares.
"""

# word2vec.c's MAX_EXP: beyond +-MAX_SCORE negative sampling takes sigma as exactly 0 or 1 and hierarchical
# softmax skips the node (the loss still counts the true score).
MAX_SCORE = 6.0
