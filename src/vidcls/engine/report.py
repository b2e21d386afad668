"""What a training run leaves for people: training_curves.png and a model card (README.md)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path


def curve_panels(log_history: list[dict]) -> list[tuple[str, str, list[tuple[list, list, str, str | None]]]]:
    """The panels of ``training_curves.png`` that have data: ``(title, x label, [(xs, ys, style, legend)])``.

    A panel is kept only with a line that has points, and a line only with points, so a short run (one logged
    step, no evaluation yet) draws no empty axes and no legend entry for a missing line.
    """

    def series(entries: list[dict], x: str, y: str) -> tuple[list, list]:
        kept = [e for e in entries if x in e and y in e]
        return [e[x] for e in kept], [e[y] for e in kept]

    train = [e for e in log_history if "loss" in e]
    evals = [e for e in log_history if "eval_accuracy" in e]
    panels = [
        ("loss", "step", [(*series(train, "step", "loss"), ".-", "training loss"),
                          (*series(evals, "step", "eval_loss"), "o-", "validation loss")]),
        ("learning rate", "step", [(*series(train, "step", "learning_rate"), ".-", None)]),
        ("validation accuracy", "epoch", [(*series(evals, "epoch", "eval_accuracy"), "o-", "per video"),
                                          (*series(evals, "epoch", "eval_clip_accuracy"), "s--", "per clip")]),
    ]  # fmt: skip
    panels = [(title, xlabel, [line for line in lines if line[0]]) for title, xlabel, lines in panels]
    return [panel for panel in panels if panel[2]]


def plot_training_curves(log_history: list[dict], path: str | Path) -> Path:
    """Loss, learning rate and validation accuracy (per video and per clip) from the Trainer's log history."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    panels = curve_panels(log_history) or [("no metrics logged yet", "step", [])]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (title, xlabel, lines) in zip(axes[0], panels, strict=True):
        for xs, ys, style, label in lines:
            ax.plot(xs, ys, style, label=label)  # every style has a marker: a single point still shows
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        if any(label for *_, label in lines):
            ax.legend()
        if title == "validation accuracy":
            ax.set_ylim(0, 1.02)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def write_model_card(
    output_dir: str | Path,
    *,
    data_dir: str,
    labels: list[str],
    counts: dict[str, int],
    base_model: str,
    settings: dict,
    metrics: dict,
) -> Path:
    """README.md for the output folder: dataset, labels, recipe, metrics and the command that made it."""
    metric_rows = "\n".join(
        f"| {name.removeprefix('eval_')} | {value:.4f} |"
        for name, value in metrics.items()
        if name.startswith("eval_") and "accuracy" in name
    )
    setting_rows = "\n".join(f"| `{name}` | `{value}` |" for name, value in settings.items())
    from_cli = Path(sys.argv[0]).name in ("vidcls", "__main__.py")
    command = shlex.join(["vidcls", *sys.argv[1:]]) if from_cli else "(trained from Python)"
    text = f"""---
library_name: transformers
pipeline_tag: video-classification
tags: [vidcls, video-classification]
---

# Video classifier trained with vidcls

Base model: `{base_model}`. Dataset: `{data_dir}` ({", ".join(f"{n} {split}" for split, n in counts.items())} videos).

Labels ({len(labels)}): {", ".join(labels)}

## Validation metrics (best epoch)

Per-video accuracy averages clip scores over evenly spaced clips; per-clip accuracy scores each clip alone.

| metric | value |
|---|---|
{metric_rows}

## Recipe

| setting | value |
|---|---|
{setting_rows}

## Reproduce

```bash
{command}
```

## Use

```python
from vidcls import Predictor
Predictor.from_pretrained("{Path(output_dir).name}").predict("video.mp4")
# or: transformers.pipeline("video-classification", model="{Path(output_dir).name}")
```
"""
    path = Path(output_dir) / "README.md"
    path.write_text(text)
    return path
