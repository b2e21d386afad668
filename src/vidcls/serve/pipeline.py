"""From an admitted request to its answer: admission, decoding threads, the batcher, timeouts and clean-up.

At most ``max_concurrent + max_queue`` requests are accepted at once (uploading, waiting or working); the next
one gets 503 straight away, so there is never an unbounded backlog. ``max_concurrent`` of them hold a
working slot: their video is decoded in a worker thread and their clips go to the batcher's inference thread,
so the event loop only ever waits. A request that times out gets its 504 at once, but its slot, its place
and its upload are released only when its worker thread is done: threads cannot be killed, and a timed-out
request must not make room for more work than ``max_concurrent`` threads.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from contextlib import contextmanager

import anyio
from fastapi import HTTPException

from vidcls.data.decode import probe
from vidcls.engine.timeline import predict_timeline
from vidcls.errors import DecodeError
from vidcls.serve.batcher import BatchedPredictor, Batcher
from vidcls.serve.settings import ServeSettings
from vidcls.serve.uploads import Video


class Ticket:
    """One admitted request. Released once: by the request if no work started, else by its worker thread."""

    def __init__(self):
        self.video: Video | None = None
        self.slot = False  # holds a working slot
        self.handed_over = False  # a worker thread owns the release now
        self.cancelled = threading.Event()  # the request gave up: its worker stops at the next step
        self.model_future: Future | None = None

    def cancel(self) -> None:
        self.cancelled.set()
        if self.model_future is not None:
            self.model_future.cancel()  # still queued for the model: dropped unscored


class Pipeline:
    """Admits, decodes and scores videos for the app; ``start``/``stop`` run inside its lifespan."""

    def __init__(self, predictor, settings: ServeSettings):
        self.predictor = predictor
        self.settings = settings
        self.batcher = Batcher(
            predictor.logits, settings.batch_size, settings.batch_wait_ms / 1000, lambda: self._decoding > 0
        )
        self.admitted = 0  # requests accepted and not yet released
        self.working = 0  # of which hold a working slot
        self._decoding = 0  # worker threads decoding: their clips are coming
        self._decoding_count = threading.Lock()
        self._decoders: ThreadPoolExecutor | None = None
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(self.settings.max_concurrent)
        self._decoders = ThreadPoolExecutor(self.settings.max_concurrent, thread_name_prefix="vidcls-decode")
        self.batcher.start()

    def stop(self) -> None:
        if self._decoders is not None:
            self._decoders.shutdown(wait=False, cancel_futures=True)
        self.batcher.stop()

    def stats(self) -> dict:
        return {"working": self.working, "waiting": self.admitted - self.working, "model_calls": self.batcher.calls}

    def admit(self) -> Ticket:
        """A place for one request, or 503 when every place is taken."""
        if self.admitted >= self.settings.capacity:
            raise HTTPException(
                503,
                f"busy: {self.working} requests working and {self.admitted - self.working} waiting "
                f"(--max_concurrent {self.settings.max_concurrent}, --max_queue {self.settings.max_queue}); "
                "retry in a moment",
                headers={"Retry-After": "1"},
            )
        self.admitted += 1
        return Ticket()

    def release(self, ticket: Ticket) -> None:
        """Give back the request's place and slot and delete its upload; runs on the event loop."""
        if ticket.video is not None:
            ticket.video.remove()
        if ticket.slot:
            ticket.slot = False
            self.working -= 1
            self._slots.release()
        self.admitted -= 1

    async def score(self, ticket: Ticket, options: dict) -> dict:
        """Wait for a working slot, then decode and score ``ticket.video`` in a worker thread."""
        await self._slots.acquire()
        ticket.slot = True
        self.working += 1
        work = self._decoders.submit(self._work, ticket, options)
        ticket.handed_over = True
        work.add_done_callback(lambda _: self._release_soon(ticket))
        try:
            return await asyncio.wrap_future(work)
        except asyncio.CancelledError:
            ticket.cancel()  # timed out: the thread stops at its next step, and releases the ticket then
            raise

    def _release_soon(self, ticket: Ticket) -> None:
        if ticket.video is not None:
            ticket.video.remove()  # at once, from the worker thread: even if the loop is gone
        try:
            self._loop.call_soon_threadsafe(self.release, ticket)
        except RuntimeError:  # the loop has closed (server stopped): nothing left to count
            pass

    @contextmanager
    def _counted_decoding(self):
        with self._decoding_count:
            self._decoding += 1
        try:
            yield
        finally:
            with self._decoding_count:
                self._decoding -= 1

    def _work(self, ticket: Ticket, options: dict) -> dict | None:
        """Runs in a decoding thread: probe, decode, wait for the model, rank; the optional timeline."""
        video, predictor = ticket.video, self.predictor
        try:
            info = probe(video.path)
        except DecodeError as err:
            raise HTTPException(415, video.describe(str(err))) from err
        if info.duration > self.settings.max_video_seconds:
            raise HTTPException(
                422,
                f"{video.name}: lasts {info.duration:.1f} s, over the {self.settings.max_video_seconds:g} s limit "
                "(--max_video_seconds)",
            )
        try:
            with self._counted_decoding():
                clips = predictor.clips_from_file(video.path)
            if ticket.cancelled.is_set():
                return None
            ticket.model_future = self.batcher.submit(clips)
            if ticket.cancelled.is_set():  # cancel() may have run before model_future was set
                ticket.model_future.cancel()
            scores = ticket.model_future.result().softmax(-1).mean(0)  # (N, K) -> (K,): mean over clips
            result = {
                "video": video.name,
                "duration": round(info.duration, 3),
                "predictions": predictor.top_k(scores, options["top_k"]),
            }
            if options["timeline"] and not ticket.cancelled.is_set():
                timeline = predict_timeline(
                    BatchedPredictor(predictor, self.batcher),
                    video.path,
                    options["window"],
                    options["stride"],
                    batch_size=self.settings.batch_size,
                )
                result["timeline"] = {**timeline, "video": video.name}
            return result
        except DecodeError as err:
            raise HTTPException(422, video.describe(str(err))) from err
        except CancelledError:
            return None


async def run_with_timeout(pipeline: Pipeline, ticket: Ticket, receive, options: dict) -> dict:
    """Receive the video and score it within ``request_timeout_s``; 504 past it."""
    limit = pipeline.settings.request_timeout_s
    try:
        with anyio.fail_after(limit):
            ticket.video = await receive()
            return await pipeline.score(ticket, options)
    except TimeoutError as err:
        raise HTTPException(
            504, f"no answer within {limit:g} s (--request_timeout_s): the server is busy or the video long"
        ) from err
