"""Seconds between two optimizer steps of a transformers Trainer: shared by both sides of ``train.py``.

Run by vidcls's venv and by the guide's benchmark-only venv alike, so it must not import vidcls.
"""

from __future__ import annotations

import time

from transformers import TrainerCallback


class StepTimer(TrainerCallback):
    """Times steps ``warmup + 1`` to ``max_steps``: the first steps absorb worker start-up and allocation."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.start = self.end = None
        self.steps = 0

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self.start = time.perf_counter()
        elif state.global_step == state.max_steps:
            self.end = time.perf_counter()
            self.steps = state.global_step - self.warmup

    def result(self, batch_size: int) -> dict:
        seconds = self.end - self.start
        return {"steps": self.steps, "seconds": round(seconds, 3), "samples_per_s": self.steps * batch_size / seconds}
