"""The scores of many videos on a Ray cluster (``--engine ray``): the Ray twin of ``engine.scoring``.

A streaming Ray Data pipeline (https://docs.ray.io/en/latest/data/batch_inference.html)::

    records -> decode tasks (1 CPU each, vidcls's decoder, uint8 views) -> predictor actors (one model each) -> driver

Each decoded view is a row of its own, ``(T, C, H, W)`` uint8 with its video's index, the view's number and the
video's view count, so videos with different numbers of clips need no ragged tensors and the actors batch views
across videos exactly as one process does. The driver puts each video's views back together and yields it once
all are scored, in completion order (not input order). Ray's backpressure bounds memory; a decode task whose process
dies runs again and a dead actor is restarted (Ray Data retries both without limit), and the driver drops any view
it has already seen, so every video comes out exactly once. Ray is imported only here, and only when used.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

import numpy as np

from vidcls.data.clips import ClipReader
from vidcls.data.discovery import VideoRecord
from vidcls.engine.scoring import ScoredVideo, read_views, segment_of
from vidcls.errors import ConfigError, DecodeError, MissingDependency

logger = logging.getLogger(__name__)

RAY_MISSING = "--engine ray needs Ray: pip install 'vidcls[ray]'"
# Videos per decode task: enough to amortise a task's start (milliseconds, against 10-100 ms to decode a video),
# few enough that a task retried after its worker died redoes little and a few videos still spread over every CPU.
VIDEOS_PER_TASK = 8
# A decode worker is replaced after this many tasks (about 800 videos): what FFmpeg and PyAV keep from each file
# opened is then freed whatever it is, at the price of one process start (seconds) per 800 videos. The limit also
# sets decoding apart from the actors, which keeps Ray from fusing both into the actors (it fuses map steps that ask
# for the same resources and options, ray-project/ray#54433): decoding scales with the CPUs, not with --concurrency.
TASKS_PER_DECODER = 100
ACTOR_CPUS = 1  # each predictor actor's CPU: its model's threads on a CPU, feeding its GPU otherwise
# What travels with each view from decoding to the driver, besides its pixels (in) and logits (out).
ROW_COLUMNS = ("index", "video", "view", "count", "error", "problem")


@dataclass(frozen=True)
class RayEngine:
    """``--engine ray``: where Ray runs, how many predictor actors it starts, and the model each actor loads itself
    (a ``Predictor`` does not travel; ``model_dir``, ``backend``, ``int8`` and ``device`` are its
    ``from_pretrained`` arguments). ``address`` None starts Ray on this machine, or joins the one running here."""

    model_dir: str
    backend: str = "torch"
    int8: bool = False
    device: str = "auto"
    address: str | None = None
    concurrency: int = 1  # predictor actors, one model each
    num_gpus: float = 0  # GPUs per actor

    def __post_init__(self):
        if self.concurrency < 1 or not self.num_gpus >= 0:
            raise ConfigError(
                f"--concurrency must be >= 1 and --num_gpus >= 0, got {self.concurrency}, {self.num_gpus}"
            )
        if self.device.startswith("cuda") and not self.num_gpus:
            raise ConfigError(
                f"--device {self.device} with --engine ray: actors get only the GPUs they ask for; add --num_gpus 1"
            )

    def score(self, predictor, videos: list[str | VideoRecord], **options) -> Iterator[ScoredVideo]:
        """``score_videos_ray`` with this engine (``engine.scoring.score`` calls it, so needs no import of Ray's)."""
        return score_videos_ray(predictor, videos, self, **options)


def import_ray():
    """The ``ray`` module with Ray Data, or MissingDependency saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (the ray[data] extra: pandas, pyarrow)
    except ImportError as err:
        raise MissingDependency(f"{RAY_MISSING} ({err})") from err
    return ray


def connect(address: str | None = None):
    """Join the Ray cluster at ``address`` ("auto", "host:6379", "ray://host:10001"), or start one here when None;
    a Ray already initialised in this process is used as it is. Returns the ``ray`` module."""
    ray = import_ray()
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # not a line per run about its plan and its end
    if ray.is_initialized():
        return ray
    started_here = address is None
    options = {"include_dashboard": False} if started_here else {}  # a cluster of one machine needs no dashboard
    try:
        ray.init(address=address, logging_level=logging.WARNING, **options)
    except (ConnectionError, ValueError, RuntimeError) as err:
        reason = " ".join(str(err).split())
        raise ConfigError(
            f"--ray_address {address}: cannot join a Ray cluster there ({reason}); start one with `ray start --head` "
            "or leave out --ray_address to start Ray on this machine"
        ) from err
    return ray


def decode_block(batch: dict[str, np.ndarray], reader: ClipReader, partial: bool) -> Iterator[dict[str, np.ndarray]]:
    """A decode task: the videos of a block of records -> a batch of view rows per video, read as
    ``engine.scoring`` reads them.

    A video that cannot be read becomes one row with ``count`` 0 and its error (and blank pixels, as a column holds
    one shape), which the actors pass through without calling the model.
    """
    # A view of black frames: its shape is every view's, whatever the video's size.
    blank = reader.to_views(np.zeros((1, reader.spec.num_frames, 48, 64, 3), dtype=np.uint8))[:1].numpy()
    rows = zip(*(batch[name].tolist() for name in ("index", "video", "start", "end")), strict=True)
    for index, video, start, end in rows:
        segment = (None if math.isnan(start) else start, None if math.isnan(end) else end)
        try:
            views, problem = read_views(reader, video, *segment, partial=partial)
            views, error = views.numpy(), ""
        except DecodeError as err:
            logger.warning("cannot score %s", err)
            views, error, problem = blank, str(err), None
        n = len(views)
        yield {
            "index": np.full(n, index),
            "video": np.array([video] * n, dtype=object),
            "view": np.arange(n),
            "count": np.full(n, 0 if error else n),
            "error": np.array([error] * n, dtype=object),
            "problem": np.array([problem or ""] * n, dtype=object),
            "pixels": np.ascontiguousarray(views),  # (n, T, C, H, W) uint8
        }


class ViewScorer:
    """A predictor actor: one model, loaded once; logits of batches of views, rows passed through in order."""

    def __init__(self, engine: RayEngine, num_labels: int):
        import torch

        from vidcls.engine.predict import Predictor

        torch.set_num_threads(ACTOR_CPUS)  # the CPUs Ray reserved for it
        self.predictor = Predictor.from_pretrained(
            engine.model_dir, engine.device, backend=engine.backend, int8=engine.int8
        )
        self.num_labels = num_labels

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        scored = batch["count"] > 0
        logits = np.zeros((len(scored), self.num_labels), dtype=np.float32)
        if scored.any():
            with warnings.catch_warnings():  # Ray hands out read-only views of its object store; nothing writes
                warnings.simplefilter("ignore", UserWarning)
                pixels = torch.from_numpy(batch["pixels"] if scored.all() else batch["pixels"][scored])
            logits[scored] = self.predictor.logits(pixels).numpy()  # (B, T, C, H, W) uint8 -> (B, K)
        out = {name: batch[name] for name in ROW_COLUMNS}
        return {**out, "logits": logits}


def decode_tasks(num_videos: int, cpus: float) -> int:
    """Decode tasks for ``num_videos``: at most ``VIDEOS_PER_TASK`` videos each, and two per CPU while there are
    videos enough, so that a few videos still keep every CPU busy. 1000 videos on 16 CPUs: 125 tasks of 8."""
    return max(math.ceil(num_videos / VIDEOS_PER_TASK), min(num_videos, 2 * int(cpus)))


def _check_resources(ray, engine: RayEngine) -> None:
    """Refuse a pool that leaves no CPU to decode with, or asks for GPUs the cluster lacks: Ray would wait forever."""
    resources = ray.cluster_resources()
    cpus, gpus = resources.get("CPU", 0), resources.get("GPU", 0)
    if cpus < engine.concurrency * ACTOR_CPUS + 1:
        raise ConfigError(
            f"--concurrency {engine.concurrency}: the Ray cluster has {cpus:g} CPUs, and each predictor actor takes "
            f"{ACTOR_CPUS}, leaving none to decode videos; lower --concurrency or add CPUs"
        )
    if gpus < engine.concurrency * engine.num_gpus:
        raise ConfigError(
            f"--num_gpus {engine.num_gpus:g} x --concurrency {engine.concurrency}: the Ray cluster has {gpus:g} "
            "GPUs; lower either, or use --num_gpus 0 to run the models on CPUs"
        )


def _gather(batches, total: int) -> Iterator[ScoredVideo]:
    """Put each video's views back together; yield it when all are in. A view seen twice is dropped."""
    done = np.zeros(total, dtype=bool)
    partial: dict[int, dict[int, np.ndarray]] = {}  # video index -> view number -> logits
    for batch in batches:
        columns = [batch[name].tolist() for name in ROW_COLUMNS]
        for *row, logits in zip(*columns, batch["logits"], strict=True):
            index, video, view, count, error, problem = row
            if done[index]:
                continue  # a retried task's rows, already seen
            if count == 0:
                done[index] = True
                yield ScoredVideo(index, video, error=error)
                continue
            views = partial.setdefault(index, {})
            views[view] = logits
            if len(views) == count:
                done[index] = True
                del partial[index]
                yield ScoredVideo(index, video, np.stack([views[v] for v in range(count)]), problem=problem or None)


def score_videos_ray(
    predictor,
    videos: list[str | VideoRecord],
    engine: RayEngine,
    *,
    batch_size: int = 16,
    partial: bool = False,
    progress: str | None = None,
) -> Iterator[ScoredVideo]:
    """Score every video on Ray, as ``engine.scoring.score_videos`` does in one process; yield each as soon as all
    its views are scored (so in the order they finish, not input order).

    ``predictor`` (this process's copy, never called) gives the decode tasks its reader and the logits their
    width; the actors load ``engine``'s model themselves. ``batch_size`` counts views per model call; ``partial``
    scores a file cut short from the clips that decode; ``progress`` is the progress bar's label (None: no bar).
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ConfigError(f"--batch_size must be >= 1, got {batch_size}")
    if not videos:
        return
    ray = connect(engine.address)
    _check_resources(ray, engine)
    ray.data.DataContext.get_current().enable_progress_bars = False  # the driver shows one bar, over videos
    records = []
    for index, video in enumerate(videos):
        path, start, end = segment_of(video)
        records.append({"index": index, "video": path, "start": math.nan if start is None else start,
                        "end": math.nan if end is None else end})  # fmt: skip
    dataset = (
        ray.data.from_items(records, override_num_blocks=decode_tasks(len(records), ray.cluster_resources()["CPU"]))
        .map_batches(
            decode_block,
            batch_size=None,  # a whole block of records per task
            fn_kwargs={"reader": predictor.reader, "partial": partial},
            num_cpus=1,
            max_calls=TASKS_PER_DECODER,
        )
        .map_batches(
            ViewScorer,
            batch_size=batch_size,
            fn_constructor_kwargs={"engine": engine, "num_labels": len(predictor.id2label)},
            compute=ray.data.ActorPoolStrategy(size=engine.concurrency),
            num_cpus=ACTOR_CPUS,
            num_gpus=engine.num_gpus or None,
        )
    )
    batches = dataset.iter_batches(batch_size=None, batch_format="numpy")
    with tqdm(total=len(videos), unit="video", desc=progress, disable=progress is None) as bar:
        try:
            for scored in _gather(batches, len(videos)):
                bar.update()
                yield scored
        except ray.exceptions.RayActorError as err:
            if not err.actor_init_failed:
                raise
            reason = str(err).strip().splitlines()[-1]  # the exception __init__ raised, after Ray's traceback
            raise ConfigError(
                f"a predictor actor could not load --model_dir {engine.model_dir} ({reason}); with several machines, "
                "the model folder must be on storage every node sees"
            ) from err


def ray_map(fn, jobs: list[tuple], *, address: str | None = None, progress: str | None = None) -> Iterator:
    """``fn(*job)`` for every job as a Ray task of 1 CPU; the results in job order (``--engine ray`` of ``vidcls
    check`` and ``vidcls cache``, whose work per video is decoding).

    At most two tasks per CPU are out at a time, so memory stays bounded however many jobs there are; a task whose
    worker dies runs again (3 times, Ray's default). ``fn`` must be importable on every node (a module's function).
    """
    from tqdm.auto import tqdm

    ray = connect(address)
    remote = ray.remote(num_cpus=1, max_calls=TASKS_PER_DECODER)(fn)
    window = 2 * max(1, int(ray.cluster_resources().get("CPU", 1)))
    total, jobs = len(jobs), iter(jobs)
    pending = deque(remote.remote(*job) for job in islice(jobs, window))
    with tqdm(total=total, unit="video", desc=progress, disable=progress is None) as bar:
        while pending:
            result = ray.get(pending.popleft())
            pending.extend(remote.remote(*job) for job in islice(jobs, 1))
            bar.update()
            yield result
