"""Predict the top-k labels of whole videos; one JSON line per video, in the pipeline's format."""

from __future__ import annotations

import argparse
import json

from vidcls.engine.predict import Predictor
from vidcls.errors import DecodeError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="Video files.")
    parser.add_argument("--model_dir", required=True, help="Output folder of vidcls train.")
    parser.add_argument("--top_k", type=int, default=5, help="Labels per video.")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    return parser


def run(args: argparse.Namespace) -> int:
    predictor = Predictor.from_pretrained(args.model_dir, device=args.device)
    failures = 0
    for video in args.videos:
        try:
            record = {"video": video, "predictions": predictor.predict(video, top_k=args.top_k)}
        except DecodeError as err:
            failures += 1
            record = {"video": video, "error": str(err)}
        print(json.dumps(record), flush=True)
    return 1 if failures else 0
