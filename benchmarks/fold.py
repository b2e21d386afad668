"""CPU latency per clip of ``Predictor.logits`` with the pixel normalisation folded into the patch embedding
(uint8 clips cast only) against a normalisation pass before the model, PyTorch and onnxruntime.

The model is a VideoMAE of width 128 at 224 px: vidcls's ``tiny`` preset (4 layers of width 128, 16 frames in
tubelets of 2) with 16 px patches (8 x 14 x 14 = 1568 tokens), random weights, 8 labels, saved as ``vidcls train``
saves it. Sides, each one uint8 clip (1, 16, 3, 224, 224) in, logits out, through ``Predictor.logits``:

- torch normalise: the model as saved, given normalised clips (what every command did before folding);
- torch folded: ``Predictor.from_pretrained`` (folded at load, uint8 cast only);
- ORT normalise: a float-input graph of the model as saved, fed clips normalised in NumPy (the old export);
- ORT folded: ``vidcls export``'s graph, fed uint8.

Warm-up calls first, then ``--rounds`` rounds of ``--runs`` timed calls per side, in blocks (not in turns: each
runtime's threads slow the other's next calls), the order reversed every other round; the median and the minimum
are reported, with the normalisation pass and the cast alone for scale. ``--json`` writes the folded sides
against the normalising ones as ``results.py`` rows (no target: issue #16 asks for exact logits, tested in
``tests/test_folding.py``, not a speed). Results: BENCHMARKS.md.

    .venv/bin/python benchmarks/fold.py           # about 3 minutes on 2 cores
    .venv/bin/python benchmarks/fold.py --quick   # smoke run: 2 timed calls per side
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
from results import Result, write

from vidcls.data.synthetic import DIRECTIONS
from vidcls.data.transforms import normalize
from vidcls.engine.predict import Predictor
from vidcls.export import quiet_info
from vidcls.export.onnx_export import export_model
from vidcls.models.factory import create_model, load_trained, resolve_clip_spec, save_trained, tiny_videomae_config
from vidcls.models.families import class_logits
from vidcls.models.onnx import OnnxClassifier


def save_model(output_dir: Path) -> Path:
    """The ``tiny`` VideoMAE at 224 px in 16 px patches, random weights, saved as vidcls train saves it."""
    torch.manual_seed(0)
    config = tiny_videomae_config()
    config.image_size, config.patch_size = 224, 16
    config_path = output_dir.parent / "config.json"
    config.to_json_file(config_path)
    model = create_model(None, str(config_path), {label: i for i, label in enumerate(DIRECTIONS)})
    save_trained(model, resolve_clip_spec(model), output_dir)
    return output_dir


class FloatLogits(torch.nn.Module):
    """The graph ``vidcls export`` wrote before folding: normalised float pixels -> logits."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return class_logits(self.model(pixel_values=pixels).logits)


def export_float(model, spec, path: Path) -> None:
    example = torch.randn(1, spec.num_frames, 3, spec.image_size, spec.image_size)
    with quiet_info():
        program = torch.onnx.export(
            FloatLogits(model).eval(), (example,), input_names=["pixel_values"], output_names=["logits"],
            opset_version=18, dynamo=True, verbose=False,
        )  # fmt: skip
        program.save(path)


def timings(sides: dict, clip: torch.Tensor, warmup: int, runs: int, rounds: int) -> dict[str, list[float]]:
    """Milliseconds per call of each side: ``rounds`` rounds of blocks of ``runs`` calls, one side after another,
    in reversed order every other round, so a load that comes and goes (a shared machine) hits every side."""
    times = {name: [] for name in sides}
    for call in sides.values():
        for _ in range(warmup):
            call(clip)
    for round_ in range(rounds):
        for name in list(sides)[:: -1 if round_ % 2 else 1]:
            for _ in range(runs):
                start = time.perf_counter()
                sides[name](clip)
                times[name].append((time.perf_counter() - start) * 1000)
    return times


def bench(root: Path, warmup: int, runs: int, rounds: int, threads: int) -> dict:
    model_dir = save_model(root / "model")
    export_model(model_dir, model_dir / "onnx")  # uint8 input, normalisation folded
    model, spec = load_trained(model_dir)  # as saved: not folded
    export_float(model, spec, root / "float.onnx")
    sides = {
        "torch normalise": Predictor(model, spec, device="cpu"),
        "torch folded": Predictor.from_pretrained(model_dir, device="cpu"),
        "ORT normalise": Predictor(OnnxClassifier(root / "float.onnx", model.config, threads=threads), spec, "cpu"),
        "ORT folded": Predictor.from_pretrained(model_dir, backend="onnx"),
    }
    clip = torch.randint(0, 256, (1, spec.num_frames, 3, spec.image_size, spec.image_size), dtype=torch.uint8)
    expected = sides["torch normalise"].logits(clip)
    diffs = {name: float((side.logits(clip) - expected).abs().max()) for name, side in sides.items()}
    calls = {name: side.logits for name, side in sides.items()}
    # The pixel passes alone: the normalisation folding removes, and the cast it leaves (in the model's first layer).
    calls["normalisation pass"] = lambda c: normalize(c, spec.mean, spec.std)
    calls["cast"] = lambda c: c.to(torch.float32, memory_format=torch.contiguous_format)
    with torch.inference_mode():
        times = timings(calls, clip, warmup, runs, rounds)
    return {
        "input": list(clip.shape),
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "median_ms": {name: round(statistics.median(values), 2) for name, values in times.items()},
        "min_ms": {name: round(min(values), 2) for name, values in times.items()},
        "max_abs_diff": diffs,
        "calls": runs * rounds,
    }


def results(row: dict) -> list[Result]:
    """Folded against normalise-then-model, per backend: times inverted, so a ratio above 1 is faster."""
    ms, label = row["median_ms"], "224 px, 16 frames, tiny width 128, batch 1"
    out = []
    for backend in ("torch", "ORT"):
        before, after = f"{backend} normalise", f"{backend} folded"
        note = f"max logit diff to torch normalise {row['max_abs_diff'][after]:.1e}"
        out.append(Result("fold", f"{after} (uint8, cast only), {label}", ms[after], "ms per clip",
                          f"{before}: {ms[before]:.1f} ms", ms[before] / ms[after], None, note))  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Smoke run: 1 round of 2 timed calls per side.")
    parser.add_argument("--runs", type=int, default=5, help="Timed calls per side and round.")
    parser.add_argument("--rounds", type=int, default=6, help="Rounds of --runs calls per side.")
    parser.add_argument("--warmup", type=int, default=3, help="Untimed calls per side first.")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="For torch and onnxruntime.")
    parser.add_argument("--json", default=None, help="Also write the ratios (results.py rows) to this file.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs, rounds, warmup = (2, 1, 1) if args.quick else (args.runs, args.rounds, args.warmup)
    with tempfile.TemporaryDirectory(prefix="vidcls-bench-fold-") as tmp:
        row = bench(Path(tmp), warmup, runs, rounds, args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"VideoMAE width 128, {row['parameters_m']} M parameters, input {tuple(row['input'])} uint8")
    ms, low = row["median_ms"], row["min_ms"]
    print(f"median (min) of {row['calls']} calls per side, ms per clip")
    print("| backend | normalise, then model | folded (cast only) | ratio of medians |")
    print("|---|---:|---:|---:|")
    for backend in ("torch", "ORT"):
        before, after = f"{backend} normalise", f"{backend} folded"
        print(
            f"| {backend} | {ms[before]:.1f} ({low[before]:.1f}) | {ms[after]:.1f} ({low[after]:.1f}) "
            f"| {ms[before] / ms[after]:.2f}x |"
        )
    passes = ("normalisation pass", "cast")
    print("alone: " + ", ".join(f"{name} {ms[name]:.2f} ({low[name]:.2f}) ms" for name in passes))
    print("max |logit diff| to torch normalise: " + ", ".join(f"{k} {v:.1e}" for k, v in row["max_abs_diff"].items()))
    print(json.dumps(row))  # every figure, for the record
    write(args.json, results(row))


if __name__ == "__main__":
    main()
