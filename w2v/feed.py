"""The lean feed of the fused GPU kernels: dataset.py's window batches (batch.WindowBatch), read by threads
straight into reused buffers (pinned, on CUDA) instead of DataLoader worker processes.

Batches are dataset.py's: the same units, the same reader plan (`WindowShards.worker_plan`, so `start_batch`
resumes inside an epoch as there), the same cuts and the same stream order (a batch from each reader in turn,
skipping readers whose stream has ended), so batch b of an epoch holds the same windows as the DataLoader's batch b
with as many workers. Both read through w2v/shards.py.

Why threads and not worker processes: pyarrow's parquet decode, numpy's copies and the numba cut (nogil) all run
without the GIL, so threads read in parallel, and their batches need no pickling, no shared-memory file per batch
and no pin_memory thread copying them again. Each reader owns FEED_SLOTS buffers: it fills a free one, hands it
over, and waits for a free one when all are handed over, so memory is bounded (FEED_SLOTS x 12 bytes x batch size
a reader). On CUDA `WindowFeed` copies each batch with non-blocking copies, giving a buffer back only when its copy
has completed (a CUDA event); on the CPU the batch's tensors are views of the buffer, valid until the next batch
is asked for.
"""
from __future__ import annotations

import queue
import threading
from collections import deque
from typing import Iterator

import torch

from w2v.batch import WindowBatch
from w2v.common import fail
from w2v.shards import BatchBuffer, WindowShards

FEED_SLOTS = 3  # buffers per reader: one being filled, and up to two batches waiting (the DataLoader's prefetch 2)


def _fill(shards: WindowShards, units: list[tuple[int, int, int]], skip_pairs: int, free: queue.Queue,
          ready: queue.Queue, stop: threading.Event) -> None:
    """A reader: the batches of `units` after `skip_pairs` pairs, cut into free buffers and handed to `ready`
    (None after the last; the exception instead when reading failed)."""
    def next_buffer():
        buffer = free.get()
        return None if buffer is None or stop.is_set() else buffer
    try:
        for buffer in shards.batches(units, skip_pairs, next_buffer):
            ready.put(buffer)
        ready.put(None)
    except BaseException as error:  # the consumer raises it in the training thread
        ready.put(error)


class WindowFeed:
    """The batches of `shards`' epoch stream (from its start_batch on), read by `num_workers` threads (0 reads as
    1: the stream is the same), on `device`. Iterate it once; close() (or the iteration's end) stops the
    readers. See the module docstring."""

    def __init__(self, shards: WindowShards, num_workers: int = 1, device: torch.device | str = "cpu"):
        self.shards, self.device = shards, torch.device(device)
        self.streams = max(1, int(num_workers))
        self.on_cuda = self.device.type == "cuda"
        self._stop = threading.Event()
        self._free: list[queue.Queue] = []
        self._ready: list[queue.Queue] = []
        self._threads: list[threading.Thread] = []
        self._started = False

    def _start(self) -> None:
        self._started = True
        for units, skip_pairs in self.shards.worker_plan(self.streams):
            free, ready = queue.Queue(), queue.Queue()
            for _ in range(FEED_SLOTS):
                free.put(BatchBuffer(self.shards.batch_size, pin=self.on_cuda))
            thread = threading.Thread(target=_fill, args=(self.shards, units, skip_pairs, free, ready, self._stop),
                                      daemon=True, name=f"feed-reader-{len(self._threads)}")
            self._free.append(free)
            self._ready.append(ready)
            self._threads.append(thread)
            thread.start()

    def __iter__(self) -> Iterator[WindowBatch]:
        if self._started:
            fail("a WindowFeed is iterated once: make a new one for the next pass")
        self._start()
        live = list(range(self.streams))
        held: deque = deque()  # (reader, slot, copy-done event or None) of batches handed out, oldest first
        try:
            while live:
                for reader in list(live):
                    got = self._ready[reader].get()
                    if isinstance(got, BaseException):
                        raise got
                    if got is None:
                        live.remove(reader)
                        continue
                    if self.on_cuda:
                        batch = got.batch()
                        shipped = batch.to(self.device, non_blocking=True)
                        event = torch.cuda.Event()
                        event.record()
                        held.append((reader, got, event))
                        yield shipped
                    else:
                        held.append((reader, got, None))
                        yield got.batch()
                    # The consumer asks for the next batch: it is done with this one's buffer (on CUDA, with the
                    # buffer of the batch before, whose copy has surely completed).
                    self._release(held, keep=1 if self.on_cuda else 0)
        finally:
            self.close()

    def _release(self, held: deque, keep: int) -> None:
        """Give back the buffers of batches handed out, all but the newest `keep`; on CUDA once their copies are
        done (the copy of the batch before last has long finished: waiting for it rarely waits)."""
        while len(held) > keep:
            reader, slot, event = held.popleft()
            if event is not None:
                event.synchronize()
            self._free[reader].put(slot)

    def close(self) -> None:
        """Stop the readers (each waits for a free buffer at most; it gets None instead) and join them."""
        self._stop.set()
        for free in self._free:
            free.put(None)
        for thread in self._threads:
            thread.join()
