"""The library beneath the stage scripts: what several stages share (flags, atomic outputs, worker processes, the
pairs' meta.json, bucketed counting, the Huffman tree, the window batches and their reader) and the training
steps (w2v.kernels). Nothing here imports a stage script; the scripts at the repository root import from here.
"""
