"""The HTTP app: ``POST /predict``, ``GET /labels``, ``GET /health``, the page at ``/`` and the OpenAPI docs.

``create_app`` takes a predictor already built (``Predictor`` or anything with its ``clips_from_file``,
``logits``, ``top_k``, ``spec``, ``reader`` and ``id2label``), so other backends can be served the same way.
Every error is JSON ``{"detail": "..."}`` with a message that names its cause and, where one exists, the flag
that changes the limit.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse

from vidcls.serve.pipeline import Pipeline, run_with_timeout
from vidcls.serve.settings import ServeSettings
from vidcls.serve.uploads import FILE_FIELD, PATH_FIELD, receive_video

logger = logging.getLogger(__name__)

_ERRORS = {
    400: "Malformed body, or the client disconnected during the upload.",
    403: "A server-side path while paths are off, or one outside the --allow_paths folder.",
    404: "A server-side path naming no file.",
    413: "Body over --max_upload_mb.",
    415: "Not a multipart upload, or a file that is not a readable video (no video stream, unknown format).",
    422: "Empty file, a video that fails to decode, one over --max_video_seconds, or a bad parameter.",
    503: "Every working and waiting place is taken (--max_concurrent, --max_queue): retry after Retry-After s.",
    504: "No answer within --request_timeout_s.",
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


def create_app(predictor, settings: ServeSettings | None = None) -> FastAPI:
    """The app serving ``predictor``: one model, loaded once, shared by every request."""
    settings = settings or ServeSettings()
    pipeline = Pipeline(predictor, settings)
    page = files("vidcls.serve").joinpath("static", "index.html").read_text(encoding="utf-8")
    labels = [predictor.id2label[i] for i in range(len(predictor.id2label))]

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
        return {"labels": labels}

    @app.post("/predict", openapi_extra={"requestBody": _BODY}, responses=_RESPONSES)
    async def predict(
        request: Request,
        top_k: int = Query(5, ge=1, description="How many labels to return, best first."),
        timeline: bool = Query(False, description="Also label the video window by window, merged into segments."),
        window: float | None = Query(None, gt=0, description="Timeline window in seconds; default: one clip's span."),
        stride: float | None = Query(None, gt=0, description="Seconds between windows; default: the window."),
    ) -> dict:
        """Top-k labels of an uploaded video (multipart field ``file``), averaged over clips covering all of it.

        ``curl -F file=@clip.mp4 'http://127.0.0.1:8000/predict?top_k=5&timeline=true'``
        """
        ticket = pipeline.admit()
        options = {"top_k": top_k, "timeline": timeline, "window": window, "stride": stride}
        try:
            return await run_with_timeout(pipeline, ticket, lambda: receive_video(request, settings), options)
        finally:
            if not ticket.handed_over:
                pipeline.release(ticket)

    return app
