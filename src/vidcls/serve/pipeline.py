"""From a request to its answer: the upload, admission, decoding threads, the batcher, timeouts and clean-up.

A request is received first: up to ``max_uploads`` bodies are streamed to disk at once, each under its own
deadline and minimum rate (``uploads.body_chunks``), and none holds a place for the model meanwhile, so slow
clients cost only their own connections. Then at most ``max_concurrent + max_queue`` received requests are
accepted (waiting or working); the next one gets 503 straight away, as does a request arriving while all are
taken, so there is never an unbounded backlog. ``max_concurrent`` of them hold a working slot: their video is
decoded in a worker thread and their clips go to the batcher's inference thread, so the event loop only ever
waits. A request that times out gets its 504 at once and its worker thread stops at its next step (a decoded
frame, a model call); its slot, place and upload are released when that thread is done: threads cannot be
killed, and a timed-out request must not make room for more work than ``max_concurrent`` threads.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from contextlib import contextmanager

import anyio
import numpy as np
from fastapi import HTTPException

from vidcls.data.clips import mean_scores
from vidcls.data.decode import probe
from vidcls.engine.timeline import check_windows, predict_timeline, timeline_steps
from vidcls.errors import ConfigError, DecodeError
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
        self.uploading = 0  # bodies being received, before admission
        self.admitted = 0  # requests received, accepted and not yet released
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
        return {
            "uploading": self.uploading,
            "working": self.working,
            "waiting": self.admitted - self.working,
            "model_calls": self.batcher.calls,
        }

    async def answer(self, receive, options: dict) -> dict:
        """Receive the video (``await receive()``), take a place, and score it within ``request_timeout_s``."""
        self._check_room()  # every place taken already: 503 now, not after the client sent its whole video
        with self._uploading():
            video = await receive()
        try:
            ticket = self.admit()
        except HTTPException:
            video.remove()
            raise
        ticket.video = video
        limit = self.settings.request_timeout_s
        try:
            with anyio.fail_after(limit):
                return await self.score(ticket, options)
        except TimeoutError as err:
            raise HTTPException(
                504, f"no answer within {limit:g} s (--request_timeout_s): the server is busy or the video long"
            ) from err
        finally:
            if not ticket.handed_over:
                self.release(ticket)

    @contextmanager
    def _uploading(self):
        if self.uploading >= self.settings.max_uploads:
            raise HTTPException(
                503,
                f"busy: {self.uploading} uploads in progress (--max_uploads {self.settings.max_uploads}); "
                "retry in a moment",
                headers={"Retry-After": "1"},
            )
        self.uploading += 1
        try:
            yield
        finally:
            self.uploading -= 1

    def _check_room(self) -> None:
        if self.admitted >= self.settings.capacity:
            raise HTTPException(
                503,
                f"busy: {self.working} requests working and {self.admitted - self.working} waiting "
                f"(--max_concurrent {self.settings.max_concurrent}, --max_queue {self.settings.max_queue}); "
                "retry in a moment",
                headers={"Retry-After": "1"},
            )

    def admit(self) -> Ticket:
        """A place for one received request, or 503 when every place is taken."""
        self._check_room()
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

    def _model(self, ticket: Ticket, clips):
        """Logits of the request's clips from the batcher; CancelledError if the request gives up first."""
        ticket.model_future = self.batcher.submit(clips)
        if ticket.cancelled.is_set():  # cancel() may have run before model_future was set
            ticket.model_future.cancel()
        return ticket.model_future.result()

    def _work(self, ticket: Ticket, options: dict) -> dict | None:
        """Runs in a decoding thread: probe, decode, wait for the model, rank; the optional timeline.

        Returns None once the request has timed out: nobody waits for the answer any more.
        """
        video, predictor, settings = ticket.video, self.predictor, self.settings
        stop = ticket.cancelled.is_set
        if stop():
            return None
        try:
            info = probe(video.path)
        except DecodeError as err:
            raise HTTPException(415, video.describe(str(err))) from err
        if info.duration > settings.max_video_seconds:
            raise HTTPException(
                422,
                f"{video.name}: lasts {info.duration:.1f} s, over the {settings.max_video_seconds:g} s limit "
                "(--max_video_seconds)",
            )
        steps = (options["window"], options["stride"])
        if options["timeline"]:  # refused before decoding: a stride shorter than a frame, or too many windows
            try:
                check_windows(info, *timeline_steps(info, predictor.spec, *steps), settings.max_windows)
            except ConfigError as err:
                raise HTTPException(422, f"{video.name}: {err}") from err
        started = time.perf_counter()
        try:
            with self._counted_decoding():
                clips = predictor.clips_from_file(video.path)
            if stop():
                return None
            scores = mean_scores(self._model(ticket, clips))  # (N, K) logits -> (K,) scores
            result = {
                "video": video.name,
                "duration": round(info.duration, 3),
                "predictions": predictor.top_k(scores, options["top_k"]),
            }
            if options.get("frames"):
                result["frames"] = clip_frames_as_jpeg(clips[0])
            if options["timeline"]:
                timeline = predict_timeline(
                    BatchedPredictor(predictor, lambda clips: self._model(ticket, clips)),
                    video.path,
                    *steps,
                    batch_size=settings.batch_size,
                    max_windows=settings.max_windows,
                    should_stop=stop,
                )
                result["timeline"] = {**timeline, "video": video.name}
            result["seconds"] = round(time.perf_counter() - started, 3)  # decoding and the model, not the upload
            return result
        except DecodeError as err:
            raise HTTPException(422, video.describe(str(err))) from err
        except CancelledError:  # the request timed out: the model future was dropped, or the timeline stopped
            return None


def clip_frames_as_jpeg(clip) -> list[str]:
    """uint8 (T, C, H, W) frames, as the model sees them before normalising, as JPEG data URLs for the page."""
    import base64
    import io

    from PIL import Image

    urls = []
    for frame in np.asarray(clip).transpose(0, 2, 3, 1):  # (T, C, H, W) -> (T, H, W, C)
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=90, subsampling=0)  # no colour blur
        urls.append("data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode())
    return urls
