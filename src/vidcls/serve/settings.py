"""The limits of ``vidcls serve``: one frozen dataclass read by the CLI flags, the app and the tests."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from vidcls.errors import ConfigError
from vidcls.settings import MAX_WINDOWS

UPLOAD_GRACE_S = 5.0  # a body is held to --min_upload_kbps only after this long: connections start slowly


def _limit(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class ServeSettings:
    """What one server accepts. Every field is also a ``vidcls serve --<field>`` flag."""

    _argument_group_name = "limits"

    max_upload_mb: float = _limit(100.0, "Largest request body in MiB (multipart framing included); 413 above.")
    upload_timeout_s: float = _limit(120.0, "Seconds to receive a whole request body; 408 past it.")
    min_upload_kbps: float = _limit(
        64.0, f"Slowest upload kept, in kbit/s on average after its first {UPLOAD_GRACE_S:g} s; 408 below. 0: any."
    )
    max_uploads: int = _limit(32, "Bodies being received at once, before they queue for the model; 503 above.")
    max_video_seconds: float = _limit(600.0, "Longest video accepted; 422 above, before any frame is decoded.")
    max_windows: int = _limit(MAX_WINDOWS, "Most timeline windows per video (its length / stride); 422 above.")
    request_timeout_s: float = _limit(60.0, "Seconds from a received upload to its answer, queue included; 504.")
    max_concurrent: int = _limit(2, "Requests decoding or in the model at once (worker threads).")
    max_queue: int = _limit(8, "Received requests waiting beyond those; the next one gets 503 at once.")
    batch_size: int = _limit(16, "Most clips per model call, gathered across concurrent requests.")
    batch_wait_ms: float = _limit(5.0, "How long a model call waits for other requests' clips to join it.")
    allow_paths: str | None = _limit(None, "Folder whose files POST /predict may name by path; None: paths refused.")
    tmp_dir: str | None = _limit(None, "Folder for uploads while they are scored; None: the system's temp folder.")

    def __post_init__(self):
        for name in ("max_upload_mb", "upload_timeout_s", "max_video_seconds", "request_timeout_s"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ConfigError(f"--{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("max_uploads", "max_windows", "max_concurrent", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"--{name} must be a positive integer, got {value!r}")
        if not isinstance(self.max_queue, int) or self.max_queue < 0:
            raise ConfigError(f"--max_queue must be an integer >= 0, got {self.max_queue!r}")
        for name in ("batch_wait_ms", "min_upload_kbps"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ConfigError(f"--{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("allow_paths", "tmp_dir"):
            folder = getattr(self, name)
            if folder is not None and not Path(folder).is_dir():
                raise ConfigError(f"--{name} {folder}: no such folder")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    @property
    def min_upload_bytes_per_s(self) -> float:
        return self.min_upload_kbps * 1000 / 8

    @property
    def capacity(self) -> int:
        """Requests accepted at once: those working plus those waiting."""
        return self.max_concurrent + self.max_queue
