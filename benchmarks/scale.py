"""Videos/s of ``vidcls predict`` in one process against ``--engine ray`` on this machine, peak memory, and what a
cluster would do on 1 M videos, worked out from the measured cost of decoding a video and of a model call.

Throughput uses the data and model of ``benchmarks/predict.py`` (64 UCF101-like videos, 320x240, 10 s; the
``tiny`` VideoMAE at 32 px, so decoding dominates), the videos listed over and over to make 128 and 640 inputs.
Each run is a fresh process, start-up included (Ray's: ``ray.init``, then workers and the predictor actor loading
torch and the model); the steady rate is (640 - 128) / (time of 640 - time of 128), so start-up cancels out.
Peak memory is the largest sum of PSS (each shared page counted once, split between its processes) over the run's
whole process tree: Ray's own processes, its workers and object store included. ``--json`` writes the steady
rates against one process with no workers, and the two measured costs, as ``results.py`` rows (the 32 px rows
labelled loader-bound).

The cluster estimate decodes the same videos at a base model's input (16 frames every 4th, 4 clips, 224 px) in one
thread, times a VideoMAE-base forward on this CPU, and takes the GPU rate as given (no GPU here).
Results: BENCHMARKS.md.

    .venv/bin/python benchmarks/scale.py           # about 6 minutes on 2 cores (+2 minutes writing data, once)
    .venv/bin/python benchmarks/scale.py --quick   # smoke run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
from predict import DATA, make_data  # benchmarks/predict.py: the same videos and model
from results import Result, write

BATCH_SIZE = 32  # views per model call, as benchmarks/predict.py
# Rows of the throughput table: (engine, decoding CPUs). Local: its --num_workers (0: decoded in the process
# itself); Ray: ray.init(num_cpus=decoders + 1), one CPU for the predictor actor, the rest for decode tasks.
RUNS = [("local", 0), ("local", 2), ("ray", 1), ("ray", 2)]
# VideoMAE-base at 16x224x224: 180 GFLOPs a clip (VideoMAE paper, table 6). The GPU rate is an assumption, not a
# measurement: 500 clips/s is about 90 TFLOP/s sustained in fp16, about 30% of an A100's peak. Pass --gpu_clips_per_s
# with a figure measured on your GPU.
GPU_CLIPS_PER_S = 500.0
CLIPS_PER_VIDEO = 4
VIEW_BYTES = CLIPS_PER_VIDEO * 16 * 3 * 224 * 224  # a video's uint8 views for a base model, decoder to actor
VIDEOS = 1_000_000


def child(engine: str, decoders: int, model_dir: Path, videos: list[str]) -> dict:
    """One throughput run in this fresh process: seconds to start, to the first video and to the last."""
    start = time.perf_counter()
    from vidcls.engine.predict import Predictor
    from vidcls.engine.scoring import score

    ray = None
    if engine == "ray":
        import ray as ray_module

        from vidcls.engine.ray_engine import RayEngine

        ray_module.init(num_cpus=decoders + 1, include_dashboard=False, logging_level="ERROR")
        ray = RayEngine(str(model_dir), device="cpu")
    predictor = Predictor.from_pretrained(model_dir, device="cpu")
    ready = time.perf_counter()
    first, count = None, 0
    for video in score(predictor, videos, batch_size=BATCH_SIZE, num_workers=decoders, ray=ray):
        if video.error:
            raise SystemExit(f"{video.video}: {video.error}")
        first = first or time.perf_counter()
        count += 1
    end = time.perf_counter()
    return {"start_s": ready - start, "first_s": first - start, "total_s": end - start, "videos": count}


def tree_pss_mb(process: psutil.Process) -> float:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass  # ended between listing and reading
    return total / 2**20


def run_row(engine: str, decoders: int, data: Path, count: int) -> dict:
    """A child process's run, its whole process tree's memory sampled every second while it runs."""
    command = [sys.executable, __file__, "--child", engine, str(decoders), str(count), "--data", str(data)]
    child_process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak, done = [0.0], threading.Event()

    def sample():
        process = psutil.Process(child_process.pid)
        while not done.wait(1.0):
            try:
                peak[0] = max(peak[0], tree_pss_mb(process))
            except psutil.NoSuchProcess:
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = child_process.communicate()
    done.set()
    sampler.join()
    if child_process.returncode:
        raise SystemExit(f"{engine} run failed")
    return {"engine": engine, "decoders": decoders, **json.loads(out.strip().splitlines()[-1]), "peak_mb": peak[0]}


def decode_cost(videos: list[Path]) -> float:
    """CPU seconds to decode one video's views for a base model, in one thread (what one decode task does)."""
    import torch

    from vidcls.config import ClipSpec
    from vidcls.data.clips import ClipReader

    torch.set_num_threads(1)
    reader = ClipReader(ClipSpec(num_frames=16, sample_rate=4, image_size=224))  # 4 clips: vidcls's default views
    reader.from_file(videos[0])  # warm-up
    start = time.process_time()
    for video in videos:
        reader.from_file(video)
    return (time.process_time() - start) / len(videos)


def model_cost_cpu(clips: int) -> float:
    """CPU seconds of one VideoMAE-base clip (16 x 224 x 224) forward on this machine's CPUs, batch of one."""
    import torch
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    model = VideoMAEForVideoClassification(VideoMAEConfig(num_labels=101)).eval()  # the defaults are base's
    pixels = torch.randn(1, 16, 3, 224, 224)
    with torch.inference_mode():
        model(pixel_values=pixels)  # warm-up
        start = time.process_time()
        for _ in range(clips):
            model(pixel_values=pixels)
    return (time.process_time() - start) / clips


def cluster_rows(decode_s: float, model_cpu_s: float, gpu_clips_per_s: float) -> list[dict]:
    """Hours for ``VIDEOS`` videos on clusters of CPU nodes (16 CPUs each) with and without GPUs, and what bounds
    them: decoding (CPUs) or the model (GPUs, or CPUs when there is no GPU)."""
    rows = []
    for nodes in (1, 4, 16, 64):
        for gpus in (0, 1, 4, 8):
            cpus = 16 * nodes
            if gpus == 0:  # every CPU decodes and runs the model in turn
                rate, bound = cpus / (decode_s + CLIPS_PER_VIDEO * model_cpu_s), "model on CPUs"
            else:  # one CPU per GPU feeds its actor, the rest decode
                decode_rate = (cpus - gpus) / decode_s
                model_rate = gpus * gpu_clips_per_s / CLIPS_PER_VIDEO
                rate, bound = min(decode_rate, model_rate), "decoding" if decode_rate < model_rate else "GPUs"
            rows.append({"nodes": nodes, "cpus": cpus, "gpus": gpus, "videos_s": rate,
                         "hours": VIDEOS / rate / 3600, "bound": bound})  # fmt: skip
    return rows


def report(rows: list[dict], decode_s: float, model_cpu_s: float, gpu_clips_per_s: float) -> None:
    small, large = sorted({row["videos"] for row in rows})
    by_run = {(row["engine"], row["decoders"], row["videos"]): row for row in rows}
    base = None
    print(f"{'engine':<7} {'decoding CPUs':>13} {'first video s':>13} {f'{large} videos s':>14} {'videos/s':>9} "
          f"{'steady videos/s':>15} {'vs one process':>14} {'peak MB':>13}")  # fmt: skip
    for engine, decoders in dict.fromkeys((row["engine"], row["decoders"]) for row in rows):  # the runs made
        few, many = by_run[engine, decoders, small], by_run[engine, decoders, large]
        steady = (large - small) / (many["total_s"] - few["total_s"])
        base = base or steady
        peaks = f"{few['peak_mb']:.0f}/{many['peak_mb']:.0f}"
        print(f"{engine:<7} {decoders:>13} {few['first_s']:>13.1f} {many['total_s']:>14.1f} "
              f"{large / many['total_s']:>9.1f} {steady:>15.1f} {steady / base:>13.2f}x {peaks:>13}")  # fmt: skip
    per_gpu = gpu_clips_per_s / CLIPS_PER_VIDEO
    print(f"(peak MB: with {small} / {large} inputs)")
    print(f"\ndecode, base model's views (4 clips of 16 frames at 224 px), 1 thread: {decode_s * 1000:.0f} ms/video")
    print(f"VideoMAE-base forward on this CPU: {model_cpu_s:.2f} CPU-s/clip = "
          f"{CLIPS_PER_VIDEO * model_cpu_s:.1f} CPU-s/video")  # fmt: skip
    print(f"GPU (assumed): {gpu_clips_per_s:.0f} clips/s = {per_gpu:.0f} videos/s; decode CPUs to feed one GPU: "
          f"{per_gpu * decode_s:.1f}; views into one GPU's actor: {per_gpu * VIEW_BYTES / 1e9:.1f} GB/s")  # fmt: skip
    print(f"\n{VIDEOS:,} videos: {'nodes x 16 CPUs':>15} {'GPUs':>5} {'videos/s':>9} {'hours':>8} {'views GB/s':>10}  "
          "bound by")  # fmt: skip
    for row in cluster_rows(decode_s, model_cpu_s, gpu_clips_per_s):
        traffic = row["videos_s"] * VIEW_BYTES / 1e9
        print(f"{'':13}{row['nodes']:>15} {row['gpus']:>5} {row['videos_s']:>9.1f} {row['hours']:>8.1f} "
              f"{traffic:>10.1f}  {row['bound']}")  # fmt: skip


def model_size(model_dir: Path) -> int:
    return json.loads((model_dir / "config.json").read_text())["image_size"]


def results(rows: list[dict], decode_s: float, model_cpu_s: float, size: int) -> list[Result]:
    """Steady videos/s of each engine against one process with no workers, and the two measured costs the
    cluster estimate rests on (VideoMAE-base's views at 224 px)."""
    small, large = sorted({row["videos"] for row in rows})
    by_run = {(row["engine"], row["decoders"], row["videos"]): row for row in rows}
    note = f"loader-bound: {size} px model" if size < 224 else ""
    steady = {}
    for engine, decoders in dict.fromkeys((row["engine"], row["decoders"]) for row in rows):  # the runs made
        few, many = by_run[engine, decoders, small], by_run[engine, decoders, large]
        steady[engine, decoders] = (large - small) / (many["total_s"] - few["total_s"])
    base = steady[RUNS[0]]  # one process, no workers: always run first
    out = [
        Result("scale", f"{engine}, {decoders} decoding CPUs, steady", rate, "videos/s",
               f"one process, no workers: {base:.1f}", rate / base, None,
               "; ".join(filter(None, [note, f"peak {by_run[engine, decoders, large]['peak_mb']:.0f} MB"])))
        for (engine, decoders), rate in steady.items()
    ]  # fmt: skip
    out.append(Result("scale", "decode, VideoMAE-base views (4 clips, 16 frames, 224 px), 1 thread",
                      1000 * decode_s, "ms per video"))  # fmt: skip
    out.append(Result("scale", "VideoMAE-base forward, 224 px, this CPU", model_cpu_s, "CPU-s per clip"))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="the videos and model of benchmarks/predict.py")
    parser.add_argument("--counts", type=int, nargs=2, default=[128, 640], help="inputs per run (videos repeated)")
    parser.add_argument("--gpu_clips_per_s", type=float, default=GPU_CLIPS_PER_S, help="base-model clips/s on a GPU")
    parser.add_argument("--quick", action="store_true", help="smoke run: local 0 and ray 1 only, 8 and 16 inputs")
    parser.add_argument("--json", default=None, help="write the headline rows (results.py) to this file")
    parser.add_argument("--child", nargs=3, metavar=("ENGINE", "DECODERS", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data = make_data(args.data)
    videos = sorted(map(str, (data / "videos").glob("*.avi")))
    if args.child:
        count = int(args.child[2])
        inputs = (videos * (count // len(videos) + 1))[:count]
        print(json.dumps(child(args.child[0], int(args.child[1]), data / "model", inputs)))
        return 0
    counts, runs = ([8, 16], RUNS[::2]) if args.quick else (args.counts, RUNS)  # quick: one run per engine
    rows = [run_row(engine, decoders, data, count) for engine, decoders in runs for count in counts]
    decode_s = decode_cost([Path(v) for v in videos[: 8 if args.quick else 32]])
    model_cpu_s = model_cost_cpu(1 if args.quick else 3)
    print(json.dumps({"runs": rows, "decode_s": decode_s, "model_cpu_s": model_cpu_s}), file=sys.stderr)
    report(rows, decode_s, model_cpu_s, args.gpu_clips_per_s)
    write(args.json, results(rows, decode_s, model_cpu_s, model_size(data / "model")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
