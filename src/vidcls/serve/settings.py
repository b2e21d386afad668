"""The limits of ``vidcls serve``: one frozen dataclass read by the CLI flags, the app and the tests."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from vidcls.errors import ConfigError


def _limit(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class ServeSettings:
    """What one server accepts. Every field is also a ``vidcls serve --<field>`` flag."""

    max_upload_mb: float = _limit(100.0, "Largest request body in MiB (multipart framing included); 413 above.")
    max_video_seconds: float = _limit(600.0, "Longest video accepted; 422 above, before any frame is decoded.")
    request_timeout_s: float = _limit(60.0, "Seconds from upload to answer, queueing included; 504 past it.")
    max_concurrent: int = _limit(2, "Requests decoding or in the model at once (worker threads).")
    max_queue: int = _limit(8, "Requests waiting beyond those; the next one gets 503 at once.")
    batch_size: int = _limit(16, "Most clips per model call, gathered across concurrent requests.")
    batch_wait_ms: float = _limit(5.0, "How long a model call waits for other requests' clips to join it.")
    allow_paths: str | None = _limit(None, "Folder whose files POST /predict may name by path; None: paths refused.")
    tmp_dir: str | None = _limit(None, "Folder for uploads while they are scored; None: the system's temp folder.")

    def __post_init__(self):
        for name in ("max_upload_mb", "max_video_seconds", "request_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"--{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("max_concurrent", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"--{name} must be a positive integer, got {value!r}")
        if not isinstance(self.max_queue, int) or self.max_queue < 0:
            raise ConfigError(f"--max_queue must be an integer >= 0, got {self.max_queue!r}")
        if self.batch_wait_ms < 0:
            raise ConfigError(f"--batch_wait_ms must be >= 0, got {self.batch_wait_ms!r}")
        for name in ("allow_paths", "tmp_dir"):
            folder = getattr(self, name)
            if folder is not None and not Path(folder).is_dir():
                raise ConfigError(f"--{name} {folder}: no such folder")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    @property
    def capacity(self) -> int:
        """Requests accepted at once: those working plus those waiting."""
        return self.max_concurrent + self.max_queue

    @classmethod
    def flags(cls) -> list[tuple[str, type, object, str]]:
        """(name, type, default, help) of every field, for argparse."""
        return [(f.name, type(f.default) if f.default is not None else str, f.default, f.metadata["help"])
                for f in fields(cls)]  # fmt: skip
