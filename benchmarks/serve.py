"""Load test of ``vidcls serve`` on loopback: requests/s, p50/p95/max latency and failed requests.

The server runs in its own process (``python -m vidcls serve``), started as a user would start it, with each
model of ``--models`` saved as ``vidcls train`` saves it (random weights):

- ``tiny-224``: the headline, the guide's size: the ``tiny`` VideoMAE (4 layers of width 128, 16 frames) at
  224 px in 16 px patches, as ``workers.py`` and ``fold.py`` build it; the model sets the pace;
- ``micro``: a micro VideoMAE (16 px, 4 frames, 2 layers of width 32), which measures everything around the model
  (upload, multipart parsing, decoding, batching, JSON): labelled loader-bound.

Every request uploads the same real UCF101 clip (``../shared/videos/real/v_ApplyEyeMakeup_g01_c01.avi``: 320x240,
25 fps, 164 frames, 294 kB), or a generated one of the same kind where ``../shared`` is missing.
Results: BENCHMARKS.md.

    .venv/bin/python benchmarks/serve.py                     # both models, 8 requests at a time (~3 min)
    .venv/bin/python benchmarks/serve.py --quick             # smoke run: a few requests each
    .venv/bin/python benchmarks/serve.py --models micro --requests 50 --concurrency 4
    .venv/bin/python benchmarks/serve.py --model_dir runs/demo          # a trained model instead
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from results import Result, write

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data" / "serve"  # benchmarks/.data/ is gitignored
REAL_CLIP = HERE.parents[1] / "shared" / "videos" / "real" / "v_ApplyEyeMakeup_g01_c01.avi"
LABELS = ("left", "right", "up")
# name -> (what the rows call it, requests by default / with --quick, note)
MODELS = {
    "tiny-224": ("224 px, 16 frames, tiny width 128", (40, 6), ""),
    "micro": ("16 px micro model", (300, 20), "loader-bound: 16 px, 4-frame micro model"),
}


def model_config(name: str):
    from transformers import VideoMAEConfig

    from vidcls.models.factory import tiny_videomae_config

    if name == "micro":  # the tests' micro VideoMAE (tests/test_predict.py: save_micro_model)
        return VideoMAEConfig(image_size=16, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32,
                              num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)  # fmt: skip
    config = tiny_videomae_config()
    config.image_size, config.patch_size = 224, 16  # 8 x 14 x 14 = 1568 tokens
    return config


def saved_model(name: str, output_dir: Path) -> Path:
    """Model ``name`` (of ``MODELS``) with random weights, saved as ``vidcls train`` saves it, once."""
    if (output_dir / "vidcls.json").exists():
        return output_dir
    import torch

    from vidcls.models.factory import create_model, resolve_clip_spec, save_trained

    output_dir.mkdir(parents=True, exist_ok=True)
    model_config(name).to_json_file(output_dir / "model_config.json")
    torch.manual_seed(0)
    model = create_model(None, str(output_dir / "model_config.json"), {label: i for i, label in enumerate(LABELS)})
    spec = resolve_clip_spec(model, sample_rate=2)
    save_trained(model, spec, output_dir)
    return output_dir


def clip() -> Path:
    if REAL_CLIP.exists():
        return REAL_CLIP
    path = DATA / "clip.avi"
    if not path.exists():
        import numpy as np

        from vidcls.data.synthetic import drifting_frames, random_texture, write_video

        rng = np.random.default_rng(0)
        write_video(path, drifting_frames(random_texture(rng), 45.0, 4.0, 164, rng))
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model_dir: Path, port: int, concurrency: int, extra_flags: tuple = ()) -> subprocess.Popen:
    # A queue as deep as the client's concurrency: this measures latency, not admission (503s would count as failed).
    command = [sys.executable, "-m", "vidcls", "serve", "--model_dir", str(model_dir), "--port", str(port),
               "--max_queue", str(max(8, concurrency)), *extra_flags]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"vidcls serve exited with {server.returncode}:\n{server.stderr.read()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("vidcls serve did not answer /health within 120 s")


def load(url: str, video: Path, requests: int, concurrency: int) -> dict:
    """Send ``requests`` uploads, ``concurrency`` at a time; latencies of the answered ones, failures counted."""
    data = video.read_bytes()

    def one(client: httpx.Client) -> tuple[float, bool]:
        start = time.perf_counter()
        try:
            ok = client.post("/predict", files={"file": (video.name, data)}).status_code == 200
        except httpx.HTTPError:
            ok = False
        return time.perf_counter() - start, ok

    with httpx.Client(base_url=url, timeout=120, limits=httpx.Limits(max_connections=concurrency)) as client:
        for _ in range(min(5, requests)):  # warm-up: first decodes and model calls, connections opened
            one(client)
        calls_before = client.get("/health").json()["model_calls"]
        with ThreadPoolExecutor(concurrency) as pool:
            start = time.perf_counter()
            results = list(pool.map(lambda _: one(client), range(requests)))
            seconds = time.perf_counter() - start
        calls = client.get("/health").json()["model_calls"] - calls_before
    latencies = [latency for latency, _ in results]
    percentiles = statistics.quantiles(latencies, n=100, method="inclusive")  # within the data, however few
    return {
        "requests": requests,
        "concurrency": concurrency,
        "requests_per_s": requests / seconds,
        "p50_ms": 1000 * percentiles[49],
        "p95_ms": 1000 * percentiles[94],
        "max_ms": 1000 * max(latencies),
        "failed": sum(not ok for _, ok in results),
        "model_calls": calls,
        "load": os.getloadavg()[0],
    }


def serve_and_load(model_dir: Path, video: Path, requests: int, concurrency: int) -> dict:
    port = free_port()
    server = start_server(model_dir, port, concurrency)
    try:
        return load(f"http://127.0.0.1:{port}", video, requests, concurrency)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


def result_rows(label: str, row: dict, note: str) -> list[Result]:
    """A model's headline rows: throughput and latencies (no baseline: nothing else serves these requests)."""
    what = f"{label}, {row['concurrency']} concurrent"
    return [
        Result("serve", f"throughput, {what}", row["requests_per_s"], "requests/s", note=note),
        Result("serve", f"p50 latency, {what}", row["p50_ms"], "ms", note=note),
        Result("serve", f"p95 latency, {what}", row["p95_ms"], "ms", note=note),
        Result("serve", f"failed requests, {what}", row["failed"], f"of {row['requests']}", note=note),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), help="Models to serve in turn.")
    parser.add_argument("--requests", type=int, default=None, help="Requests per model (after 5 for warm-up); "
                        f"default: {', '.join(f'{name} {n[1][0]}' for name, n in MODELS.items())}.")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=8, help="Requests in flight at once.")
    parser.add_argument("--model_dir", type=Path, default=None, help="A trained model instead of --models.")
    parser.add_argument("--quick", action="store_true", help="Smoke run: a few requests per model.")
    parser.add_argument("--json", default=None, help="Write the headline rows (results.py) to this file.")
    args = parser.parse_args(argv)
    video = clip()
    if args.model_dir:
        runs = {args.model_dir.name: (args.model_dir, args.model_dir.name, args.requests or 300, "")}
    else:
        runs = {name: (saved_model(name, DATA / f"model_{name}"), label, args.requests or counts[args.quick], note)
                for name, (label, counts, note) in MODELS.items() if name in args.models}  # fmt: skip
    rows, results = {}, []
    for name, (model_dir, label, requests, note) in runs.items():
        rows[name] = serve_and_load(model_dir, video, requests, args.concurrency)
        results += result_rows(label, rows[name], note)
    print(f"vidcls serve, uploading {video.name} ({video.stat().st_size // 1024} kB), {os.cpu_count()} CPUs")
    print("| model | requests | concurrent | requests/s | p50 ms | p95 ms | max ms | failed | model calls | load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        cells = [name, row["requests"], row["concurrency"], f"{row['requests_per_s']:.1f}", f"{row['p50_ms']:.0f}",
                 f"{row['p95_ms']:.0f}", f"{row['max_ms']:.0f}", row["failed"], row["model_calls"],
                 f"{row['load']:.1f}"]  # fmt: skip
        print("| " + " | ".join(map(str, cells)) + " |")
    write(args.json, results)
    return 1 if any(row["failed"] for row in rows.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
