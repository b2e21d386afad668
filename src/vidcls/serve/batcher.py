"""One inference thread that merges the clips of concurrent requests into shared model calls.

A model call on 16 clips costs far less than 4 calls on 4 (fixed overhead per call, better use of matrix
kernels), so clips that arrive while the model is busy wait and go in together. Example with
``batch_size=16``: request A's 4 clips start a call alone; B, C and D submit 4 clips each while it runs; the
next call takes all 12 and hands each request back its own 4 rows. When the model is idle, a call waits up
to ``wait_s`` for company, and only while ``more_coming()`` says other clips are on their way (a request is
decoding), so a lone request pays nothing for the batching.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import torch

logger = logging.getLogger(__name__)

_STOP = object()


class _Job:
    __slots__ = ("clips", "future")

    def __init__(self, clips: torch.Tensor):
        self.clips = clips
        self.future: Future = Future()


class Batcher:
    """Runs ``logits_fn`` on one thread, over the clips of as many waiting jobs as fit in ``batch_size``.

    Args:
        logits_fn: uint8 clips (N, T, C, H, W) -> logits (N, K), e.g. ``Predictor.logits``.
        batch_size: the most clips per call; a job larger than that runs alone, never split.
        wait_s: how long a call started by an idle model may wait for more jobs.
        more_coming: whether waiting can pay off (another request is decoding); checked before each wait.
    """

    def __init__(self, logits_fn, batch_size: int, wait_s: float, more_coming: Callable[[], bool] = lambda: True):
        self.logits_fn = logits_fn
        self.batch_size = batch_size
        self.wait_s = wait_s
        self.more_coming = more_coming
        self.calls = 0  # model calls made, for /health and the tests
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._held = None  # a job taken from the queue that did not fit the last call
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vidcls-inference", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._jobs.put(_STOP)
            self._thread.join(timeout)
            self._thread = None

    def pending(self) -> int:
        """Jobs waiting for the model, not counting the call in progress."""
        return self._jobs.qsize() + (self._held is not None)

    def submit(self, clips: torch.Tensor) -> Future:
        """Queue the clips of one request; the future gets their logits, (N, K) float32 on the CPU."""
        if self._thread is None:
            raise RuntimeError("the batcher is not running (start() it, or use the app inside its lifespan)")
        job = _Job(clips)
        self._jobs.put(job)
        return job.future

    def _next(self, timeout: float | None):
        if self._held is not None:
            job, self._held = self._held, None
            return job
        return self._jobs.get(block=timeout is None or timeout > 0, timeout=timeout)

    def _run(self) -> None:
        while True:
            job = self._next(None)
            if job is _STOP:
                return
            batch, size = [job], len(job.clips)
            deadline = time.monotonic() + self.wait_s
            while size < self.batch_size:
                try:  # what is queued already joins at once; waiting for more only if more are coming
                    job = self._next(max(0.0, deadline - time.monotonic()) if self.more_coming() else 0.0)
                except queue.Empty:
                    break
                if job is _STOP or size + len(job.clips) > self.batch_size:
                    self._held = job  # first in the next call (or the stop, after this call)
                    break
                batch.append(job)
                size += len(job.clips)
            self._call(batch)

    def _call(self, batch: list[_Job]) -> None:
        # A job whose request gave up (timeout) before its turn is dropped here, unscored.
        batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
        if not batch:
            return
        try:
            self.calls += 1
            logits = self.logits_fn(torch.cat([job.clips for job in batch]))
        except Exception as err:  # every waiting request must hear of it, and the thread must live on
            logger.exception("model call on %d clips failed", sum(len(job.clips) for job in batch))
            for job in batch:
                job.future.set_exception(err)
            return
        # (sum N_i, K) -> each job's own (N_i, K) rows, in submission order
        for job, rows in zip(batch, logits.split([len(job.clips) for job in batch]), strict=True):
            job.future.set_result(rows)


class BatchedPredictor:
    """A predictor whose model calls go to ``logits_fn`` (a ``Batcher``'s); everything else is the predictor's own.

    ``engine.timeline.predict_timeline`` takes it in place of a ``Predictor``, so the windows of a timeline
    share model calls with other requests. Example: ``BatchedPredictor(predictor, lambda clips:
    batcher.submit(clips).result())``; the server's ``logits_fn`` also lets a timed-out request drop its job.
    """

    def __init__(self, predictor, logits_fn: Callable[[torch.Tensor], torch.Tensor]):
        self._predictor = predictor
        self._logits_fn = logits_fn

    def __getattr__(self, name: str):
        return getattr(self._predictor, name)

    def logits(self, clips: torch.Tensor) -> torch.Tensor:
        return self._logits_fn(clips)
