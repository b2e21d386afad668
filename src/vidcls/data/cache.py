"""A frame cache filled while clips are read: later epochs read stored frames instead of seeking and decoding.

Two kinds of entry, each one file written under a unique name and renamed into place, so readers and other
workers (DataLoader processes, torchrun ranks) never see half an entry:

- training (``read_segment``): every frame a random clip of the video can need (its segment), at the size the
  dataset decodes at. As JPEG by default (``codec="jpeg"``, libjpeg-turbo): 3-9x the source's bytes, where raw
  frames take 70-220x; a warm clip costs 16 JPEG decodes instead of a seek and ~70 frame decodes, which pays
  most for H.264 and large frames, and little for cheap MPEG-4 at 320x240 (see BENCHMARKS.md). ``codec="raw"``
  stores the frames as they are: a warm clip is a copy. Filled on a video's first miss by one sequential pass
  over its segment, as the clip itself is read: there is no separate pass (``vidcls cache`` may still prefill).
- evaluation (``read_clip``): exactly the frames of one evaluation clip, raw and lossless, so a warm read gives
  the very uint8 frames the uncached read gives. Filled by the read that missed: its only extra cost is the write.

An entry is rebuilt when its source changes (size or modification time). The size is bounded: at most
``max_bytes``, and at most ``max_ratio`` times the bytes of the source videos the cache holds entries of. Past
the bound, videos are decoded as usual and the cache says so once.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vidcls.data.cache_files import EntryWriter, decode_jpeg, encode_jpeg, read_header
from vidcls.data.decode import FrameSize, VideoInfo, probe, read_frames, stream_frames
from vidcls.errors import ConfigError, DecodeError

logger = logging.getLogger(__name__)

# Default bound: the cache holds at most this many times the bytes of the source videos it holds entries of.
MAX_RATIO = 10.0
# Entries each process keeps mapped: a mapping kept open is read without opening the file and parsing its header
# again. Bounded, as each holds a file descriptor.
MAX_OPEN_ENTRIES = 256
SUFFIX = ".frames"
CODECS = ("jpeg", "raw")


def _size_key(size: FrameSize) -> str:
    """The size as text: 320 (a short side) or 224x224 (height x width), whether given as a tuple or a list."""
    return "x".join(map(str, size)) if isinstance(size, tuple | list) else str(size)


def _source_stamp(path: Path) -> dict:
    stat = path.stat()
    return {"source": str(path.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


class FrameCache:
    """Decoded frames on disk, keyed by source path, ``FrameSize`` and (evaluation) clip.

    Args:
        root: the cache folder (created when needed).
        max_bytes: absolute disk budget; None for none.
        max_ratio: at most this many times the bytes of the source videos held; None for no such bound.
        codec: how training segments are stored: "jpeg" (3-9x the source), or "raw" (70-220x the source, read by
            a copy: warm epochs faster, at many times the disk; raise ``max_ratio`` past 100 with it).
    """

    def __init__(
        self, root: str | Path, max_bytes: int | None = None, max_ratio: float | None = MAX_RATIO, codec: str = "jpeg"
    ):
        if codec not in CODECS:
            raise ConfigError(f"--cache_codec {codec!r}: choose one of {', '.join(CODECS)}")
        if max_ratio is not None and not max_ratio > 0:
            raise ConfigError(
                f"--cache_max_ratio must be above 0 (10 keeps the cache within 10x the videos), got {max_ratio}"
            )
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.max_ratio = max_ratio
        self.codec = codec
        self._used: int | None = None  # bytes on disk, scanned once per process then tracked
        self._sources: dict[str, int] = {}  # bytes of each source video held
        self._rejected: set[str] = set()  # entries found not to fit, in this process
        self.over_budget = 0
        self._open: OrderedDict[str, tuple[dict, np.ndarray]] = OrderedDict()  # least recent first

    def __getstate__(self) -> dict:
        # DataLoader workers get the cache without this process's mappings (pickling one would copy its frames).
        return {**self.__dict__, "_open": OrderedDict()}

    def _file(self, path: Path, *key) -> Path:
        text = "|".join([str(path.resolve()), *map(str, key)])
        return self.root / (hashlib.blake2b(text.encode(), digest_size=16).hexdigest() + SUFFIX)

    def _load(self, file: Path, stamp: dict) -> tuple[dict, np.ndarray] | None:
        """(header, payload bytes mapped) of a current entry, or None when absent or stale."""
        held = self._open.get(str(file))
        if held is not None and held[0]["stamp"] == stamp:
            self._open.move_to_end(str(file))
            return held
        try:
            header = read_header(file)
            if header["stamp"] != stamp:
                return None
            payload = np.memmap(file, dtype=np.uint8, mode="r", shape=(header["payload_bytes"],))
        except (OSError, ValueError, KeyError, struct.error):
            return None
        self._open[str(file)] = (header, payload)
        if len(self._open) > MAX_OPEN_ENTRIES:
            self._open.popitem(last=False)
        return header, payload

    # -- training: a whole segment, JPEG or raw --

    def read_segment(
        self, path: str | Path, info: VideoInfo, indices, size: FrameSize, first: int = 0, count: int | None = None
    ) -> np.ndarray | None:
        """Frames ``indices`` (T, H, W, 3) of a video whose clips fall in frames ``first``..``first + count - 1``
        (all of it by default), decoded at ``size``; the segment is stored on its first miss. None when it does
        not fit the budget, or does not decode to its end (a file cut short): the caller decodes the clip as usual.
        """
        path = Path(path)
        count = info.num_frames - first if count is None else count
        file, stamp, entry = self._segment(path, size, first, count)
        if entry is None and str(file) not in self._rejected:
            try:
                if self._fill_segment(file, stamp, path, info, size, first, count):
                    entry = self._load(file, stamp)
            except DecodeError as err:
                # Clips before the break may still decode; this process does not try to cache the video again.
                logger.warning("not caching %s", err)
                self._rejected.add(str(file))
        if entry is None:
            return None
        header, payload = entry
        positions = np.clip(np.asarray(indices, dtype=np.int64) - first, 0, count - 1)
        if self.codec == "raw":
            return payload.reshape(count, *header["frame_shape"])[positions]  # a copy, as the mapping is read-only
        offsets = header["offsets"]
        decoded = {p: decode_jpeg(payload[offsets[p] : offsets[p + 1]]) for p in dict.fromkeys(positions.tolist())}
        return np.stack([decoded[p] for p in positions.tolist()])

    def _segment(self, path: Path, size: FrameSize, first: int, count: int) -> tuple[Path, dict, tuple | None]:
        """The entry file of a segment, its source's stamp, and the entry when it is there and current."""
        file = self._file(path, _size_key(size), "segment", self.codec, first)
        stamp = _source_stamp(path)
        entry = self._load(file, stamp)
        if entry is not None and entry[0]["count"] != count:
            entry = None  # another segment length from this frame on: replaced
        return file, stamp, entry

    def has_segment(self, path: str | Path, info: VideoInfo, size: FrameSize) -> bool:
        """Whether the whole video is cached at ``size``, current."""
        return self._segment(Path(path), size, 0, info.num_frames)[2] is not None

    def _fill_segment(
        self, file: Path, stamp: dict, path: Path, info: VideoInfo, size: FrameSize, first: int, count: int
    ) -> bool:
        """Decode the segment in one sequential pass, storing each frame as it comes; False when it does not fit."""
        writer = EntryWriter(file)
        try:
            offsets, shape = [0], None
            for _, rgb in stream_frames(path, np.arange(first, first + count), info, size=size):
                writer.write(encode_jpeg(rgb) if self.codec == "jpeg" else np.ascontiguousarray(rgb))
                offsets.append(writer.size)
                # Judged from the first frame, so a video that cannot fit costs one frame, not the whole pass.
                if shape is None and not self._fits(stamp, writer.size * count, file):
                    return False
                shape = list(rgb.shape)
            if not self._fits(stamp, writer.size, file):
                return False
            header = {"stamp": stamp, "frame_size": _size_key(size), "count": count, "frame_shape": shape}
            header |= {"payload_bytes": writer.size, "offsets": offsets if self.codec == "jpeg" else None}
            self._add(stamp, writer.commit(header))
            return True
        finally:
            writer.discard()  # nothing left once committed

    # -- evaluation: exact clips, raw --

    def read_clip(self, path: str | Path, info: VideoInfo, indices, size: FrameSize, read=read_frames) -> np.ndarray:
        """Frames ``indices`` (T, H, W, 3) at ``size``: from the cache, else decoded by ``read`` and stored when
        they fit. Always the same uint8 values as ``read`` gives (stored losslessly).

        Raises:
            DecodeError: the video cannot be decoded.
        """
        path = Path(path)
        indices = np.asarray(indices, dtype=np.int64)
        file = self._file(path, _size_key(size), "clip", indices.tolist())
        stamp = _source_stamp(path)
        entry = self._load(file, stamp)
        if entry is not None:
            header, payload = entry
            return np.array(payload.reshape(header["shape"]))  # a copy: the mapping is read-only
        frames = read(path, indices, info, size=size)
        if str(file) not in self._rejected and self._fits(stamp, frames.nbytes, file):
            writer = EntryWriter(file)
            try:
                writer.write(np.ascontiguousarray(frames))
                header = {"stamp": stamp, "frame_size": _size_key(size), "shape": list(frames.shape)}
                self._add(stamp, writer.commit({**header, "payload_bytes": frames.nbytes}))
            finally:
                writer.discard()
        return frames

    # -- the budget --

    def _scan(self) -> None:
        self._used, self._sources = 0, {}
        for file in self.root.glob(f"*{SUFFIX}") if self.root.is_dir() else []:
            try:
                stamp = read_header(file)["stamp"]
                self._used += file.stat().st_size
            except (OSError, ValueError, KeyError, struct.error):
                continue  # removed or replaced meanwhile: counted by the process that wrote it
            self._sources[stamp["source"]] = stamp["bytes"]

    def used_bytes(self) -> int:
        if self._used is None:
            self._scan()
        return self._used

    def limit(self, stamp: dict | None = None) -> float:
        """Bytes the cache may hold, counting the source of ``stamp`` as held."""
        limit = float("inf") if self.max_bytes is None else float(self.max_bytes)
        if self.max_ratio is not None:
            self.used_bytes()
            sources = {**self._sources, **({stamp["source"]: stamp["bytes"]} if stamp else {})}
            limit = min(limit, self.max_ratio * sum(sources.values()))
        return limit

    def _fits(self, stamp: dict, nbytes: int, file: Path) -> bool:
        if self.used_bytes() + nbytes <= self.limit(stamp):
            return True
        self._rejected.add(str(file))
        self.over_budget += 1
        if self.over_budget == 1:
            logger.warning("frame cache %s is full (%s); decoding the rest as usual", self.root, self._bound_text())
        return False

    def _add(self, stamp: dict, nbytes: int) -> None:
        self.used_bytes()
        self._used += nbytes
        self._sources[stamp["source"]] = stamp["bytes"]

    def _bound_text(self) -> str:
        bounds = [] if self.max_bytes is None else [f"{self.max_bytes / 1e9:.1f} GB"]
        if self.max_ratio is not None:
            bounds.append(f"{self.max_ratio:g}x the source videos")
        return " and ".join(bounds) or "no bound"

    def summary(self) -> str:
        used = self.used_bytes()
        source = sum(self._sources.values())
        text = f"frame cache {self.root}: {used / 1e9:.2f} GB"
        if source:
            text += f", {used / source:.1f}x its {len(self._sources)} source videos"
        text += f" (bound: {self._bound_text()})"
        if self.over_budget:
            text += f", {self.over_budget} entries did not fit"
        return text


def _fill_one(job) -> tuple[str, str]:
    """-> (outcome, the video's path, or the error naming it)."""
    root, max_bytes, max_ratio, codec, path, size = job
    cache = FrameCache(root, max_bytes, max_ratio, codec)
    try:
        info = probe(path)
        if cache.has_segment(path, info, size):
            return "present", str(path)
        stored = cache.read_segment(path, info, [0], size)
    except DecodeError as err:
        return "error", str(err)
    return ("added" if stored is not None else "over budget"), str(path)


def fill_cache(
    cache: FrameCache, jobs: list[tuple[Path, FrameSize]], num_workers: int = 2, run_jobs: Callable | None = None
) -> dict[str, list[str]]:
    """Store the training entries of ``(video, size)`` jobs ahead of training, in worker processes; return paths by
    outcome. Optional: training fills the same entries as it reads.

    Outcomes: "added", "present" (already cached and current), "over budget", and "error" (with the reason).
    Each process checks the budget against what it has seen, so parallel fills may overshoot it slightly.
    ``run_jobs`` runs ``fn(*job)`` for each of a list of jobs elsewhere and yields the results in order
    (``engine.ray_engine.ray_map`` for ``--engine ray``: the cache must be on storage every node sees).
    """
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    outcomes: dict[str, list[str]] = {}
    tasks = [(cache.root, cache.max_bytes, cache.max_ratio, cache.codec, path, size) for path, size in jobs]
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
