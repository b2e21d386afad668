"""CPU latency per clip of PyTorch eager against onnxruntime fp32, dynamic int8 and static int8, same model, process
and threads.

Models, both at the guide's size (224 px, 16 frames): ``tiny-224``, vidcls's ``tiny`` VideoMAE (4 layers of width
128) in 16 px patches as ``fold.py`` builds it, and a VideoMAE-base (``VideoMAEConfig()`` defaults, 86 M
parameters), both with random weights (no download) and 8 labels, saved as
``vidcls train`` saves them and exported as ``vidcls export`` does (static batch 1, opset 18, verified), then
quantised twice: ``--quantize dynamic`` and ``--quantize static``, calibrated on ``--calibration_clips`` clips of
a generated motion dataset (the demo's videos, 16 per split). Each side is timed on one clip of that dataset
(batch 1, uint8: the pixel normalisation is folded into the first layer on every side, ``models.folding``), from
the graph's input to its logits: warm-up calls first (not timed), then ``--rounds`` rounds in which each side makes
an untimed call then ``--calls`` timed calls in a row (blocks, not single calls in turn: see ``latencies``); the
median of each side's calls is reported; ``--json`` writes the ratios as ``results.py`` rows (target: static int8
1.5x ORT fp32 on VideoMAE-base, issue #16). Results: BENCHMARKS.md.

    .venv/bin/python benchmarks/export.py           # about 8 minutes on 2 cores (exports and calibration included)
    .venv/bin/python benchmarks/export.py --quick   # smoke run: tiny-224 only, 4 calibration clips, 2 rounds
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from results import Result, write
from transformers import VideoMAEConfig

from vidcls.data.synthetic import DIRECTIONS, make_motion_dataset
from vidcls.export.calibration import calibration_clips
from vidcls.export.onnx_export import ClassLogits, export_model
from vidcls.export.quantize import quantize_int8
from vidcls.models.factory import create_model, load_trained, resolve_clip_spec, save_trained, tiny_videomae_config
from vidcls.models.folding import fold_normalization
from vidcls.models.onnx import ONNX_FILE, OnnxClassifier


def tiny_224_config() -> VideoMAEConfig:
    config = tiny_videomae_config()
    config.image_size, config.patch_size = 224, 16  # 8 x 14 x 14 = 1568 tokens, as benchmarks/fold.py
    return config


CONFIGS = {"tiny-224": tiny_224_config, "videomae-base": VideoMAEConfig}
INT8_MODES = ("dynamic", "static")
STATIC_TARGET = {"videomae-base": 1.5}  # issue #16: static int8 >= 1.5x ORT fp32 per clip on VideoMAE-base


def save_model(name: str, output_dir: Path) -> Path:
    """A random-weight model of config ``name`` saved as vidcls train saves it."""
    torch.manual_seed(0)
    config_path = output_dir.parent / f"{name}.json"
    CONFIGS[name]().to_json_file(config_path)
    model = create_model(None, str(config_path), {label: i for i, label in enumerate(DIRECTIONS)})
    spec = resolve_clip_spec(model)
    save_trained(model, spec, output_dir)
    return output_dir


def export_all(model_dir: Path, data: Path, clips: int) -> dict:
    """Export ``model_dir`` and quantise it both ways; seconds each step took, and the files (mode -> path)."""
    export_dir = model_dir / "onnx"
    started = time.perf_counter()
    report = export_model(model_dir, export_dir)
    seconds = {"export": time.perf_counter() - started}
    files = {"fp32": export_dir / ONNX_FILE}
    for mode in INT8_MODES:
        started = time.perf_counter()
        path, _ = quantize_int8(export_dir, mode, calibration_data=data, clips=clips)
        seconds[mode] = time.perf_counter() - started
        files[mode] = path.rename(export_dir / f"model.{mode}.onnx")  # both beside model.onnx; INT8_FILE is reused
    return {"report": report, "seconds": seconds, "files": files}


def latencies(sides: dict, clip: torch.Tensor, warmup: int, rounds: int, calls: int) -> dict[str, list[float]]:
    """Seconds per call of each side on ``clip``: ``warmup`` untimed calls each, then ``rounds`` rounds in which
    each side makes one untimed call and ``calls`` timed ones in a row.

    Sides take turns by blocks, not by calls, and each block starts untimed: right after an onnxruntime call
    torch's calls on a tiny VideoMAE took 2-25x longer on 2 cores (each runtime's worker threads were still
    waking or winding down). Rounds spread each side over the run, so a load that comes and goes on a shared
    machine weighs on all of them alike.
    """
    times = {name: [] for name in sides}
    with torch.inference_mode():
        for run in sides.values():
            for _ in range(warmup):
                run(clip)
        for _ in range(rounds):
            for name, run in sides.items():
                run(clip)
                for _ in range(calls):
                    start = time.perf_counter()
                    run(clip)
                    times[name].append(time.perf_counter() - start)
    return times


def bench(name: str, root: Path, data: Path, args: argparse.Namespace) -> dict:
    model_dir = save_model(name, root / name)
    exported = export_all(model_dir, data, args.calibration_clips)
    model, spec = load_trained(model_dir)
    fold_normalization(model, spec.mean, spec.std)  # as Predictor.from_pretrained does
    wrapper = ClassLogits(model, spec).eval()
    input_name = wrapper.input_name

    def onnx_side(path: Path):
        classifier = OnnxClassifier(path, model.config, threads=args.threads)
        return lambda clip: classifier(**{input_name: clip}).logits

    sides = {"pytorch eager": wrapper} | {mode: onnx_side(path) for mode, path in exported["files"].items()}
    # One clip of a test video, uint8 as every side takes it (folded): (1, T, C, H, W).
    (pixels,) = calibration_clips(spec, data / "test", 1)
    clip = pixels[None]
    with torch.inference_mode():
        expected = wrapper(clip)
        diffs = {mode: float((expected - sides[mode](clip)).abs().max()) for mode in ("fp32", *INT8_MODES)}
    times = latencies(sides, clip, args.warmup, args.rounds, args.calls)
    return {
        "model": name,
        "input": [1, spec.num_frames, 3, spec.image_size, spec.image_size],
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "seconds": {step: round(s, 1) for step, s in exported["seconds"].items()},
        "calibration_clips": args.calibration_clips,
        "max_abs_diff": diffs,
        "logit_spread": float(expected.max() - expected.min()),
        "mb": {mode: round(path.stat().st_size / 2**20, 1) for mode, path in exported["files"].items()},
        "median_ms": {side: round(statistics.median(values) * 1000, 2) for side, values in times.items()},
        "min_ms": {side: round(min(values) * 1000, 2) for side, values in times.items()},
        "calls": len(times["fp32"]),
    }


def results(rows: list[dict]) -> list[Result]:
    """Each model's ratios as ``results.py`` rows: times inverted, so a ratio above 1 is faster than its baseline."""
    out = []
    for row in rows:
        ms, name = row["median_ms"], row["model"]
        label = f"{name}, 224 px, 16 frames, batch 1"
        eager = ms["pytorch eager"]
        out.append(Result("export", f"ORT fp32, {label}", ms["fp32"], "ms per clip", f"PyTorch eager: {eager:.1f} ms",
                          eager / ms["fp32"]))  # fmt: skip
        for mode in INT8_MODES:
            diff = f"max logit diff to PyTorch {row['max_abs_diff'][mode]:.1e}"
            out.append(Result("export", f"int8 {mode}, {label}", ms[mode], "ms per clip",
                              f"ORT fp32: {ms['fp32']:.1f} ms", ms["fp32"] / ms[mode],
                              STATIC_TARGET.get(name) if mode == "static" else None, diff))  # fmt: skip
    return out


def print_table(rows: list[dict]) -> None:
    print(
        "| model | PyTorch eager ms | ORT fp32 ms | int8 dynamic ms | x fp32 | int8 static ms | x fp32 "
        "| MB fp32 / dynamic / static |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        ms, mb = row["median_ms"], row["mb"]
        print(
            f"| {row['model']} | {ms['pytorch eager']:.2f} | {ms['fp32']:.2f} | {ms['dynamic']:.2f} "
            f"| {ms['fp32'] / ms['dynamic']:.2f}x | {ms['static']:.2f} | {ms['fp32'] / ms['static']:.2f}x "
            f"| {mb['fp32']} / {mb['dynamic']} / {mb['static']} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Smoke run: tiny-224 only, 4 calibration clips.")
    parser.add_argument("--models", default=",".join(CONFIGS), help=f"Comma-separated, of {', '.join(CONFIGS)}.")
    parser.add_argument("--rounds", type=int, default=5, help="Rounds; in each, every side makes --calls calls.")
    parser.add_argument("--calls", type=int, default=2, help="Timed calls per side and round.")
    parser.add_argument("--warmup", type=int, default=2, help="Untimed calls per side first.")
    parser.add_argument("--calibration_clips", type=int, default=16, help="Clips static int8 calibrates on.")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="For torch and onnxruntime.")
    parser.add_argument("--json", default=None, help="Also write the ratios (results.py rows) to this file.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = ["tiny-224"] if args.quick else args.models.split(",")
    if args.quick:
        args.rounds, args.calls, args.warmup, args.calibration_clips = 2, 2, 1, 4
    root = Path(tempfile.mkdtemp(prefix="vidcls-bench-export-"))
    try:
        data = make_motion_dataset(root / "motion", groups=(1, 1, 1), clips_per_group=2)
        rows = [bench(name, root, data, args) for name in names]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print_table(rows)
    for row in rows:
        diffs = ", ".join(f"{mode} {diff:.1e}" for mode, diff in row["max_abs_diff"].items())
        seconds = ", ".join(f"{step} {s} s" for step, s in row["seconds"].items())
        print(f"{row['model']}: {row['parameters_m']} M parameters; {seconds} ({row['calibration_clips']} clips)")
        print(f"  max |logit diff| to PyTorch on a test clip (logits spread {row['logit_spread']:.2f}): {diffs}")
        print(f"  fastest call, ms: {row['min_ms']}; {row['calls']} timed calls per side")
    print(json.dumps(rows))  # every figure, for the record
    write(args.json, results(rows))


if __name__ == "__main__":
    main()
