"""Serve a trained model over HTTP: POST /predict, GET /labels, GET /health, a page at / and /openapi.json.

Binds to 127.0.0.1 (this machine only) unless --host says otherwise; there is no authentication, so expose
it to a network only behind something that provides it. Needs the serve extra: pip install 'vidcls[serve]'.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging

from vidcls.errors import MissingDependency
from vidcls.serve.settings import ServeSettings

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="Output folder of vidcls train.")
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on; 0.0.0.0 opens it to the network.")
    parser.add_argument("--port", type=int, default=8000, help="Port to listen on.")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    parser.add_argument(
        "--backend", default="torch", choices=("torch", "onnx"), help="onnx: onnxruntime runs vidcls export's model."
    )
    parser.add_argument("--int8", action="store_true", help="With --backend onnx: the model of export --quantize.")
    limits = parser.add_argument_group("limits")
    for name, kind, default, help_text in ServeSettings.flags():
        limits.add_argument(f"--{name}", type=kind, default=default, help=help_text)
    return parser


def settings_from(args: argparse.Namespace) -> ServeSettings:
    return ServeSettings(**{name: getattr(args, name) for name, *_ in ServeSettings.flags()})


def run(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn
    except ImportError as err:
        raise MissingDependency(f"vidcls serve needs the serve extra: pip install 'vidcls[serve]' ({err})") from err
    from vidcls.engine.predict import Predictor
    from vidcls.serve.app import create_app

    settings = settings_from(args)  # invalid limits fail before the model loads
    predictor = Predictor.from_pretrained(args.model_dir, device=args.device, backend=args.backend, int8=args.int8)
    if not _is_loopback(args.host):
        logger.warning("listening on %s: anyone who can reach this machine can use the model", args.host)
    logger.info("serving %s on http://%s:%d (page and API: /, /openapi.json)", args.model_dir, args.host, args.port)
    # uvicorn's own bound on open connections and tasks, past which it answers 503: room for every upload
    # and every place /predict bounds itself (503 with its own message), and as many again for /health & co.
    limit = max(64, 2 * (settings.max_uploads + settings.capacity))
    uvicorn.run(create_app(predictor, settings), host=args.host, port=args.port, limit_concurrency=limit)
    return 0


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
