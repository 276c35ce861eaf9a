"""The one batch every training step reads: a run of whole windows.

A window is one target occurrence and its contexts. `WindowBatch` holds the contexts (int32, one per pair), one
target per window (int32) and the window offsets (int32 [W + 1]: window w is contexts
window_starts[w]:window_starts[w + 1], window_starts[0] == 0, window_starts[-1] == n_pairs), plus the longest
window's length, known on the host so that a GPU launch needs no device sync. Negatives are not part of it:
every step draws its own from the batch seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class WindowBatch:
    """A batch of windows (see the module docstring)."""

    context: torch.Tensor  # int32 [n_pairs]
    window_target: torch.Tensor  # int32 [n_windows]
    window_starts: torch.Tensor  # int32 [n_windows + 1], window_starts[0] == 0, window_starts[-1] == n_pairs
    longest: int  # pairs in the longest window

    @property
    def n_pairs(self) -> int:
        return int(self.context.shape[0])

    @property
    def n_windows(self) -> int:
        return int(self.window_starts.shape[0]) - 1

    @classmethod
    def of_pairs(cls, target, context, window_starts) -> "WindowBatch":
        """The batch of pairs (a target per pair) cut into windows at `window_starts` (int offsets [W + 1], each
        window's pairs sharing their target), as int32 CPU tensors."""
        target, context, starts = (torch.as_tensor(a).cpu() for a in (target, context, window_starts))
        starts = starts.to(torch.int32)
        longest = int((starts[1:] - starts[:-1]).max()) if len(starts) > 1 else 0
        return cls(context.to(torch.int32), target[starts[:-1].long()].to(torch.int32), starts, longest)

    def nbytes(self) -> int:
        """Bytes shipped to the device for this batch."""
        return self.context.nbytes + self.window_target.nbytes + self.window_starts.nbytes

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "WindowBatch":
        """The same batch on `device` (the tensors themselves when they are there already)."""
        return WindowBatch(self.context.to(device, non_blocking=non_blocking),
                           self.window_target.to(device, non_blocking=non_blocking),
                           self.window_starts.to(device, non_blocking=non_blocking), self.longest)

    def pair_targets(self) -> torch.Tensor:
        """The target of every pair (int32 [n_pairs]), for readers that want pairs rather than windows."""
        lengths = (self.window_starts[1:] - self.window_starts[:-1]).long()
        return torch.repeat_interleave(self.window_target, lengths)
