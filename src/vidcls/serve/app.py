"""The HTTP app: ``POST /predict``, ``GET /labels``, ``GET /health``, the page at ``/`` and ``/openapi.json``.

``create_app`` takes a predictor already built (``Predictor`` or anything with its ``clips_from_file``,
``logits``, ``top_k``, ``spec``, ``reader`` and ``id2label``), so other backends can be served the same way.
Every error is JSON ``{"detail": "..."}`` with a message that names its cause and, where one exists, the flag
that changes the limit. Nothing the server sends refers to another host, so the page and the API description
work offline: there is no Swagger UI at ``/docs`` (FastAPI's loads its scripts from a CDN); the page at ``/``
has a short API section and links ``/openapi.json``, which any OpenAPI viewer or client generator reads.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse

from vidcls.serve.pipeline import Pipeline
from vidcls.serve.settings import ServeSettings
from vidcls.serve.uploads import FILE_FIELD, PATH_FIELD, receive_video

logger = logging.getLogger(__name__)

MAX_TOP_K = 1000  # top_k past the model's labels returns them all; past this (or the labels, if more): 422

_ERRORS = {
    400: "Malformed body (a form without its closing boundary, more than 8 parts), or a client disconnect.",
    403: "A server-side path while paths are off, or one outside the --allow_paths folder.",
    404: "A server-side path naming no file.",
    408: "Body not received within --upload_timeout_s, or slower than --min_upload_kbps.",
    413: "Body over --max_upload_mb, or form fields besides the video over 64 KiB.",
    415: "Not a multipart upload, or a file that is not a readable video (no video stream, unknown format).",
    422: "Empty file, a video that fails to decode, one over --max_video_seconds, a window or stride shorter "
    "than a frame or making more than --max_windows windows, or a parameter out of range.",
    503: "Every upload place (--max_uploads), or every working and waiting place (--max_concurrent, --max_queue), "
    "is taken: retry after Retry-After s.",
    504: "No answer within --request_timeout_s of the upload's end; the work stops and its upload is removed.",
}

_RESPONSES = {status: {"description": text} for status, text in _ERRORS.items()}

# The request body is parsed by hand (streamed to disk under the size limit), so OpenAPI is told its shape.
_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    FILE_FIELD: {"type": "string", "format": "binary", "description": "The video."},
                    PATH_FIELD: {"type": "string", "description": "Instead of a file: one in --allow_paths."},
                },
            }
        },
        "application/json": {
            "schema": {"type": "object", "properties": {PATH_FIELD: {"type": "string"}}, "required": [PATH_FIELD]}
        },
    },
}


def create_app(predictor, settings: ServeSettings | None = None, model_name: str = "model") -> FastAPI:
    """The app serving ``predictor``: one model, loaded once, shared by every request; ``model_name`` is shown."""
    settings = settings or ServeSettings()
    pipeline = Pipeline(predictor, settings)
    page = files("vidcls.serve").joinpath("static", "index.html").read_text(encoding="utf-8")
    labels = [predictor.id2label[i] for i in range(len(predictor.id2label))]
    max_top_k = max(len(labels), MAX_TOP_K)  # as transformers' pipeline, a top_k past the labels returns them all

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        pipeline.start()
        try:
            yield
        finally:
            pipeline.stop()

    app = FastAPI(
        title="vidcls",
        summary="Video classification: upload a video, get its top labels and, on request, a timeline.",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc load their scripts from a CDN: blank offline
        redoc_url=None,
    )
    app.state.pipeline = pipeline

    @app.exception_handler(RequestValidationError)
    async def one_line_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or e['loc'][0]}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # Logged in full by the server; the client learns the kind of failure, not a traceback.
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}): {exc}"}, status_code=500)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> str:
        return page

    @app.get("/health")
    async def health() -> dict:
        """Always answered at once, even while the model is busy: the counts of requests in progress."""
        return {"status": "ok", **pipeline.stats()}

    @app.get("/labels")
    async def get_labels() -> dict:
        """The model's class names, in the order of its outputs."""
        return {"model": model_name, "labels": labels}

    @app.post("/predict", openapi_extra={"requestBody": _BODY}, responses=_RESPONSES)
    async def predict(
        request: Request,
        top_k: int = Query(
            5, ge=1, le=max_top_k, description="How many labels to return, best first (past the model's: all)."
        ),
        timeline: bool = Query(False, description="Also label the video window by window, merged into segments."),
        frames: bool = Query(False, description="Also return the first clip's frames as the model saw them (JPEG)."),
        window: float | None = Query(
            None,
            gt=0,
            allow_inf_nan=False,
            description="Timeline window in seconds, one frame at least; default: one clip's span.",
        ),
        stride: float | None = Query(
            None,
            gt=0,
            allow_inf_nan=False,
            description="Seconds between windows, one frame at least, and at most "
            f"--max_windows ({settings.max_windows}) windows per video; default: the window.",
        ),
    ) -> dict:
        """Top-k labels of an uploaded video (multipart field ``file``), averaged over clips covering all of it.

        ``curl -F file=@clip.mp4 'SERVER/predict?top_k=5&timeline=true'`` (SERVER: where vidcls serve listens)
        """
        options = {"top_k": top_k, "timeline": timeline, "window": window, "stride": stride, "frames": frames}
        return await pipeline.answer(lambda: receive_video(request, settings), options)

    return app
