"""A decoded-frame cache: each video decoded once at reduced size, then memory-mapped for every later epoch.

Frames are stored as raw uint8 ``.npy`` arrays (T, H, W, 3) at the size the dataset decodes at
(``transforms.decode_size``: the largest training short side, or the model's size for evaluation), so a clip
costs a memory copy instead of seeking and decoding. An entry is rebuilt when its source file changes (size
or modification time). Disk use is bounded by ``max_bytes``: past it, videos are decoded as
usual and the cache reports how many did not fit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vidcls.data.decode import FrameSize, VideoInfo, probe, read_frames
from vidcls.errors import DecodeError

logger = logging.getLogger(__name__)

# Frames decoded per pass when filling an entry: bounds memory on long videos.
CHUNK_FRAMES = 256
# Entries each process keeps mapped: a mapping kept open is read without page faults and without reading its
# stamp file again, which together cost more than copying a clip out. Bounded, as each holds a file descriptor.
MAX_OPEN_ENTRIES = 256


def _size_key(size: FrameSize) -> str:
    """The size as text: 320 (a short side) or 224x224 (height x width), whether given as a tuple or a list."""
    return "x".join(map(str, size)) if isinstance(size, tuple | list) else str(size)


class FrameCache:
    """Decoded frames on disk, keyed by source path and ``FrameSize`` (an exact short side or height x width).

    Args:
        root: the cache folder (created when needed).
        max_bytes: disk budget; None for no limit.
    """

    def __init__(self, root: str | Path, max_bytes: int | None = None):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._used: int | None = None  # bytes on disk, scanned once per process then tracked
        self.over_budget = 0
        self._open: OrderedDict[tuple[str, str], tuple[dict, np.ndarray]] = OrderedDict()  # least recent first

    def __getstate__(self) -> dict:
        # DataLoader workers get the cache without this process's mappings (pickling one would copy its frames).
        return {**self.__dict__, "_open": OrderedDict()}

    def _entry(self, path: Path, size: FrameSize) -> tuple[Path, Path]:
        key = hashlib.blake2b(f"{path.resolve()}|{_size_key(size)}".encode(), digest_size=16).hexdigest()
        return self.root / f"{key}.npy", self.root / f"{key}.json"

    @staticmethod
    def _source_stamp(path: Path, size: FrameSize) -> dict:
        stat = path.stat()
        return {
            "source": str(path.resolve()),
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "frame_size": _size_key(size),
        }

    def load(self, path: str | Path, size: FrameSize) -> np.ndarray | None:
        """The cached frames of ``path``, memory-mapped, or None when absent or stale."""
        path = Path(path)
        key = (str(path), _size_key(size))
        data_file, meta_file = self._entry(path, size)
        try:
            stamp = self._source_stamp(path, size)
            held = self._open.get(key)
            if held is not None and held[0] == stamp:
                self._open.move_to_end(key)
                return held[1]
            if json.loads(meta_file.read_text()) != stamp:
                return None
            frames = np.load(data_file, mmap_mode="r")
        except (OSError, ValueError):
            return None
        self._open[key] = (stamp, frames)
        if len(self._open) > MAX_OPEN_ENTRIES:
            self._open.popitem(last=False)
        return frames

    def store(self, path: str | Path, info: VideoInfo, size: FrameSize) -> np.ndarray | None:
        """Decode the whole video at ``size`` into the cache; None when it does not fit the budget.

        Raises:
            DecodeError: the video cannot be decoded.
        """
        path = Path(path)
        first = read_frames(path, [0], info, size=size)
        shape = (info.num_frames, *first.shape[1:])
        nbytes = int(np.prod(shape))
        if self.max_bytes is not None and self.used_bytes() + nbytes > self.max_bytes:
            self.over_budget += 1
            if self.over_budget == 1:
                logger.warning(
                    "frame cache %s is full (%.1f GB); decoding the rest as usual", self.root, self.max_bytes / 1e9
                )
            return None
        self.root.mkdir(parents=True, exist_ok=True)
        data_file, meta_file = self._entry(path, size)
        # Written under a unique name, then renamed: readers and other workers never see half an entry.
        tmp = data_file.with_name(f".{uuid.uuid4().hex}.npy")
        try:
            frames = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
            for start in range(0, info.num_frames, CHUNK_FRAMES):
                stop = min(start + CHUNK_FRAMES, info.num_frames)
                frames[start:stop] = read_frames(path, np.arange(start, stop), info, size=size)
            frames.flush()
            del frames
            os.replace(tmp, data_file)
        finally:
            tmp.unlink(missing_ok=True)
        meta_file.write_text(json.dumps(self._source_stamp(path, size)))
        self._used = self.used_bytes() + nbytes
        return self.load(path, size)

    def get(self, path: str | Path, info: VideoInfo, size: FrameSize) -> np.ndarray | None:
        """Cached frames, filling the entry on first use; None when over budget."""
        frames = self.load(path, size)
        return frames if frames is not None else self.store(path, info, size)

    def used_bytes(self) -> int:
        if self._used is None:
            self._used = sum(p.stat().st_size for p in self.root.glob("*.npy")) if self.root.is_dir() else 0
        return self._used

    def summary(self) -> str:
        text = f"frame cache {self.root}: {self.used_bytes() / 1e9:.2f} GB"
        if self.max_bytes is not None:
            text += f" of {self.max_bytes / 1e9:.1f} GB"
        if self.over_budget:
            text += f", {self.over_budget} videos did not fit"
        return text


def _fill_one(job) -> tuple[str, str]:
    """-> (outcome, the video's path, or the error naming it)."""
    root, max_bytes, path, size = job
    cache = FrameCache(root, max_bytes)
    if cache.load(path, size) is not None:
        return "present", str(path)
    try:
        stored = cache.store(path, probe(path), size)
    except DecodeError as err:
        return "error", str(err)
    return ("added" if stored is not None else "over budget"), str(path)


def fill_cache(
    cache: FrameCache, jobs: list[tuple[Path, FrameSize]], num_workers: int = 2, run_jobs: Callable | None = None
) -> dict[str, list[str]]:
    """Decode ``(video, size)`` jobs into the cache in worker processes; return paths by outcome.

    Outcomes: "added", "present" (already cached and current), "over budget", and "error" (with the reason).
    Each process checks the budget against what it has seen, so parallel fills may overshoot it slightly.
    ``run_jobs`` runs ``fn(*job)`` for each of a list of jobs elsewhere and yields the results in order
    (``engine.ray_engine.ray_map`` for ``--engine ray``: the cache must be on storage every node sees).
    """
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    outcomes: dict[str, list[str]] = {}
    tasks = [(cache.root, cache.max_bytes, path, size) for path, size in jobs]
    if run_jobs is not None:
        results = list(run_jobs(_fill_one, [(task,) for task in tasks]))
    elif num_workers > 0:
        with ProcessPoolExecutor(num_workers) as pool:
            results = list(
                tqdm(pool.map(_fill_one, tasks, chunksize=4), total=len(tasks), desc="caching", unit="video")
            )
    else:
        results = [_fill_one(task) for task in tqdm(tasks, desc="caching", unit="video")]
    for outcome, detail in results:
        outcomes.setdefault(outcome, []).append(detail)
    cache._used = None  # other processes wrote entries: rescan on next use
    return outcomes
