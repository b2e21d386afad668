"""From a request body to a video file: a multipart upload streamed to a temporary file under the size limit,
or a server-side path confined to the allowed folder.

The body is parsed as it arrives (python-multipart's streaming parser), so an upload never sits in memory
whole, and a body larger than ``--max_upload_mb`` is refused from its Content-Length before a byte is read,
or as soon as the bytes read pass the limit when the client sends none (chunked). A body must arrive within
``--upload_timeout_s`` and, after its first ``UPLOAD_GRACE_S``, at ``--min_upload_kbps`` on average (408
otherwise), so a slow client holds only its own connection. A form holds at most ``MAX_PARTS`` parts and
``FIELD_LIMIT`` bytes outside the video, and must end with its closing boundary (400 otherwise).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePath, PureWindowsPath

import anyio.to_thread
from fastapi import HTTPException, Request
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect

from vidcls.serve.settings import UPLOAD_GRACE_S, ServeSettings

logger = logging.getLogger(__name__)

FILE_FIELD = "file"  # the form field that carries the video
PATH_FIELD = "path"  # the form field or JSON key naming a server-side file (--allow_paths)
FIELD_LIMIT = 64 * 1024  # the form fields besides the video, or a JSON body, hold a path: nothing larger is needed
MAX_PARTS = 8  # a form holds a video or a path, and a few fields a client may add: more is abuse, refused at once
FLUSH_BYTES = 1 << 20  # received file data is written in pieces of about this size, each in a worker thread
TEMP_PREFIX = "vidcls-upload-"


@dataclass
class Video:
    """A video file to score, and the name its client knows it by."""

    path: Path
    name: str  # messages show this instead of the server's path
    temporary: bool = False

    def remove(self) -> None:
        """Delete the file if it is an upload; safe to call more than once, from any thread."""
        if self.temporary:
            try:
                self.path.unlink(missing_ok=True)
            except OSError as err:  # still open elsewhere (Windows): the temp folder's cleanup must take it
                logger.warning("cannot remove upload %s: %s", self.path, err)

    def describe(self, message: str) -> str:
        """A decoder message with the server's path replaced by the client's name for the file."""
        return message.replace(str(self.path), self.name)


def too_large(settings: ServeSettings, declared: int | None = None) -> HTTPException:
    size = f" of {declared / 2**20:.1f} MiB" if declared is not None else ""
    return HTTPException(413, f"upload{size} is over the {settings.max_upload_mb:g} MiB limit (--max_upload_mb)")


async def body_chunks(request: Request, settings: ServeSettings) -> AsyncIterator[bytes]:
    """The request body as it arrives, under ``--max_upload_mb``, ``--upload_timeout_s`` and ``--min_upload_kbps``.

    Each wait for the next chunk ends at the earlier of the body's deadline and the moment the bytes received
    so far fall under the minimum rate, so a client that sends 1 byte/s, or nothing, is refused on time.
    """
    start = time.monotonic()
    received = 0
    rate = settings.min_upload_bytes_per_s
    chunks = request.stream()
    while True:
        deadline = start + settings.upload_timeout_s
        too_slow = start + UPLOAD_GRACE_S + received / rate if rate > 0 else math.inf
        with anyio.move_on_after(max(0.0, min(deadline, too_slow) - time.monotonic())) as wait:
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except ClientDisconnect as err:
                raise HTTPException(400, "the client disconnected before sending the whole body") from err
        if wait.cancelled_caught:
            seconds = time.monotonic() - start
            if too_slow < deadline:
                raise HTTPException(
                    408,
                    f"upload too slow: {received} bytes in {seconds:.1f} s, under the {settings.min_upload_kbps:g} "
                    "kbit/s minimum (--min_upload_kbps)",
                )
            raise HTTPException(408, f"upload not received within {settings.upload_timeout_s:g} s (--upload_timeout_s)")
        received += len(chunk)
        if received > settings.max_upload_bytes:  # no Content-Length (chunked), or a false one
            raise too_large(settings)
        yield chunk


async def receive_video(request: Request, settings: ServeSettings) -> Video:
    """The video a ``POST /predict`` sends: a multipart ``file`` upload, or a ``path`` (form field or JSON)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_upload_bytes:
        raise too_large(settings, int(declared))
    content_type = request.headers.get("content-type", "")
    media_type, params = parse_options_header(content_type)
    if media_type == b"multipart/form-data":
        return await _receive_form(request, params.get(b"boundary"), settings)
    if media_type == b"application/json":
        try:
            path = json.loads(await _read_small(request, settings))[PATH_FIELD]
        except (ValueError, KeyError, TypeError) as err:
            raise HTTPException(422, 'a JSON body must be {"path": "<file in the --allow_paths folder>"}') from err
        return await resolve_path(path, settings)
    raise HTTPException(
        415,
        f"send the video as multipart/form-data in the field '{FILE_FIELD}' (curl -F {FILE_FIELD}=@clip.mp4), "
        f"got Content-Type {content_type or 'none'!r}",
    )


async def resolve_path(path, settings: ServeSettings) -> Video:
    """A server-side file named by the client, accepted only inside ``--allow_paths`` (symlinks resolved)."""
    if settings.allow_paths is None:
        raise HTTPException(403, "server-side paths are off: upload the file, or start vidcls serve --allow_paths DIR")
    if not isinstance(path, str) or not path or "\0" in path:
        raise HTTPException(422, f"'{PATH_FIELD}' must be a file name in the allowed folder, got {path!r}")

    def confine() -> Path:  # resolving touches the disk: done in a worker thread
        root = Path(settings.allow_paths).resolve()
        target = (root / path).resolve()
        if not target.is_relative_to(root):
            raise HTTPException(403, f"path {path!r} is outside the allowed folder (--allow_paths)")
        if not target.is_file():
            raise HTTPException(404, f"no file {path!r} in the allowed folder (--allow_paths)")
        return target

    return Video(await anyio.to_thread.run_sync(confine), name=path)


async def _read_small(request: Request, settings: ServeSettings) -> bytes:
    body = bytearray()
    async for chunk in body_chunks(request, settings):
        body += chunk
        if len(body) > FIELD_LIMIT:
            raise HTTPException(413, f"a JSON body holds a path: {FIELD_LIMIT // 1024} KiB at most")
    return bytes(body)


def _client_name(filename: bytes) -> str:
    # Browsers send a base name; old ones a Windows path. Either way only the last part names the file.
    name = filename.decode("utf-8", "replace")
    return (PureWindowsPath(name).name if "\\" in name else PurePath(name).name)[:200] or "upload"


class _FormReader:
    """python-multipart callbacks: the ``file`` part goes to a temporary file, small fields to memory."""

    def __init__(self, settings: ServeSettings):
        self.settings = settings
        self.fields: dict[str, bytearray] = {}
        self.video: Video | None = None
        self.size = 0  # bytes of the uploaded file
        self.parts = 0
        self.field_bytes = 0  # of every part but the video
        self.ended = False  # the closing boundary was read
        self._file = None
        self._unwritten = bytearray()
        self._header, self._value, self._disposition = b"", b"", b""
        self._field: bytearray | None = None  # the plain field being read; None while in the file part

    def callbacks(self) -> dict:
        return {name: getattr(self, name) for name in (
            "on_part_begin", "on_header_field", "on_header_value", "on_header_end", "on_headers_finished",
            "on_part_data", "on_end")}  # fmt: skip

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise HTTPException(400, f"a form of more than {MAX_PARTS} parts: send the video in '{FILE_FIELD}' alone")
        self._disposition, self._field = b"", None

    def on_end(self) -> None:
        self.ended = True

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        if self._header.lower() == b"content-disposition":
            self._disposition = self._value
        self._header, self._value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" not in options:
            self._field = self.fields.setdefault(name, bytearray())
        elif name != FILE_FIELD:
            raise HTTPException(422, f"send the video in the form field '{FILE_FIELD}', not '{name}'")
        elif self.video is not None:
            raise HTTPException(422, "send one video per request")
        else:
            client_name = _client_name(options[b"filename"])
            suffix = Path(client_name).suffix  # FFmpeg guesses some containers from it
            suffix = suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix) else ""
            handle, path = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=suffix, dir=self.settings.tmp_dir)
            self.video = Video(Path(path), client_name, temporary=True)
            self._file = os.fdopen(handle, "wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._field is None:
            self._unwritten += data[start:end]
            self.size += end - start
        else:
            self.field_bytes += end - start
            if self.field_bytes > FIELD_LIMIT:
                raise HTTPException(
                    413, f"form fields other than '{FILE_FIELD}' hold {FIELD_LIMIT // 1024} KiB at most, all together"
                )
            self._field += data[start:end]

    async def flush(self, close: bool = False) -> None:
        if self._file is None:
            return
        data, self._unwritten = self._unwritten, bytearray()
        await anyio.to_thread.run_sync(self._file.write, data)
        if close:
            await anyio.to_thread.run_sync(self._file.close)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
        if self.video is not None:
            self.video.remove()


async def _receive_form(request: Request, boundary: bytes | None, settings: ServeSettings) -> Video:
    if not boundary:
        raise HTTPException(400, "multipart/form-data without a boundary: let the client build the form body")
    reader = _FormReader(settings)
    try:
        try:
            parser = MultipartParser(boundary, reader.callbacks())
            async for chunk in body_chunks(request, settings):
                parser.write(chunk)
                if len(reader._unwritten) >= FLUSH_BYTES:
                    await reader.flush()
            parser.finalize()
            await reader.flush(close=True)
        except FormParserError as err:
            raise HTTPException(400, f"invalid multipart/form-data body ({err})") from err
        if not reader.ended:  # python-multipart's finalize() does not check it: a cut-off body looks whole
            raise HTTPException(400, "invalid multipart/form-data body: it ends before the closing boundary")
        if reader.video is None:
            if PATH_FIELD in reader.fields:
                return await resolve_path(reader.fields[PATH_FIELD].decode("utf-8", "replace"), settings)
            raise HTTPException(422, f"no video in the form: send it in the field '{FILE_FIELD}' (curl -F file=@a.mp4)")
        if PATH_FIELD in reader.fields:
            raise HTTPException(422, f"send either a '{FILE_FIELD}' or a '{PATH_FIELD}', not both")
        if reader.size == 0:
            raise HTTPException(422, f"{reader.video.name}: the uploaded file is empty (0 bytes)")
        return reader.video
    except BaseException:  # errors, timeouts and disconnects alike: no upload is left behind
        reader.discard()
        raise
