"""Predict the top-k labels of whole videos; one JSON line per video, in the pipeline's format.

Inputs are files, folders (searched recursively) and glob patterns. ``--output preds.jsonl|preds.csv``
writes a file atomically instead of printing; ``--timeline`` labels segments of long videos instead.
For large collections, ``torchrun --nproc_per_node N -m vidcls predict ... --output preds.jsonl`` shards the
inputs across processes and merges their outputs into one file; ``--engine ray`` runs on a Ray cluster instead,
appending records to ``--output`` as videos finish, so that a rerun resumes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from vidcls.cli.flags import command_parser, ray_engine, split_namespace
from vidcls.errors import ConfigError, DecodeError
from vidcls.settings import MAX_WINDOWS, ActorFlags, DeviceFlags, EngineFlags, ViewFlags

TERMINAL_DIGITS = 4  # scores printed to a terminal; files keep full precision


@dataclass
class PredictArguments:
    _argument_group_name = "predict"

    model_dir: str = field(metadata={"help": "Output folder of vidcls train."})
    top_k: int = field(default=5, metadata={"help": "Labels per video."})
    backend: Literal["torch", "onnx"] = field(
        default="torch", metadata={"help": "onnx: onnxruntime runs vidcls export's model."}
    )
    int8: bool = field(default=False, metadata={"help": "With --backend onnx: the model of export --quantize."})
    output: str | None = field(
        default=None, metadata={"help": "preds.jsonl or preds.csv, written atomically; None: print JSON lines."}
    )
    progress: bool = field(default=True, metadata={"help": "Progress bar (--progress false to hide it)."})

    def __post_init__(self):
        if self.top_k < 1:
            raise ConfigError(f"--top_k must be >= 1, got {self.top_k}")


@dataclass
class TimelineFlags:
    _argument_group_name = "timeline of long videos"

    timeline: bool = field(default=False, metadata={"help": "Write labelled segments, JSON and PNG, per video."})
    window: float | None = field(default=None, metadata={"help": "Window seconds; None: one clip's span."})
    stride: float | None = field(default=None, metadata={"help": "Seconds between window starts; None: --window."})
    timeline_dir: str | None = field(
        default=None,
        metadata={"help": "Where <stem>.timeline.json/.png go; None: beside --output (else the current folder)."},
    )
    max_windows: int = field(
        default=MAX_WINDOWS, metadata={"help": "Most windows per video; a video needing more gets an error record."}
    )

    def __post_init__(self):
        for flag in ("window", "stride"):  # a frame's length depends on each video: checked per video
            seconds = getattr(self, flag)
            if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
                raise ConfigError(f"--{flag} must be positive seconds, got {seconds:g}")
        if self.max_windows < 1:
            raise ConfigError(f"--max_windows must be >= 1, got {self.max_windows}")


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(__doc__, PredictArguments, ViewFlags, DeviceFlags, EngineFlags, ActorFlags, TimelineFlags)
    parser.set_defaults(batch_size=16)  # clips per model call, gathered across videos
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="Video files, folders or glob patterns.")
    return parser


def rounded(record: dict) -> dict:
    """A record with its scores rounded for people to read."""
    out = dict(record)
    for key in ("predictions", "segments"):
        if key in out:
            out[key] = [{**entry, "score": round(entry["score"], TERMINAL_DIGITS)} if "score" in entry else entry
                        for entry in out[key]]  # fmt: skip
    return out


def run(args: argparse.Namespace) -> int:
    from vidcls.engine.distributed import gather, my_share, process_device, rank_and_world
    from vidcls.engine.predict import Predictor  # torch: loaded only to run, not for --help
    from vidcls.engine.predict_batch import expand_inputs, predict_records
    from vidcls.engine.predict_output import append_records, output_format, resume_output, write_records

    _, views, _, engine, actors, _ = split_namespace(  # checks the values
        args, PredictArguments, ViewFlags, DeviceFlags, EngineFlags, ActorFlags, TimelineFlags
    )
    if args.output and output_format(args.output) == "csv" and args.timeline:  # a bad suffix fails here, early
        raise ConfigError("--timeline records hold segments, not ranked labels: use --output NAME.jsonl")
    if args.timeline_dir is None:  # the timeline files go with the predictions
        args.timeline_dir = str(Path(args.output).parent) if args.output else "."
    videos = expand_inputs(args.videos)
    rank, world = rank_and_world()
    ray = ray_engine(engine, actors, args.model_dir, args.device, args.backend, args.int8)
    if ray and args.timeline:
        raise ConfigError("--timeline runs in one process: leave out --engine ray")
    if world > 1 and not args.output:
        raise ConfigError("under torchrun, pass --output preds.jsonl (or .csv): process 0 writes every record there")
    predictor = Predictor.from_pretrained(  # with Ray, a copy for the labels and the reader: the actors score
        args.model_dir,
        device="cpu" if ray else process_device(args.device),
        backend=args.backend,
        int8=args.int8,
        views=views.eval_views(),
    )
    mine = my_share(videos)
    if ray and args.output:  # a rerun resumes: what the file holds is not predicted again
        done = resume_output(args.output, rows_per_record=min(args.top_k, len(predictor.id2label)))
        mine = [video for video in mine if video not in done]
        if done:
            print(f"vidcls predict: {len(videos) - len(mine)} of {len(videos)} videos already in {args.output}",
                  file=sys.stderr)  # fmt: skip
    if args.timeline:
        from tqdm.auto import tqdm

        shown = tqdm(mine, desc="timelines", unit="video", disable=not args.progress or len(mine) < 2)
        records = (_timeline_record(predictor, video, args) for video in shown)
    else:
        records = predict_records(
            predictor,
            mine,
            top_k=args.top_k,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            progress=args.progress,
            ray=ray,
        )
    if not args.output:
        failures = 0
        for record in records:
            failures += "error" in record
            print(json.dumps(rounded(record)), flush=True)
        _summary(len(mine), failures, "printed above")
        return 1 if failures else 0
    if ray:  # records are appended as they come, so that a crash keeps them
        failures = append_records(records, args.output)
        _summary(len(mine), failures, f"added to {args.output}")
        return 1 if failures else 0
    if world > 1:  # every process's records go to process 0, which writes them in input order
        records = [record for block in gather(list(records)) for record in block]
        if rank > 0:
            return 1 if any("error" in record for record in records) else 0
    failures = write_records(records, args.output)
    _summary(len(videos), failures, f"written to {args.output}")
    return 1 if failures else 0


def _summary(videos: int, failures: int, where: str) -> None:
    errors = f", {failures} with an error record" if failures else ""
    print(f"vidcls predict: {videos} videos{errors}; {where}", file=sys.stderr)


def _timeline_record(predictor, video: str, args: argparse.Namespace) -> dict:
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
