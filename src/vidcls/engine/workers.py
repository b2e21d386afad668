"""How many processes decode beside the model, and how many threads the model keeps: one rule for every command.

On a CPU, decoding workers and the model share the same cores: a worker speeds a run up only when decoding, not
the model, bounds it (``choose_workers``). Prediction and evaluation time their first videos inline
(``engine/scoring.py``); training times a few clips and one step before it starts (``choose_training_workers``).
With a GPU the model does not use the cores, so workers only help.
"""

from __future__ import annotations

import logging
import os
import random
import time
from contextlib import contextmanager

import numpy as np
import torch

logger = logging.getLogger(__name__)

# --dataloader_num_workers when the command line leaves it unset: chosen by choose_training_workers.
AUTO = -1
MAX_WORKERS = 8
# Training steps timed, on one clip each (a batch's worth would cost a whole run's step): 2, then more while they
# fit in 2 s. One clip costs a small model its fixed overhead per step too: pessimistic for workers, never for 0.
PROBE_S, MAX_PROBE_STEPS = 2.0, 5
PROBE_CLIPS = 4  # training clips decoded and timed


def local_cores() -> int:
    """The cores this process may use: its CPU affinity, shared among the processes torchrun started here."""
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, len(os.sched_getaffinity(0)) // max(1, processes))


def choose_workers(decode_s: float, model_s: float, cores: int) -> int:
    """Decoding processes that run fastest, from one item's measured decode and model times (model on all cores).

    Inline (0 workers) an item costs ``decode_s + model_s``. With w workers decoding runs beside the model, which
    keeps the remaining cores: ``min(w / decode_s, rate of the model on cores - w threads)``, assuming the model
    slows in proportion to the threads it loses (pessimistic for workers: so the choice never makes it slower than
    inline), and both slowed alike when there are more processes and threads than cores. Workers must win by 10%
    (they cost a process start each). Examples on 2 cores: decode 10 ms, model 80 ms -> 0 (model-bound: a worker
    would take half the model's cores); decode 80 ms, model 10 ms -> 2.
    """
    best, best_rate = 0, 1.1 / (decode_s + model_s)  # items/s inline, which workers must beat by 10%
    for workers in range(1, min(cores, MAX_WORKERS) + 1):
        threads = max(1, cores - workers)
        crowding = max(1.0, (workers + threads) / cores)
        rate = min(workers / decode_s, threads / (model_s * cores)) / crowding
        if rate > best_rate:
            best, best_rate = workers, rate
    return best


def model_threads(device: torch.device, num_workers: int) -> int:
    """Threads for model calls on a CPU: the cores the decoding workers leave free.

    More threads than free cores make OpenMP threads spin-wait against the workers: with 2 workers on 2 cores,
    2 model threads made a whole run 25% slower than 1 (benchmarks/predict.py).
    """
    if device.type != "cpu" or num_workers == 0:
        return torch.get_num_threads()
    return max(1, min(torch.get_num_threads(), local_cores() - num_workers))


@contextmanager
def torch_threads(count: int):
    """Run the block with ``count`` torch threads, then give back the caller's setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def gpu_workers(cores: int) -> int:
    """Workers beside a model on a GPU: every core but the training process's, 2 to 8 (the model needs none)."""
    return min(MAX_WORKERS, max(2, cores - 1))


def decoding_workers(requested: int) -> int:
    """Workers for a job that only decodes (``--strict``'s checks): as requested, or with ``AUTO`` one a core."""
    return min(MAX_WORKERS, local_cores()) if requested == AUTO else requested


def choose_training_workers(trainer, dataset) -> int:
    """Set ``trainer.args.dataloader_num_workers`` when it is ``AUTO``; return the workers the run uses.

    On a CPU a few clips of ``dataset`` are decoded inline and training steps (forward and backward) timed on one
    of them (``time_training``), and ``choose_workers`` decides; the torch threads the model keeps follow
    (``model_threads``). With a GPU: ``gpu_workers``. An explicit ``--dataloader_num_workers`` is left as it is.
    """
    args = trainer.args
    if args.dataloader_num_workers != AUTO:
        return args.dataloader_num_workers
    cores = local_cores()
    if args.device.type != "cpu":
        workers = gpu_workers(cores)
        logger.info("the model on %s: %d data-loading workers (--dataloader_num_workers)", args.device, workers)
    else:
        decode_s, model_s = time_training(trainer, dataset, min(len(dataset), PROBE_CLIPS))
        workers = choose_workers(decode_s, max(model_s, 1e-6), cores) if model_s > 0 else 0
        bound = "decoding" if workers else "the model"
        logger.info(
            "decoding %.0f ms and a training step %.0f ms a clip on %d cores: %d data-loading workers, %d model "
            "threads (%s bounds the run; --dataloader_num_workers N to choose)",
            1000 * decode_s, 1000 * model_s, cores, workers, model_threads(args.device, workers), bound,
        )  # fmt: skip
    args.dataloader_num_workers = workers
    if workers == 0:  # torch's DataLoader refuses persistent workers without workers
        args.dataloader_persistent_workers = False
    return workers


def time_training(trainer, dataset, count: int) -> tuple[float, float]:
    """Seconds per clip to load ``count`` items of ``dataset`` inline, and of one training step on them.

    The step is the trainer's own: batch preparation and augmentation, then forward, loss and backward on
    one of the clips (the fastest after the first, of 2 to ``MAX_PROBE_STEPS``), with dropout off and
    the gradients dropped after; every random generator is restored, so the run trains as if never timed. A batch
    whose clips all failed to decode gives a model time of 0.
    """
    model = trainer.model
    was_training = model.training
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        started = time.perf_counter()
        batch = trainer.data_collator([dataset[index] for index in range(count)])
        decoded = time.perf_counter()
        model.train()  # the trainer augments training batches only
        inputs = trainer._prepare_inputs(batch)
        prepared = time.perf_counter()
        if not inputs:
            return (decoded - started) / max(1, count), 0.0
        model.eval()  # no dropout drawn, no running statistics moved
        inputs = {key: value[:1] for key, value in inputs.items()}  # one clip
        # The first steps pay one-off set-up (a micro model's first two took 100x its third): the fastest after
        # the first counts, of as many as fit in PROBE_S.
        steps, deadline = [], prepared + PROBE_S
        while len(steps) < 2 or (len(steps) < MAX_PROBE_STEPS and time.perf_counter() < deadline):
            step_started = time.perf_counter()
            trainer.compute_loss(model, dict(inputs)).backward()  # a copy: the loss may pop the labels
            steps.append(time.perf_counter() - step_started)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
    return (decoded - started) / max(1, count), (prepared - decoded) / max(1, count) + min(steps[1:])
