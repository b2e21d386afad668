"""CPU latency per clip of PyTorch eager against onnxruntime fp32 and int8, same model, process and threads.

Models: vidcls's ``tiny`` VideoMAE (32 px, 16 frames, 0.6 M parameters) and a VideoMAE-base (``VideoMAEConfig()``
defaults: 224 px, 16 frames, 86 M parameters), both with random weights (no download) and 8 labels, saved as
``vidcls train`` saves them and exported by ``vidcls export`` (static batch 1, opset 18, verified) with
``--quantize``. Each side is timed on one uint8 clip (batch 1) from the model's input to its logits, the pixel
normalisation folded into the first layer on both (``models.folding``): warm-up calls first, then ``--runs`` timed
calls, one side after the other; the median is reported. Results: BENCHMARKS.md.

    .venv/bin/python benchmarks/export.py           # about 7 minutes on 2 cores (export of the base model included)
    .venv/bin/python benchmarks/export.py --quick   # smoke run: tiny model only, 5 timed calls
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import VideoMAEConfig

from vidcls.data.synthetic import DIRECTIONS
from vidcls.export.onnx_export import ClassLogits, export_model
from vidcls.export.quantize import quantize_int8
from vidcls.models.factory import create_model, load_trained, resolve_clip_spec, save_trained, tiny_videomae_config
from vidcls.models.folding import fold_normalization
from vidcls.models.onnx import INT8_FILE, ONNX_FILE, OnnxClassifier

CONFIGS = {"tiny": tiny_videomae_config, "videomae-base": VideoMAEConfig}


def save_model(name: str, output_dir: Path) -> Path:
    """A random-weight model of config ``name`` saved as vidcls train saves it."""
    torch.manual_seed(0)
    config_path = output_dir.parent / f"{name}.json"
    CONFIGS[name]().to_json_file(config_path)
    model = create_model(None, str(config_path), {label: i for i, label in enumerate(DIRECTIONS)})
    spec = resolve_clip_spec(model)
    save_trained(model, spec, output_dir)
    return output_dir


def latencies(sides: dict, clip: torch.Tensor, warmup: int, runs: int) -> dict[str, list[float]]:
    """Seconds per call of each side on ``clip``: warm-up calls, then ``runs`` timed ones, one side after another.

    Sides run in blocks, not in turns: right after an onnxruntime call torch's calls on a tiny VideoMAE took
    2-25x longer on 2 cores (each runtime's worker threads were still waking or winding down).
    """
    times = {}
    with torch.inference_mode():
        for name, run in sides.items():
            for _ in range(warmup):
                run(clip)
            times[name] = []
            for _ in range(runs):
                start = time.perf_counter()
                run(clip)
                times[name].append(time.perf_counter() - start)
    return times


def bench(name: str, root: Path, warmup: int, runs: int, threads: int) -> dict:
    model_dir = save_model(name, root / name)
    started = time.perf_counter()
    report = export_model(model_dir, model_dir / "onnx")
    quantize_int8(model_dir / "onnx")
    export_s = time.perf_counter() - started

    model, spec = load_trained(model_dir)
    fold_normalization(model, spec.mean, spec.std)  # as Predictor.from_pretrained does
    wrapper = ClassLogits(model, spec).eval()
    input_name = wrapper.input_name
    fp32 = OnnxClassifier(model_dir / "onnx" / ONNX_FILE, model.config, threads=threads)
    int8 = OnnxClassifier(model_dir / "onnx" / INT8_FILE, model.config, threads=threads)
    sides = {
        "pytorch eager": wrapper,
        "onnxruntime fp32": lambda clip: fp32(**{input_name: clip}).logits,
        "onnxruntime int8": lambda clip: int8(**{input_name: clip}).logits,
    }
    clip = torch.randint(0, 256, (1, spec.num_frames, 3, spec.image_size, spec.image_size), dtype=torch.uint8)
    with torch.inference_mode():
        int8_diff = float((wrapper(clip) - sides["onnxruntime int8"](clip)).abs().max())
    times = latencies(sides, clip, warmup, runs)
    median = {side: statistics.median(values) * 1000 for side, values in times.items()}
    return {
        "model": name,
        "input": [1, spec.num_frames, 3, spec.image_size, spec.image_size],
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "export_s": round(export_s, 1),
        "fp32_max_abs_diff": report["max_abs_diff"],
        "int8_max_abs_diff": int8_diff,
        "mb": {
            "fp32": round((model_dir / "onnx" / ONNX_FILE).stat().st_size / 2**20, 1),
            "int8": round((model_dir / "onnx" / INT8_FILE).stat().st_size / 2**20, 1),
        },
        "median_ms": {side: round(ms, 2) for side, ms in median.items()},
        "runs": runs,
    }


def print_table(rows: list[dict]) -> None:
    print("| model | input (B, T, C, H, W) | PyTorch eager ms | ORT fp32 ms | ratio | ORT int8 ms | ratio | MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        ms = row["median_ms"]
        eager, fp32, int8 = ms["pytorch eager"], ms["onnxruntime fp32"], ms["onnxruntime int8"]
        print(
            f"| {row['model']} | {tuple(row['input'])} | {eager:.2f} | {fp32:.2f} | {eager / fp32:.2f}x "
            f"| {int8:.2f} | {eager / int8:.2f}x | {row['mb']['fp32']} / {row['mb']['int8']} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Smoke run: the tiny model only, 5 timed calls.")
    parser.add_argument("--runs", type=int, default=20, help="Timed calls per side.")
    parser.add_argument("--warmup", type=int, default=3, help="Untimed calls per side first.")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="For torch and onnxruntime.")
    parser.add_argument("--json", default=None, help="Also write the rows to this JSON file.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = ["tiny"] if args.quick else list(CONFIGS)
    runs, warmup = (5, 1) if args.quick else (args.runs, args.warmup)
    with tempfile.TemporaryDirectory(prefix="vidcls-bench-export-") as tmp:
        rows = [bench(name, Path(tmp), warmup, runs, args.threads) for name in names]
    print(f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print_table(rows)
    for row in rows:
        print(
            f"{row['model']}: {row['parameters_m']} M parameters, export+verify+quantize {row['export_s']} s, "
            f"max |logit diff| to PyTorch: fp32 {row['fp32_max_abs_diff']:.1e}, int8 {row['int8_max_abs_diff']:.1e}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
