"""The one shape of a benchmark's headline results, so ``make bench`` can print every benchmark in one table.

Each benchmark script takes ``--json PATH`` and writes there a list of ``Result`` rows (``write``); the runner
(``benchmarks/run_all.py``) reads them back. Needs only the standard library: the guide's venv imports nothing
from here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Result:
    """One measured figure, and how it compares with its baseline.

    Args:
        benchmark: the script's name, e.g. "loader".
        row: what was measured, e.g. "train loader, 224 px, 2 workers".
        value: the figure, e.g. 41.2.
        unit: e.g. "clips/s", "videos/s", "ms per clip", "%".
        baseline: what it is compared with, e.g. "guide PyTorchVideo loader, 2 workers"; None for none.
        ratio: value over the baseline's value (higher is better: invert times first); None without a baseline.
        target: the ratio an issue asks for (met when ratio >= target); None for none.
        note: a few words, e.g. "loader-bound: 32 px model".
    """

    benchmark: str
    row: str
    value: float
    unit: str
    baseline: str | None = None
    ratio: float | None = None
    target: float | None = None
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.target is None or self.ratio is None:
            return None
        return self.ratio >= self.target


def write(path: str | Path | None, results: list[Result]) -> None:
    """Write ``results`` as JSON to ``path`` (nothing when None)."""
    if path is not None:
        Path(path).write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")


def read(path: str | Path) -> list[Result]:
    return [Result(**row) for row in json.loads(Path(path).read_text())]
