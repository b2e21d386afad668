"""Does ``vidcls predict``'s default (``--num_workers`` unset: chosen from the first videos' timings) ever lose to
0 or 2 decoding workers? Videos/s of the three, side by side, on a model-bound and a decode-bound workload.

- model-bound: the ``tiny`` VideoMAE at the guide's 224 px (16 px patches, 16 frames, width 128, random weights);
- decode-bound: the ``tiny`` VideoMAE at 32 px, where the model is nearly free.

Both on the UCF101-like videos of ``benchmarks/predict.py`` (320x240, 25 fps, 10 s), 4 clips of 16 frames per
video. Sides take turns within each round; the median of the rounds counts. Results: BENCHMARKS.md.

    PYTHONPATH=src .venv/bin/python benchmarks/workers.py            # about 5 minutes on 2 cores
    PYTHONPATH=src .venv/bin/python benchmarks/workers.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
from predict import DATA, make_data  # benchmarks/predict.py (this script's folder): its videos and 32 px model

from vidcls.data.synthetic import DIRECTIONS
from vidcls.engine.predict import Predictor
from vidcls.engine.predict_batch import predict_records
from vidcls.models.factory import create_model, resolve_clip_spec, save_trained, tiny_videomae_config


def save_224_model(output_dir: Path) -> Path:
    """The ``tiny`` VideoMAE at 224 px in 16 px patches (as benchmarks/fold.py), saved as vidcls train saves it."""
    if (output_dir / "vidcls.json").exists():
        return output_dir
    torch.manual_seed(0)
    config = tiny_videomae_config()
    config.image_size, config.patch_size = 224, 16
    output_dir.mkdir(parents=True, exist_ok=True)
    config.to_json_file(output_dir.parent / "config_224.json")
    model = create_model(None, str(output_dir.parent / "config_224.json"), {d: i for i, d in enumerate(DIRECTIONS)})
    return save_trained(model, resolve_clip_spec(model), output_dir)


def rates(model_dir: Path, videos: list[str], rounds: int) -> dict[str, float]:
    """Median videos/s of each side over ``rounds`` rounds, sides taking turns (each warmed up once first)."""
    predictor = Predictor.from_pretrained(model_dir, device="cpu")
    sides = {"0 workers": 0, "2 workers": 2, "default (chosen)": None}
    for workers in sides.values():
        list(predict_records(predictor, videos[:2], batch_size=16, num_workers=workers))
    seconds = {name: [] for name in sides}
    for _ in range(rounds):
        for name, workers in sides.items():
            started = time.perf_counter()
            records = list(predict_records(predictor, videos, batch_size=16, num_workers=workers))
            seconds[name].append(time.perf_counter() - started)
            assert not any("error" in record for record in records)
    return {name: round(len(videos) / statistics.median(times), 2) for name, times in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="4 videos, 1 round")
    args = parser.parse_args()
    videos, rounds = (4, 1) if args.quick else (args.videos, args.rounds)
    root = make_data(DATA)
    paths = sorted(map(str, (root / "videos").glob("*.avi")))[:videos]
    workloads = {"model-bound (224 px)": save_224_model(root / "model_224"), "decode-bound (32 px)": root / "model"}
    print(f"{len(os.sched_getaffinity(0))} cores, torch {torch.__version__}, {len(paths)} videos, {rounds} rounds")
    results = {name: rates(model_dir, paths, rounds) for name, model_dir in workloads.items()}
    print(json.dumps(results))
    print(f"{'workload':<22}" + "".join(f"{side:>18}" for side in next(iter(results.values()))))
    for name, row in results.items():
        print(f"{name:<22}" + "".join(f"{rate:>14.2f} v/s" for rate in row.values()))


if __name__ == "__main__":
    main()
