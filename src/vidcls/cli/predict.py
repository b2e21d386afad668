"""Predict the top-k labels of whole videos; one JSON line per video, in the pipeline's format.

Inputs are files, folders (searched recursively) and glob patterns. ``--output preds.jsonl|preds.csv``
writes a file atomically instead of printing; ``--timeline`` labels segments of long videos instead.
For large collections, ``torchrun --nproc_per_node N -m vidcls predict ... --output preds.jsonl`` shards the
inputs across processes and merges their outputs into one file.
"""

from __future__ import annotations

import argparse
import json
import math

from vidcls.engine.predict import Predictor
from vidcls.engine.predict_batch import expand_inputs, predict_records
from vidcls.engine.predict_output import (
    gather_parts,
    init_distributed,
    output_format,
    part_path,
    rank_and_world,
    rank_device,
    shard,
    write_records,
)
from vidcls.engine.timeline import MAX_WINDOWS
from vidcls.errors import ConfigError, DecodeError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="Video files, folders or glob patterns.")
    parser.add_argument("--model_dir", required=True, help="Output folder of vidcls train.")
    parser.add_argument("--top_k", type=int, default=5, help="Labels per video.")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    parser.add_argument(
        "--backend", default="torch", choices=("torch", "onnx"), help="onnx: onnxruntime runs vidcls export's model."
    )
    parser.add_argument("--int8", action="store_true", help="With --backend onnx: the model of export --quantize.")
    parser.add_argument("--batch_size", type=int, default=16, help="Clips per model call (across videos).")
    parser.add_argument("--num_workers", type=int, default=2, help="Decoding processes.")
    parser.add_argument("--output", default=None, help="preds.jsonl or preds.csv, written atomically; None: stdout.")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="Progress bar.")
    timeline = parser.add_argument_group("timeline of long videos")
    timeline.add_argument("--timeline", action="store_true", help="Write labelled segments, JSON and PNG, per video.")
    timeline.add_argument("--window", type=float, default=None, help="Window seconds; None: one clip's span.")
    timeline.add_argument("--stride", type=float, default=None, help="Seconds between window starts; None: --window.")
    timeline.add_argument("--timeline_dir", default="timelines", help="Where <stem>.timeline.json/.png go.")
    timeline.add_argument(
        "--max_windows", type=int, default=MAX_WINDOWS, help="Most windows per video; a video needing more fails."
    )
    return parser


def run(args: argparse.Namespace) -> int:
    if args.top_k < 1:
        raise ConfigError(f"--top_k must be >= 1, got {args.top_k}")
    for flag in ("window", "stride"):  # a frame's length depends on each video: checked per video
        seconds = getattr(args, flag)
        if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
            raise ConfigError(f"--{flag} must be positive seconds, got {seconds:g}")
    if args.max_windows < 1:
        raise ConfigError(f"--max_windows must be >= 1, got {args.max_windows}")
    if args.output and output_format(args.output) == "csv" and args.timeline:  # a bad suffix fails here, early
        raise ConfigError("--timeline records hold segments, not ranked labels: use --output NAME.jsonl")
    videos = expand_inputs(args.videos)
    rank, world = rank_and_world()
    if world > 1 and not args.output:
        raise ConfigError("under torchrun, pass --output preds.jsonl (or .csv): the ranks' outputs merge there")
    grouped = init_distributed()
    device = rank_device(args.device) if grouped else args.device
    predictor = Predictor.from_pretrained(args.model_dir, device=device, backend=args.backend, int8=args.int8)
    mine = shard(videos, rank, world)
    if args.timeline:
        records = (_timeline_record(predictor, video, args) for video in mine)
    else:
        records = predict_records(
            predictor,
            mine,
            top_k=args.top_k,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            progress=args.progress,
        )
    if not args.output:
        failures = 0
        for record in records:
            failures += "error" in record
            print(json.dumps(record), flush=True)
        return 1 if failures else 0
    if world == 1:
        return 1 if write_records(records, args.output) else 0
    failures = write_records(records, part_path(args.output, rank), "jsonl")
    merged = gather_parts(args.output, rank, world)
    return 1 if (merged if merged is not None else failures) else 0


def _timeline_record(predictor: Predictor, video: str, args: argparse.Namespace) -> dict:
    """Write one video's timeline files; the record names them and carries the segments."""
    from vidcls.engine.timeline import write_timeline

    try:
        timeline = predictor.predict_timeline(
            video, args.window, args.stride, batch_size=args.batch_size, max_windows=args.max_windows
        )
    except DecodeError as err:
        return {"video": video, "error": str(err)}
    except ConfigError as err:  # a stride shorter than this video's frames, or too many windows for its length
        return {"video": video, "error": f"{video}: {err}"}
    json_path, png_path = write_timeline(timeline, args.timeline_dir)
    return {"video": video, "timeline": str(json_path), "plot": str(png_path), "segments": timeline["segments"]}
