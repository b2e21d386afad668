"""Serve a trained model over HTTP: POST /predict, GET /labels, GET /health, a page at / and /openapi.json.

Binds to 127.0.0.1 (this machine only) unless --host says otherwise; there is no authentication, so expose
it to a network only behind something that provides it. Needs the serve extra: pip install 'vidcls[serve]'.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from vidcls.cli.flags import command_parser, split_namespace
from vidcls.errors import MissingDependency
from vidcls.serve.settings import ServeSettings
from vidcls.settings import ViewFlags

logger = logging.getLogger(__name__)


@dataclass
class ServeArguments:
    _argument_group_name = "serve"

    model_dir: str = field(metadata={"help": "Output folder of vidcls train."})
    host: str = field(default="127.0.0.1", metadata={"help": "Address to listen on; 0.0.0.0 opens it to the network."})
    port: int = field(default=8000, metadata={"help": "Port to listen on."})
    device: str = field(default="auto", metadata={"help": "auto (a GPU if there is one), cpu, cuda, cuda:1, mps."})
    backend: Literal["torch", "onnx"] = field(
        default="torch", metadata={"help": "onnx: onnxruntime runs vidcls export's model."}
    )
    int8: bool = field(default=False, metadata={"help": "With --backend onnx: the model of export --quantize."})


def build_parser() -> argparse.ArgumentParser:
    return command_parser(__doc__, ServeArguments, ViewFlags, ServeSettings)


def run(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn
    except ImportError as err:
        raise MissingDependency(f"vidcls serve needs the serve extra: pip install 'vidcls[serve]' ({err})") from err
    from vidcls.engine.predict import Predictor
    from vidcls.serve.app import create_app

    # Bad limits fail before the model loads.
    _, views, settings = split_namespace(args, ServeArguments, ViewFlags, ServeSettings)
    predictor = Predictor.from_pretrained(
        args.model_dir, device=args.device, backend=args.backend, int8=args.int8, views=views.eval_views()
    )
    if not _is_loopback(args.host):
        logger.warning("listening on %s: anyone who can reach this machine can use the model", args.host)
    logger.info("serving %s on http://%s:%d (page and API: /, /openapi.json)", args.model_dir, args.host, args.port)
    # uvicorn's own bound on open connections and tasks, past which it answers 503: room for every upload
    # and every place /predict bounds itself (503 with its own message), and as many again for /health & co.
    limit = max(64, 2 * (settings.max_uploads + settings.capacity))
    app = create_app(predictor, settings, model_name=Path(args.model_dir).resolve().name)
    uvicorn.run(app, host=args.host, port=args.port, limit_concurrency=limit)
    return 0


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
