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
    return choose_workers_and_threads(decode_s, model_s, cores)[0]


def choose_workers_and_threads(
    decode_s: float, model_s: float, cores: int, one_thread_s: float | None = None
) -> tuple[int, int]:
    """Decoding processes and model threads that run fastest: ``choose_workers``'s rule, where ``one_thread_s``
    (the model's time on one thread, when measured) replaces the proportional guess for one thread.

    On a machine whose cores other jobs also use, one model thread can beat all of them (a thread that waits for a
    core holds the others up at every step): then the model keeps one, and workers may take the cores it leaves.
    Examples on 2 cores, decode 30 ms, model 600 ms on 2 threads: 400 ms on 1 -> (1, 1), a worker decodes while
    the model runs on the other core; 1200 ms on 1 -> (0, 2).
    """

    def model_time(threads: int) -> float:
        return one_thread_s if threads == 1 and one_thread_s is not None else model_s * cores / threads

    best, best_rate = (0, cores), 1.1 / (decode_s + model_s)  # inline on every core, which others must beat by 10%
    for workers in range(0, min(cores, MAX_WORKERS) + 1):
        for threads in {max(1, cores - workers), 1}:
            if workers == 0:
                rate = 1 / (decode_s + model_time(threads))
            else:
                crowding = max(1.0, (workers + threads) / cores)
                rate = min(workers / decode_s, 1 / model_time(threads)) / crowding
            if rate > best_rate:
                best, best_rate = (workers, threads), rate
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


def choose_training_workers(trainer, dataset) -> tuple[int, int]:
    """Set ``trainer.args.dataloader_num_workers`` when it is ``AUTO``; return the workers and model threads.

    On a CPU a few clips of ``dataset`` are decoded inline and training steps (forward and backward) timed on one
    of them, on every thread and on one (``time_training``), and ``choose_workers_and_threads`` decides. With a
    GPU: ``gpu_workers``. An explicit ``--dataloader_num_workers`` is kept, the model getting the cores it leaves.
    """
    args = trainer.args
    if args.dataloader_num_workers != AUTO:
        return args.dataloader_num_workers, model_threads(args.device, args.dataloader_num_workers)
    cores = local_cores()
    threads = torch.get_num_threads()
    if args.device.type != "cpu":
        workers = gpu_workers(cores)
        logger.info("the model on %s: %d data-loading workers (--dataloader_num_workers)", args.device, workers)
    else:
        decode_s, model_s, one_thread_s = time_training(trainer, dataset, min(len(dataset), PROBE_CLIPS))
        workers, threads = (0, threads)
        if model_s > 0:
            workers, threads = choose_workers_and_threads(decode_s, model_s, cores, one_thread_s)
        logger.info(
            "decoding %.0f ms and a training step %.0f ms a clip on %d cores (%s ms on one thread): %d data-loading "
            "workers, %d model threads (%s; --dataloader_num_workers N to choose)",
            1000 * decode_s, 1000 * model_s, cores, "-" if one_thread_s is None else f"{1000 * one_thread_s:.0f}",
            workers, threads, "decoding runs beside the model" if workers else "the model bounds the run",
        )  # fmt: skip
    args.dataloader_num_workers = workers
    if workers == 0:  # torch's DataLoader refuses persistent workers without workers
        args.dataloader_persistent_workers = False
    return workers, threads


def time_training(trainer, dataset, count: int) -> tuple[float, float, float | None]:
    """Seconds per clip to load ``count`` items of ``dataset`` inline, and of a training step on every torch thread
    and on one (None where there is only one).

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
            return (decoded - started) / max(1, count), 0.0, None
        model.eval()  # no dropout drawn, no running statistics moved
        inputs = {key: value[:1] for key, value in inputs.items()}  # one clip
        # The first steps pay one-off set-up (a micro model's first two took 100x its third): the fastest after
        # the first counts, of as many as fit in PROBE_S.
        steps, deadline = [], prepared + PROBE_S
        while len(steps) < 2 or (len(steps) < MAX_PROBE_STEPS and time.perf_counter() < deadline):
            steps.append(_step_seconds(trainer, inputs))
        one_thread = None
        if torch.get_num_threads() > 1:
            with torch_threads(1):
                one_thread = min(_step_seconds(trainer, inputs) for _ in range(2))
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
    prepare_s = (prepared - decoded) / max(1, count)
    one_thread_s = None if one_thread is None else prepare_s + one_thread
    return (decoded - started) / max(1, count), prepare_s + min(steps[1:]), one_thread_s


def _step_seconds(trainer, inputs: dict) -> float:
    started = time.perf_counter()
    trainer.compute_loss(trainer.model, dict(inputs)).backward()  # a copy: the loss may pop the labels
    return time.perf_counter() - started
