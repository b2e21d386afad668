"""Whether the server decodes beside its model calls: only where that is faster than taking turns.

On a CPU the decoding threads and the model share the cores: with a 224 px model on 2 cores, decoding beside the
model was slower than one request at a time (BENCHMARKS.md, "Decoding workers"), as the model's threads wait on
cores the decoders hold. So once the first request has been decoded and scored, the last requests' decode and
model seconds per clip go to the rule of the other commands' workers (``engine.workers.choose_workers``): while
the model bounds the server, decoding and model calls take turns; else decoding runs beside the model, which
keeps the cores the decoders leave. With a GPU the model needs no core, and decoding always runs beside it. The
limits are untouched: ``--max_concurrent`` requests still hold a decoding thread each; taking turns only orders
their work.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import nullcontext

import torch

from vidcls.engine.workers import choose_workers, local_cores

logger = logging.getLogger(__name__)

RECENT = 8  # requests whose costs decide


class Overlap:
    """Runs decoding (``decode``) and model calls (``model``) beside each other or in turns, as measured costs say.

    Args:
        device: where the model runs; not a CPU: always beside.
        max_decoders: decoding threads (``--max_concurrent``).
        cores: the cores shared; default: this process's.
    """

    def __init__(self, device: torch.device, max_decoders: int, cores: int | None = None):
        self.on_cpu = device.type == "cpu"
        self.max_decoders = max_decoders
        self.cores = cores or local_cores()
        # Decoders running beside the model (0: in turns); beside until both costs are measured, so that the first
        # requests still share model calls.
        self.beside = max_decoders
        self._threads = torch.get_num_threads()  # the model's, when it has the cores to itself
        self._turn = threading.Lock()
        self._costs = {"decode": deque(maxlen=RECENT), "model": deque(maxlen=RECENT)}
        self._costs_lock = threading.Lock()

    def decode(self, read: Callable[[], torch.Tensor]) -> torch.Tensor:
        """``read()`` (clips of one request), in turn with model calls while the model bounds the server."""
        with self._turn if self.beside == 0 else nullcontext():
            started = time.perf_counter()
            clips = read()
            seconds = time.perf_counter() - started
        self.note("decode", seconds, len(clips))
        return clips

    def model(self, logits_fn: Callable[[torch.Tensor], torch.Tensor], clips: torch.Tensor) -> torch.Tensor:
        """``logits_fn(clips)`` in turn with decoding, or beside it with the cores the decoders leave."""
        with self._turn if self.beside == 0 else nullcontext():
            threads = max(1, min(self._threads, self.cores - self.beside)) if self.beside else self._threads
            if self.on_cpu and torch.get_num_threads() != threads:  # it rebuilds the thread pool: only on a change
                torch.set_num_threads(threads)
            started = time.perf_counter()
            logits = logits_fn(clips)
            seconds = time.perf_counter() - started
        # As if on all the model's threads (the rule's assumption: time in proportion to the threads lost), so the
        # choice does not flip back and forth with the threads it gave.
        self.note("model", seconds * threads / self._threads, len(clips))
        return logits

    def restore(self) -> None:
        """Give the process back its torch threads (the server stops)."""
        if self.on_cpu:
            torch.set_num_threads(self._threads)

    def note(self, kind: str, seconds: float, clips: int) -> None:
        """Count one measured cost (``kind``: "decode" or "model", ``seconds`` for ``clips``) and choose again."""
        if not self.on_cpu or clips == 0:
            return
        with self._costs_lock:
            self._costs[kind].append(seconds / clips)
            decode, model = (statistics.median(self._costs[k]) if self._costs[k] else None for k in ("decode", "model"))
        if decode is None or model is None:
            return
        beside = min(self.max_decoders, choose_workers(decode, max(model, 1e-6), self.cores))
        if beside != self.beside:
            logger.info(
                "decoding %.0f ms and the model %.0f ms a clip on %d cores: %s",
                1000 * decode, 1000 * model, self.cores,
                f"{beside} requests decode beside the model" if beside else "decoding and the model take turns",
            )  # fmt: skip
            self.beside = beside
